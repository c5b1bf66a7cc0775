"""The Hamiltonian pipeline: (q, p) trajectories to an exact potential V(q) (Bhat's method).

Two routes (see :mod:`symqp.decompose._hamiltonian` for the learner and the losses):
``route="direct"`` regresses the momentum increments on the gradient library, no network;
``route="neural"`` trains :class:`~symqp.decompose.HamiltonianPotential` first and regresses
its values.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import sympy as sp

from .._errors import BackendError, DataError, TrainingError
from .._numeric import numpy_function
from ..data._hamiltonian import HamiltonianData
from ..decompose import _potential_utils as fu
from ..decompose._hamiltonian import LOSSES, HamiltonianPotential, _as_data, _targets
from ..result import Result
from . import _potential as pu

__all__ = ["fit_hamiltonian"]


def fit_hamiltonian(
    data,
    *,
    library="poly(4)",
    backend="stlsq",
    route: str = "auto",
    loss: str = "midpoint",
    features: str | None = None,
    threshold: float | None = None,
    seed: int = 0,
    steps: int | None = None,
    hidden: Sequence[int] = (16, 16),
    lr: float = 1e-2,
    lbfgs_steps: int = 200,
    max_points: int | None = 200_000,
    model: HamiltonianPotential | None = None,
    verbose: bool = False,
    device: str = "cpu",
):
    """Exact potential V(q) of a separable Hamiltonian system from (q, p) trajectories.

    Parameters
    ----------
    data : HamiltonianData or path
        Trajectories (npz with ``q`` (R, N, d), ``p`` (R, N, d), ``h``, optional ``mass``, ``names``).
    library : str or Library
        Candidate terms, in the coordinate names (or in ``r`` when ``features`` is set), e.g.
        ``"poly(4)"`` or ``"1, r**-1, r**-2"``.
    backend : str or Backend
        ``"stlsq"`` (Bhat's thresholded least squares with his λ rule, or ``threshold``);
        with ``route="neural"`` any registered backend (``"sr3"``, ``"operon"``) fitting V_θ.
    route : {"auto", "direct", "neural"}
        Regress the momentum increments on ∇Θ directly, or train :class:`HamiltonianPotential`
        first and regress its values (Bhat's route). ``"auto"``: direct for ``"stlsq"``,
        neural for the other backends (they fit values of V).
    loss : {"forward", "midpoint", "trapezoid"}
        Evaluation point of ∇V in both routes ("forward" = Bhat's eq. 3).
    features : {None, "radius", "pair_distance"}
        Express V through ``r = |q|`` or the pair distance; the result is substituted back into q.
    threshold : float, optional
        STLSQ threshold; ``None`` uses Bhat's λ rule (``symqp.backends.tune_threshold``).
    seed, steps, hidden, lr, lbfgs_steps, max_points, verbose :
        Training settings for the neural route (``steps`` Adam steps, default 1000, then
        ``lbfgs_steps`` L-BFGS iterations, default 200; see :class:`HamiltonianPotential`).
    model : HamiltonianPotential, optional
        An already fitted network to reuse (neural route).
    device : {"cpu", "cuda"} or str
        torch device of the network (neural route; the direct route trains none).

    Returns
    -------
    Result
        ``model="hamiltonian"``; ``V`` the potential without its constant (the regressed
        intercept is kept in ``metrics["coefficients"]``), ``U = 2V`` as in every Result,
        ``g = 0`` and ``f = −∇V`` (the force ṗ = f(q)). ``metrics["V_features"]`` holds V in
        the feature variable when ``features`` is set.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from types import SimpleNamespace
    >>> from symqp.data._hamiltonian import sample_hamiltonian
    >>> q = sp.Symbol("q")
    >>> osc = SimpleNamespace(q=(q,), V=q**2 / 2, mass=None)
    >>> data = sample_hamiltonian(osc, 3, 200, 0.01, q0=[[0.0]] * 3, p0=[[1.0], [2.0], [3.0]])
    >>> res = fit_hamiltonian(data, library="poly(3)")
    >>> round(float(res.V.coeff(q, 2)), 4)
    0.5
    """
    t_start = time.perf_counter()
    data = _as_data(data)
    if route not in ("auto", "direct", "neural"):
        raise DataError(f"unknown route {route!r}; choose 'auto', 'direct' or 'neural'")
    if route == "auto":
        route = "direct" if pu.backend_name(backend) == "stlsq" else "neural"
    if loss not in LOSSES:
        raise DataError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    fu.check_features(features, data.d)
    syms, back = fu.feature_symbols(features, data.names)
    lib = pu.as_library(library, syms)
    timings: dict[str, float] = {}
    metrics: dict = {"route": route, "loss": loss, "features": features, "h": data.h,
                     "n_traj": data.n_traj, "n_steps": data.n_steps}
    bname = pu.backend_name(backend)

    qa, qb, rate = _targets(data, loss, max_points, seed)
    fit_obj = None
    if route == "direct":
        if bname != "stlsq":
            raise BackendError(f"route='direct' regresses on the gradient library with 'stlsq'; "
                               f"backend {bname!r} needs route='neural'")
        t0 = time.perf_counter()
        Za, Ja = fu.feature_values(qa, features)
        A = pu.gradient_design(lib, Za, Ja)
        if qb is not None:
            Zb, Jb = fu.feature_values(qb, features)
            A = 0.5 * (A + pu.gradient_design(lib, Zb, Jb))
        b = -rate.reshape(-1)
        coef, info = pu.sparse_fit(A, b, threshold=threshold)
        timings["regression"] = time.perf_counter() - t0
        metrics.update(info)
    else:
        t0 = time.perf_counter()
        if model is None:
            model = HamiltonianPotential(hidden=hidden, loss=loss, features=features,
                                         steps=1000 if steps is None else steps, lr=lr,
                                         lbfgs_steps=lbfgs_steps, max_points=max_points,
                                         seed=seed, verbose=verbose, device=device).fit(data)
        elif not hasattr(model, "net_"):
            raise TrainingError("the given model is not fitted")
        timings["training"] = time.perf_counter() - t0
        metrics["train_loss"] = model.final_loss_
        metrics["train_steps"] = len(model.loss_history_)
        t0 = time.perf_counter()
        pts = qa if qb is None else np.concatenate([qa, qb])
        pts = pts[np.random.default_rng(seed).permutation(len(pts))[: min(len(pts), 20000)]]
        Z, _ = fu.feature_values(pts, features)
        v = model.V(pts)
        if bname == "stlsq":
            theta = pu.library_values(lib, Z)
            coef, info = pu.sparse_fit(theta, v, threshold=threshold)
            metrics.update(info)
        else:
            coef, fit_obj = _backend_fit(backend, lib, Z, v, model, pts, features, seed)
        timings["regression"] = time.perf_counter() - t0
    V_feat, const = _drop_constant(lib, coef)
    metrics["coefficients"] = {name: float(c) for name, c in zip(lib.names, coef) if c != 0}
    metrics["intercept"] = const
    V = V_feat.subs(back) if back else sp.expand(V_feat)
    qsyms = tuple(sp.Symbol(s) for s in data.names)
    if features is not None:
        metrics["V_features"] = str(V_feat)
    grad_V = tuple(sp.diff(V, s) for s in qsyms)
    metrics["force_rmse"] = _force_rmse(grad_V, qsyms, data, loss, seed)
    timings["total"] = time.perf_counter() - t_start
    return Result(
        variables=tuple(data.names), U=2 * V, V=V, grad_V=grad_V,
        g=tuple(sp.Integer(0) for _ in qsyms), f=tuple(-gv for gv in grad_V),
        backend=bname, library=_spec(library, lib), metrics=metrics, timings=timings,
        fit=fit_obj, model="hamiltonian",
    )


def _spec(library, lib) -> str:
    return library if isinstance(library, str) else ", ".join(lib.names)


def _drop_constant(lib, coef: np.ndarray) -> tuple[sp.Expr, float]:
    const = 0.0
    keep = np.array(coef, dtype=np.float64)
    for j, term in enumerate(lib.terms):
        if term.is_number:
            const += float(keep[j] * float(term))
            keep[j] = 0.0
    return lib.expression(keep), const


def _backend_fit(backend, lib, Z, v, model, pts, features, seed):
    """Fit V_θ's values with a registered backend through a :class:`symqp.backends.Problem`."""
    from .. import backends

    be = backends.get_backend(backend) if isinstance(backend, str) else backend
    if features is None:
        grad = model.grad_V(pts)
    else:  # dV/dr by finite differences of the scalar network (exactness not needed here)
        eps = 1e-6 * max(1.0, float(np.abs(Z).max()))
        grad = ((model.V_features(Z + eps) - model.V_features(Z - eps)) / (2 * eps))[:, None]
    n = len(v)
    k = int(0.8 * n)
    prob = backends.Problem(X=Z[:k], f=-grad[:k], V=v[:k], g=np.zeros_like(grad[:k]), library=lib,
                            X_val=Z[k:], f_val=-grad[k:], V_val=v[k:], g_val=np.zeros_like(grad[k:]))
    fit = backends.fit_problem(be, prob)
    coef = None
    if fit.coef is not None:
        d = Z.shape[1]
        coef = np.asarray(fit.coef)[:, d]
    else:  # evolutionary backends: read coefficients of the library terms off the expression
        expr = sp.expand(fit.V)
        coef = np.array([float(expr.coeff(t)) if not t.is_number else float(expr.as_coeff_add()[0])
                         for t in lib.terms])
    return coef, fit


def _force_rmse(grad_V, qsyms, data: HamiltonianData, loss: str, seed: int) -> float:
    """RMS of (p_{i+1} − p_i)/h + ∇V over up to 20000 transitions (∇V at the loss's point)."""
    qa, qb, rate = _targets(data, loss, 20000, seed + 1)
    ev = numpy_function(list(grad_V), qsyms)
    g = ev(qa) if qb is None else 0.5 * (ev(qa) + ev(qb))
    return float(np.sqrt(np.mean(np.sum((rate + g) ** 2, axis=1))))
