"""Mean transition times: Eyring-Kramers-type estimates from U against Monte Carlo.

Noise convention as elsewhere: ``dx = f dt + sqrt(eps) dW``, density ``~ exp(-U/eps)``,
``U = 2V`` and ``f = -grad V + g`` with ``g . grad V = 0``. Writing ``eps = 2 delta`` this is
the setting ``dx = (-grad V + g) dt + sqrt(2 delta) dW`` of Bouchet & Reygner (2016), whose
generalised Eyring-Kramers formula for the mean transition time from the minimum m over the
saddle s is

    T = 2 pi / mu * sqrt(|det H_V(s)| / det H_V(m)) * exp(dU / eps) * C,

with ``mu`` the positive eigenvalue of the Jacobian of f at s and
``C = exp(int div g dt)`` along the instanton. For gradient fields (g = 0) this is the classic
Eyring-Kramers law. The factor C is 1 when ``div g`` vanishes identically (checked
symbolically, e.g. for the paper's Example 1); otherwise no prefactor is returned, only the
exponential rate ``exp(dU/eps)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .._errors import AnalysisError
from .._estimator import check_seed
from .._numeric import euler_maruyama_step
from ._common import as_model, check_eps, numpy_field

__all__ = ["ExitTimeEstimate", "arrhenius_rate", "exit_time_estimate", "exit_times_mc"]


@dataclass(frozen=True)
class ExitTimeEstimate:
    """Eyring-Kramers-type estimate ``T = prefactor * exp(dU/eps)`` for each eps."""

    eps: np.ndarray
    dU: float
    prefactor: float | None
    times: np.ndarray | None
    note: str


def _point(p: Any, d: int, what: str) -> np.ndarray:
    x = np.asarray(getattr(p, "x", p), float).ravel()
    if x.shape != (d,):
        raise AnalysisError(f"{what} must be a point of dimension {d}, got shape {x.shape}")
    return x


def exit_time_estimate(
    obj: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    minimum: Any,
    saddle: Any,
    eps: Any,
    g: Sequence[Any] | None = None,
) -> ExitTimeEstimate:
    """Mean transition time from ``minimum`` over ``saddle`` (see module docstring).

    ``g`` is the circulatory part (defaults to ``f + grad V``, V = U/2). The prefactor is
    returned only when ``div g == 0`` symbolically; otherwise ``prefactor`` and ``times``
    are None and ``note`` says why.

    Examples
    --------
    >>> import sympy as sp, numpy as np
    >>> x = sp.Symbol("x")
    >>> U = x**4 - 2*x**2                      # gradient system f = -U'/2
    >>> est = exit_time_estimate(U, [-sp.diff(U, x) / 2], [x], minimum=[-1], saddle=[0],
    ...                          eps=[0.25])
    >>> bool(abs(est.prefactor - 2 * np.pi / np.sqrt(2 * 4)) < 1e-9)
    True
    """
    model = as_model(obj, f, variables, need_U=True, need_f=True)
    epss = np.array(check_eps(eps))
    m = _point(minimum, model.d, "minimum")
    s = _point(saddle, model.d, "saddle")
    syms = model.variables
    subs_m = dict(zip(syms, m))
    subs_s = dict(zip(syms, s))
    dU = float(model.U.subs(subs_s) - model.U.subs(subs_m))
    V = model.U / 2
    HV = sp.hessian(V, syms)
    Hm = np.array(HV.subs(subs_m).evalf(), dtype=float)
    Hs = np.array(HV.subs(subs_s).evalf(), dtype=float)
    Jf = np.array(sp.Matrix(model.f).jacobian(syms).subs(subs_s).evalf(), dtype=float)
    ev = np.linalg.eigvals(Jf)
    pos = ev[ev.real > 0]
    if len(pos) != 1:
        raise AnalysisError(f"the point {s.tolist()} is not an index-1 saddle of f")
    mu = float(pos[0].real)
    det_m = float(np.linalg.det(Hm))
    det_s = float(np.linalg.det(Hs))
    if det_m <= 0 or det_s >= 0:
        raise AnalysisError(
            "Hessian of U is not positive definite at the minimum or not of saddle type at the "
            "saddle; the Eyring-Kramers prefactor does not apply"
        )
    gg = [sp.expand(fi + sp.diff(V, v)) for fi, v in zip(model.f, syms)] if g is None else list(g)
    is_gradient = all(sp.simplify(c) == 0 for c in gg)
    div = sp.simplify(sum(sp.diff(c, v) for c, v in zip(gg, syms)))
    if is_gradient or div == 0:
        pref = 2 * np.pi / mu * np.sqrt(abs(det_s) / det_m)
        note = ("Eyring-Kramers (gradient field)" if is_gradient else
                "Bouchet-Reygner generalised Eyring-Kramers (div g = 0)")
        with np.errstate(over="ignore"):  # exp(dU/eps) beyond doubles: the time is inf
            times = pref * np.exp(dU / epss)
        return ExitTimeEstimate(epss, dU, float(pref), times, note)
    return ExitTimeEstimate(
        epss, dU, None, None,
        f"prefactor not available: div g = {div} is not identically zero; only the rate "
        "exp(dU/eps) applies",
    )


def exit_times_mc(
    obj: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    start: Any,
    target: Any,
    eps: Any,
    radius: float | None = None,
    n_paths: int = 500,
    dt: float = 5e-3,
    t_max: float = 1e4,
    seed: int = 0,
) -> dict:
    """Monte Carlo mean first time to reach a ball around ``target`` from ``start``.

    Vectorised Euler-Maruyama for ``dx = f dt + sqrt(eps) dW`` over ``n_paths`` paths per eps.
    Paths still running at ``t_max`` are censored (count reported; the mean then is a lower
    bound).

    Returns
    -------
    dict
        ``eps`` (array), ``mean`` (array), ``stderr`` (array), ``censored`` (array of int).

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> r = exit_times_mc(None, [-4*x**3 + 4*x], [x], start=[-1], target=[1], eps=[1.0],
    ...                   n_paths=100, dt=1e-2, t_max=200)
    >>> bool(r["mean"][0] > 0 and r["censored"][0] == 0)
    True
    """
    model = as_model(obj, f, variables, need_f=True)
    epss = check_eps(eps)
    a = _point(start, model.d, "start")
    b = _point(target, model.d, "target")
    r = 0.25 * float(np.linalg.norm(b - a)) if radius is None else float(radius)
    if r <= 0:
        raise AnalysisError("start and target coincide")
    F = numpy_field(model)
    rng = np.random.default_rng(check_seed("", "seed", seed))
    means, errs, cens = [], [], []
    n_steps = int(np.ceil(t_max / dt))
    for e in epss:
        X = np.tile(a, (n_paths, 1))
        T = np.full(n_paths, np.nan)
        idx = np.arange(n_paths)
        with np.errstate(all="ignore"):
            for k in range(n_steps):
                X = euler_maruyama_step(F, X, dt, e, rng)
                hit = np.sum((X - b) ** 2, axis=1) < r * r
                if hit.any():
                    T[idx[hit]] = (k + 1) * dt
                    X, idx = X[~hit], idx[~hit]
                    if idx.size == 0:
                        break
        done = np.isfinite(T)
        Tc = np.where(done, T, t_max)
        means.append(float(Tc.mean()))
        errs.append(float(Tc.std(ddof=1) / np.sqrt(n_paths)))
        cens.append(int((~done).sum()))
    return {"eps": np.array(epss), "mean": np.array(means), "stderr": np.array(errs),
            "censored": np.array(cens)}


def arrhenius_rate(eps: Any, times: Any) -> float:
    """Slope of ``log T`` against ``1/eps`` (least squares): the barrier dU seen in the data.

    Examples
    --------
    >>> import numpy as np
    >>> eps = np.array([0.2, 0.25, 0.3])
    >>> round(arrhenius_rate(eps, 3.0 * np.exp(1.5 / eps)), 10)
    1.5
    """
    e = np.asarray(check_eps(eps))
    t = np.asarray(times, float)
    if t.shape != e.shape or np.any(~(t > 0)):
        raise AnalysisError("times must be positive and match eps in length")
    if e.size < 2:
        raise AnalysisError("need at least two noise strengths to fit a rate")
    return float(np.polyfit(1.0 / e, np.log(t), 1)[0])
