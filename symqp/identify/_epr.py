"""The EPR pipeline: stationary samples to an exact landscape U through the symbolic backends.

``route="neural"`` trains :class:`~symqp.decompose.EPRLandscape` (EPR loss, optionally the
enhanced Fokker–Planck residual) and regresses U_θ on the library; ``route="direct"``
minimises the EPR loss over the library span.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from .._errors import BackendError, DataError, TrainingError
from .._numeric import numpy_function
from ..data._stationary import StationaryData
from ..decompose._epr import EPRLandscape, _as_data
from ..result import Result
from . import _potential as pu

__all__ = ["fit_epr"]


def fit_epr(
    data,
    *,
    library="poly(4)",
    backend="stlsq",
    route: str = "neural",
    enhanced: bool = False,
    field: Callable | None = None,
    threshold: float | None = None,
    seed: int = 0,
    steps: int | None = None,
    hidden: Sequence[int] = (32, 32),
    lr: float = 1e-2,
    lbfgs_steps: int = 200,
    level: float = 20.0,
    model: EPRLandscape | None = None,
    verbose: bool = False,
    device: str = "cpu",
    **landscape_options,
):
    """Exact landscape U from stationary samples (EPR loss), through the symbolic backends.

    Parameters
    ----------
    data : StationaryData or path
        npz with ``x`` (n, d), ``f`` (n, d), ``D`` and optional ``names``.
    library : str or Library
        Candidate terms in the data's variable names.
    backend : str or Backend
        ``"stlsq"`` (Bhat's λ rule or ``threshold``); with ``route="neural"`` also ``"sr3"``,
        ``"operon"`` or a Backend instance fitting U_θ.
    route : {"neural", "direct"}
        Train :class:`EPRLandscape` and regress U_θ on Θ at the samples with
        U_θ < min + level·D, or minimise the EPR loss over the library span (least squares of −f on ∇Θ).
    enhanced : bool
        Enhanced training (Fokker–Planck residual). Without ``field`` the drift at new points
        is a least-squares fit of f on ``library`` (its divergence is then exact).
    field : callable, optional
        The known drift f(x) (n, d) -> (n, d) for the enhanced samples.
    threshold, seed, steps, hidden, lr, lbfgs_steps, model, verbose, landscape_options :
        Regression and training settings (``steps`` Adam steps, default 1000, then
        ``lbfgs_steps`` L-BFGS iterations; see :class:`EPRLandscape`).
    device : {"cpu", "cuda"} or str
        torch device of the network (neural route; the direct route trains none).

    Returns
    -------
    Result
        ``model="epr"``; ``V`` the landscape (constant dropped), ``U = 2V`` (quasipotential for
        ε = 2D), ``f = −∇V + g`` with ``g`` the library fit of f + ∇V on the samples.

    Examples
    --------
    >>> import numpy as np
    >>> from symqp.data._stationary import StationaryData
    >>> x = np.random.default_rng(0).normal(size=(4000, 1)) * np.sqrt(0.5)
    >>> res = fit_epr(StationaryData(x, -x, 0.5, names=["x"]), library="poly(4)", route="direct")
    >>> print(res.V)
    0.5*x**2
    """
    t_start = time.perf_counter()
    data = _as_data(data)
    if route not in ("direct", "neural"):
        raise DataError(f"unknown route {route!r}; choose 'neural' or 'direct'")
    syms = tuple(sp.Symbol(s) for s in data.names)
    lib = pu.as_library(library, syms)
    bname = pu.backend_name(backend)
    timings: dict[str, float] = {}
    metrics: dict = {"route": route, "enhanced": bool(enhanced), "D": data.D, "n_samples": data.n}
    eye = np.broadcast_to(np.eye(data.d), (data.n, data.d, data.d))
    fit_obj = None
    if route == "direct":
        if bname != "stlsq":
            raise BackendError(f"route='direct' regresses on the gradient library with 'stlsq'; "
                               f"backend {bname!r} needs route='neural'")
        t0 = time.perf_counter()
        A = pu.gradient_design(lib, data.x, eye)
        coef, info = pu.sparse_fit(A, -data.f.reshape(-1), threshold=threshold)
        metrics.update(info)
        timings["regression"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        if model is None:
            fld, div = field, None
            if enhanced and fld is None:
                fld, div = _surrogate_field(lib, data)
                metrics["field"] = "library least-squares fit"
            model = EPRLandscape(hidden=hidden, enhanced=enhanced, field=fld, divergence=div,
                                 steps=1000 if steps is None else steps, lr=lr, seed=seed,
                                 lbfgs_steps=lbfgs_steps, verbose=verbose, device=device,
                                 **landscape_options).fit(data)
        elif not hasattr(model, "net_"):
            raise TrainingError("the given model is not fitted")
        timings["training"] = time.perf_counter() - t0
        metrics["train_loss"] = model.final_loss_
        t0 = time.perf_counter()
        # U_θ is regressed on the stationary samples only: the enhanced points steer the
        # training, but far from the data the network is not the landscape (measured on the
        # 2-D toy: RMS error 1.6 of U_θ on the enhanced points, 0.006 on the samples; the
        # regressed landscape had rRMSE 0.40 when they were included).
        pts = data.x
        u = model.V(pts)
        keep = u - u.min() < level * data.D
        pts, u = pts[keep], u[keep]
        sub = np.random.default_rng(seed).permutation(len(pts))[:20000]
        pts, u = pts[sub], u[sub]
        metrics["n_regression_points"] = len(pts)
        if bname == "stlsq":
            coef, info = pu.sparse_fit(pu.library_values(lib, pts), u, threshold=threshold)
            metrics.update(info)
        else:
            coef, fit_obj = _backend_fit(backend, lib, pts, u, model)
        timings["regression"] = time.perf_counter() - t0
    const = sum(float(c * t) for c, t in zip(coef, lib.terms) if t.is_number)
    keep_c = np.array([0.0 if t.is_number else c for c, t in zip(coef, lib.terms)])
    V = lib.expression(keep_c)
    metrics["coefficients"] = {n: float(c) for n, c in zip(lib.names, coef) if c != 0}
    metrics["intercept"] = const
    grad_V = tuple(sp.diff(V, s) for s in syms)
    g = _fit_remainder(lib, data, grad_V, syms)
    metrics["epr_loss"] = _epr_loss_numpy(grad_V, syms, data)
    timings["total"] = time.perf_counter() - t_start
    return Result(
        variables=tuple(data.names), U=2 * V, V=V, grad_V=grad_V, g=g,
        f=tuple(-a + b for a, b in zip(grad_V, g)), backend=bname,
        library=library if isinstance(library, str) else ", ".join(lib.names),
        metrics=metrics, timings=timings, fit=fit_obj, model="epr",
    )


def _epr_loss_numpy(grad_V, syms, data: StationaryData) -> float:
    g = numpy_function(list(grad_V), syms)(data.x)
    return float(np.mean(np.sum((data.f + g) ** 2, axis=1)))


def _fit_remainder(lib, data: StationaryData, grad_V, syms) -> tuple[sp.Expr, ...]:
    """g ≈ f + ∇V as a least-squares combination of the library (a description, not exact)."""
    theta = pu.library_values(lib, data.x)
    target = data.f + numpy_function(list(grad_V), syms)(data.x)
    C, *_ = np.linalg.lstsq(theta, target, rcond=None)
    scale = np.abs(C).max() if C.size else 0.0
    C[np.abs(C) < 1e-8 * max(scale, 1.0)] = 0.0
    return tuple(lib.expression(C[:, k]) for k in range(data.d))


def _surrogate_field(lib, data: StationaryData):
    """f ≈ Θ C by least squares on the samples; returns (f̂, ∇·f̂) with the divergence exact."""
    theta = pu.library_values(lib, data.x)
    C, *_ = np.linalg.lstsq(theta, data.f, rcond=None)

    def field(x):
        return pu.library_values(lib, x) @ C

    def divergence(x):
        return sum(np.asarray(lib.evaluate_derivative(x, k, backend=pu._EVAL), float) @ C[:, k] for k in range(x.shape[1]))

    return field, divergence


def _backend_fit(backend, lib, pts, u, model):
    from .. import backends

    be = backends.get_backend(backend) if isinstance(backend, str) else backend
    grad = model.grad_V(pts)
    k = int(0.8 * len(u))
    prob = backends.Problem(X=pts[:k], f=-grad[:k], V=u[:k], g=np.zeros_like(grad[:k]), library=lib,
                            X_val=pts[k:], f_val=-grad[k:], V_val=u[k:], g_val=np.zeros_like(grad[k:]))
    fit = backends.fit_problem(be, prob)
    if fit.coef is not None:
        coef = np.asarray(fit.coef)[:, pts.shape[1]]
    else:
        expr = sp.expand(fit.V)
        coef = np.array([float(expr.as_coeff_add()[0]) if t.is_number else float(expr.coeff(t))
                         for t in lib.terms])
    return coef, fit
