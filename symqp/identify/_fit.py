"""``symqp.fit``: snapshot pairs to an exact symbolic quasipotential, by the chosen route.

The settings are validated once into a :class:`~symqp.identify._settings.FitSettings`; the
route (:mod:`symqp.identify._route`) does the work. ``method="auto"`` runs the network-free
symbolic route and falls back to the neural route when the symbolic result is not credible
(see :func:`credible`); the result records the route taken and why.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .._errors import IdentificationError
from ..result import Result
from ._assemble import QUALITY_LIMITS
from ._neural import log
from ._region import choose_tau
from ._route import get_route
from ._settings import FitSettings, as_pairs

__all__ = ["AUTO_LIMITS", "choose_tau", "credible", "fit"]

# ``method="auto"`` keeps the symbolic result only when all of these hold (measured on the
# benchmarks' systems: an identified f in the library gives a held-out one-step error at the
# noise / integrator floor, and an exact quasipotential an HJ residual ~1e-10).
AUTO_LIMITS = {
    # held-out RK4 one-step error relative to the mean squared displacement
    "val_one_step_rel": 0.05,
    # RMS of |grad V|^2 + f . grad V over RMS |f|^2 on the region
    "hj_residual": QUALITY_LIMITS["hj_residual"] / 2,
}


def credible(result: Result) -> tuple[bool, str]:
    """Whether a symbolic-route result is credible enough for ``method="auto"``, and why.

    Examples
    --------
    >>> import sympy as sp
    >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2, metrics={"val_one_step_rel": 0.5})
    >>> credible(r)
    (False, 'held-out one-step error 0.5 > 0.05')
    """
    m = result.metrics
    err = m.get("val_one_step_rel")
    if m.get("noise_share", 0.0) >= 0.5 and m.get("val_misfit_rel") is not None:
        # noisy pairs: the one-step error has a noise floor; judge what is left above it, and
        # only when it stands out of its own uncertainty (as the symbolic route's own test)
        err = m["val_misfit_rel"]
        if err <= 2.0 * m.get("val_misfit_rel_se", 0.0):
            err = None
    if err is not None and not err <= AUTO_LIMITS["val_one_step_rel"]:
        return False, f"held-out one-step error {err:.3g} > {AUTO_LIMITS['val_one_step_rel']:g}"
    hj = m.get("hj_residual")
    if hj is not None and not hj <= AUTO_LIMITS["hj_residual"]:
        return False, f"HJ residual {hj:.3g} > {AUTO_LIMITS['hj_residual']:g}"
    q = m.get("quality", "ok")
    if q != "ok":
        return False, q
    return True, "symbolic result credible (held-out one-step error and HJ residual within limits)"


def preflight(settings: FitSettings) -> None:
    """Check every requirement of the run before any work: the backend's parameters and
    optional modules (pyoperon, pysr, pysindy, ...) and, for the neural route, torch."""
    from .._optional import require
    from ._neural import get_backend_instance

    get_backend_instance(settings.backend, settings.backend_options)
    neural_asked = settings.decomposition_options or settings.steps is not None or settings.tau is not None
    if settings.decomposition is None and (settings.method == "neural" or (settings.method == "auto" and neural_asked)):
        require("torch")  # a network will be trained


def _auto(pairs: Any, settings: FitSettings) -> Result:
    """The symbolic route, or the neural one when the symbolic result is not credible."""
    if (settings.decomposition is not None or settings.decomposition_options or settings.steps is not None
            or settings.tau is not None):  # fmt: skip
        res = get_route("neural").run(pairs, settings)
        res.metrics["route_reason"] = "a decomposition or settings of the neural route were given"
        return res
    try:
        res = get_route("symbolic").run(pairs, settings)
        ok, why = credible(res)
    except IdentificationError as exc:
        ok, why = False, f"symbolic route failed: {exc}"
    if ok:
        res.metrics["route_reason"] = why
        return res
    log(settings.verbose, f"symbolic route not credible ({why}); falling back to the neural route")
    res = get_route("neural").run(pairs, settings)
    res.metrics["route_reason"] = f"fell back to the neural route: {why}"
    return res


def fit(
    pairs: Any,
    *,
    library: Any = "poly(4)",
    v_library: Any = None,
    g_library: Any = None,
    method: str = "auto",
    backend: Any = "sr3",
    backend_options: Mapping[str, Any] | None = None,
    tau: float | None = None,
    decomposition: Any = None,
    decomposition_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    steps: int | None = None,
    val_frac: float = 0.3,
    max_points: int = 20_000,
    refine: bool = True,
    stochastic: bool = False,
    bootstrap: int | None = None,
    verbose: bool = True,
) -> Result:
    """Trajectory snapshot pairs to an exact symbolic quasipotential.

    Parameters
    ----------
    pairs
        :class:`symqp.data.Pairs` or the path of an ``.npz`` file (``x0``, ``xh``, ``h``).
    library
        Library for the regression: a spec string (``"poly(4)"``, ``"poly(2), sin(x)"``) or a
        :class:`symqp.library.Library`. The union with ``v_library`` and ``g_library`` is used,
        closed under differentiation.
    v_library, g_library
        Hypothesis spaces of V and of g (subsets of the union library); ``None``: all terms.
    method
        ``"symbolic"``: network-free — f is identified sparsely from the pairs, then V from
        the Hamilton–Jacobi equation in the library, normalised by the Lyapunov equation at
        each stable state. ``"neural"``: the seed paper's route — a neural orthogonal
        decomposition, a constrained regression of its targets, refinement on the pairs.
        ``"auto"`` (default): symbolic, falling back to neural when the symbolic result is not
        credible (:func:`credible`, :data:`AUTO_LIMITS`), or neural when a decomposition or
        network settings are given. ``metrics["route"]`` and ``metrics["route_reason"]`` say
        what happened.
    backend
        Regression backend name (``"sr3"``, ``"stlsq"``, ``"operon"``, ``"pysr"``) or instance.
    backend_options
        Keyword arguments for the named backend.
    tau
        Neural route: sublevel threshold, an offset above min V_theta: the regression uses
        the training points with V_theta < min V_theta + tau. ``None``: :func:`choose_tau`.
    decomposition
        Neural route: a fitted decomposition (methods ``V``, ``grad_V``, ``g``, ``f`` on (n, d)
        arrays); ``None`` trains a :class:`symqp.decompose.NeuralDecomposition`.
    decomposition_options
        Keyword arguments of :class:`~symqp.decompose.NeuralDecomposition`.
    seed, device, steps
        Passed to the decomposition (``steps=None``: its default); ``seed`` also drives the
        split and the subsampling.
    val_frac
        Fraction of trajectories held out for validation (selection and metrics).
    max_points
        Bound on the number of regression points (balanced spatial subsample).
    refine
        Neural route: re-estimate the coefficients of every candidate on the backend's Pareto
        front from the pairs themselves (one-step RK4 error + orthogonality, on the
        candidate's support) and choose the simplest candidate within 10 % of the best
        held-out one-step error. The network then only has to find the support.
    stochastic
        The pairs are increments of an SDE dx = f dt + √ε dW: f is the drift and ε is
        estimated (``metrics["eps"]``, ``metrics["eps_std"]``).
    bootstrap
        Symbolic route on noisy pairs: number of cluster-bootstrap replicates behind the
        coefficient intervals and inclusion probabilities (``Result.uncertainty``,
        :meth:`Result.coefficient_table`); each replicate re-selects f and solves the
        constrained HJ problem again. ``None`` (default): 64 when the pairs are noisy and
        numerous enough, else none; ``0``: none.
    verbose
        Print progress to stderr.

    Returns
    -------
    Result
        U = 2V (min over the data region 0), grad V, g, f; metrics ``route``,
        ``route_reason``, ``val_one_step_rel`` (one RK4 step of f on held-out pairs, mean
        squared error over the mean squared displacement), ``orthogonality`` (mean
        ``|grad V . g| / (|grad V| |g|)`` on the region points), ``hj_residual``, ``quality``, and
        route-specific figures (``tau``, ``u_rel_err_vs_network`` for the neural route).

    Examples
    --------
    A decomposition known exactly (V = (x**2 + y**2)/2, g = (-y, x)) stands in for the network:

    >>> import numpy as np, symqp
    >>> class Exact:
    ...     def V(self, X): return 0.5 * (X ** 2).sum(1)
    ...     def grad_V(self, X): return X.copy()
    ...     def g(self, X): return np.c_[-X[:, 1], X[:, 0]]
    ...     def f(self, X): return self.g(X) - self.grad_V(X)
    >>> rng = np.random.default_rng(0)
    >>> x0 = rng.uniform(-1, 1, (400, 2))
    >>> pairs = symqp.data.Pairs(x0=x0, xh=x0, h=0.01, names=("x", "y"), traj=np.arange(400) % 40)
    >>> r = symqp.fit(pairs, library="poly(2)", decomposition=Exact(), verbose=False)
    >>> r.metrics["route"]
    'neural'
    """
    t0 = time.perf_counter()
    settings = FitSettings(
        library=library, v_library=v_library, g_library=g_library, backend=backend,
        backend_options=backend_options, tau=tau, decomposition=decomposition,
        decomposition_options=decomposition_options, seed=seed, device=device, steps=steps,
        val_frac=val_frac, max_points=max_points, refine=refine, verbose=verbose, method=method,
        stochastic=stochastic, bootstrap=bootstrap,
    )  # fmt: skip
    preflight(settings)
    pairs = as_pairs(pairs)
    if settings.method == "auto":
        res = _auto(pairs, settings)
    else:
        res = get_route(settings.method).run(pairs, settings)
        res.metrics["route_reason"] = f"method={settings.method!r} asked for"
    res.timings["total"] = time.perf_counter() - t0
    return res
