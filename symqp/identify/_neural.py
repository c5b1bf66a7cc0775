"""The neural route (the seed paper's pipeline): decomposition, regression, refinement.

1. Train (or take) an orthogonal decomposition f = −∇V_θ + g_θ on the training trajectories.
2. Keep the training points in the sublevel set {V_θ < min V_θ + τ}, spread evenly over space.
3. Build the targets G = [f_θ, V_θ, g_θ] there, scaled exactly by powers of two
   (:class:`~symqp.identify._region.Scaling`), and run a regression backend.
4. Refine every candidate of the backend's front on the pairs themselves and re-select on
   held-out pairs (:mod:`symqp.identify._refine`).
5. Map back to data coordinates and assemble the :class:`~symqp.result.Result`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import BackendError, DataError, SymqpError, TrainingError, first_line
from ..result import Result
from ._assemble import build_result, one_step_rel
from ._region import Scaling, balanced_subsample, choose_tau
from ._route import Route
from ._settings import FitSettings, LibrarySetup, resolve_library, split_pairs

__all__ = ["NeuralRoute", "Prepared", "get_backend_instance"]

_CHUNK = 50_000


@dataclasses.dataclass
class Prepared:
    """A regression problem in scaled coordinates, plus what is needed to map results back."""

    problem: Any
    setup: LibrarySetup
    names: tuple[str, ...]
    scaling: Scaling
    tau: float
    v_min: float
    X: np.ndarray  # regression points, data coordinates
    Xh: np.ndarray  # their x_h
    V_net: np.ndarray
    decomposition: Any
    train: Any
    val: Any
    X_val: np.ndarray | None  # held-out points in the sublevel set, and their x_h
    Xh_val: np.ndarray | None
    timings: dict[str, float]

    @property
    def library(self) -> Any:
        return self.setup.library


def log(verbose: bool, msg: str) -> None:
    """A log line on stderr when ``verbose`` (and not quiet: ``symqp -q``, ``SYMQP_QUIET=1``)."""
    if verbose:
        from .._progress import note

        note(msg)


def evaluate(dec: Any, X: np.ndarray, what: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Evaluate decomposition methods in chunks; non-finite output is a TrainingError."""
    out: dict[str, list[np.ndarray]] = {w: [] for w in what}
    for i in range(0, X.shape[0], _CHUNK):
        Xc = X[i : i + _CHUNK]
        for w in what:
            try:
                val = np.asarray(getattr(dec, w)(Xc), dtype=float)
            except SymqpError:
                raise
            except Exception as exc:
                raise TrainingError(f"evaluating the decomposition's {w} failed: {exc}") from exc
            out[w].append(val)
    res = {}
    for w, parts in out.items():
        arr = np.concatenate(parts, axis=0) if parts else np.empty((0,))
        if w == "V":
            arr = arr.reshape(-1)
        elif arr.ndim != 2 or arr.shape != X.shape:
            raise TrainingError(f"decomposition {w}(x) returned shape {arr.shape}, expected {X.shape}")
        if not np.all(np.isfinite(arr)):
            raise TrainingError(f"decomposition {w}(x) has non-finite values on the data")
        res[w] = arr
    return res


def _decomposition(train: Any, val: Any, settings: FitSettings) -> Any:
    """The settings' decomposition, checked, or a NeuralDecomposition trained on ``train``."""
    if settings.decomposition is not None:
        dec = settings.decomposition
        for attr in ("V", "grad_V", "g", "f"):
            if not callable(getattr(dec, attr, None)):
                raise TrainingError(f"the decomposition has no method {attr}(x)")
        return dec
    from ..decompose import NeuralDecomposition

    kw: dict[str, Any] = {"seed": settings.seed, "device": settings.device, "verbose": settings.verbose}
    kw.update(dict(settings.decomposition_options or {}))
    if settings.steps is not None:
        kw["steps"] = int(settings.steps)
    dec = NeuralDecomposition(**kw)
    log(settings.verbose, f"training the neural decomposition on {train.n} pairs ...")
    try:
        # the held-out trajectories of fit() are the network's validation data too, so the
        # network trains on every training trajectory instead of splitting them again
        return dec.fit(train, X_val=val) if val is not None else dec.fit(train)
    except SymqpError:
        raise
    except Exception as exc:
        raise TrainingError(f"neural decomposition failed: {type(exc).__name__}: {first_line(exc)}") from exc


def _held_out(dec: Any, val: Any, v_min: float, tau: float, max_points: int, rng: Any) -> tuple[Any, ...]:
    """Held-out points in the sublevel set (balanced) with their x_h and targets, or Nones."""
    if val is None or val.n == 0:
        return None, None, None
    Xv_all = np.asarray(val.x0, dtype=float)
    jv = np.flatnonzero(evaluate(dec, Xv_all, ("V",))["V"] < v_min + tau)
    if jv.size < 10:
        return None, None, None
    jv = jv[balanced_subsample(Xv_all[jv], max(10, max_points // 2), rng)]
    X_val = Xv_all[jv]
    return X_val, np.asarray(val.xh, dtype=float)[jv], evaluate(dec, X_val, ("V", "g", "f"))


def prepare(pairs: Any, settings: FitSettings) -> Prepared:
    """Decomposition, sublevel points and the scaled regression problem (steps 1–3)."""
    from ..backends import Problem

    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    names = tuple(str(n) for n in pairs.names)
    setup = resolve_library(settings, names)
    lib = setup.library
    t0 = time.perf_counter()
    train, val = split_pairs(pairs, settings)
    timings["split"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dec = _decomposition(train, val, settings)
    timings["decomposition"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    X_all = np.asarray(train.x0, dtype=float)
    V_all = evaluate(dec, X_all, ("V",))["V"]
    v_min = float(V_all.min())
    tau = float(settings.tau) if settings.tau is not None else choose_tau(V_all)
    inside = V_all < v_min + tau
    if inside.sum() < max(10, len(lib) + 1):
        raise DataError(
            f"only {int(inside.sum())} points below V_theta < min + {tau:.4g}; "
            f"need more than {len(lib)} (the library size): raise tau"
        )
    rng = np.random.default_rng(settings.seed)
    idx = np.flatnonzero(inside)
    idx = idx[balanced_subsample(X_all[idx], int(settings.max_points), rng)]
    X = X_all[idx]
    T = evaluate(dec, X, ("V", "g", "f"))
    X_val, Xh_val, Tv = _held_out(dec, val, v_min, tau, int(settings.max_points), rng)
    sc = Scaling.choose(lib, names, X, float(np.sqrt(np.mean(np.sum(T["f"] ** 2, axis=1)))))
    Tv = Tv or {}
    problem = Problem(
        X=sc.scale_x(X), f=sc.scale_field(T["f"]), V=sc.scale_V(T["V"]), g=sc.scale_field(T["g"]),
        library=lib, v_mask=setup.v_mask, g_mask=setup.g_mask,
        X_val=sc.scale_x(X_val), f_val=sc.scale_field(Tv.get("f")), V_val=sc.scale_V(Tv.get("V")),
        g_val=sc.scale_field(Tv.get("g")),
    )  # fmt: skip
    timings["targets"] = time.perf_counter() - t0
    log(
        settings.verbose,
        f"regression on {X.shape[0]} points with V_theta < min + {tau:.4g} "
        f"({100.0 * inside.mean():.1f}% of the training data), {len(lib)} library terms",
    )
    timings["prepare"] = time.perf_counter() - t_all
    return Prepared(
        problem=problem, setup=setup, names=names, scaling=sc, tau=tau, v_min=v_min, X=X,
        Xh=np.asarray(train.xh, dtype=float)[idx], V_net=T["V"], decomposition=dec, train=train,
        val=val, X_val=X_val, Xh_val=Xh_val, timings=timings,
    )  # fmt: skip


def get_backend_instance(backend: Any, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """A backend instance and its name, checked before any work is done.

    ``backend`` is a registered name (with ``options``), a :class:`~symqp.backends.Backend`
    or a pysindy optimizer (wrapped in the ``pysindy`` backend, which refuses optimizers
    without equality constraints). Parameters are validated and the optional modules the
    backend needs are imported here (:meth:`~symqp.backends.Backend.check`), so a bad
    setting or a missing extra is reported before a network trains; anything else is refused.
    """
    from ..backends import Backend, get_backend

    opts = dict(options or {})
    if isinstance(backend, str):
        be, name = get_backend(backend, **opts), backend
    elif isinstance(backend, Backend):
        if opts:
            raise BackendError("backend_options given together with a backend instance")
        be, name = backend, str(backend.name or type(backend).__name__.lower())
    elif (type(backend).__module__ or "").split(".")[0] == "pysindy":
        be, name = get_backend("pysindy", optimizer=backend, **opts), "pysindy"
    else:
        raise BackendError(
            "backend must be a registered name like 'sr3', a symqp.backends.Backend or a pysindy optimizer "
            f"with equality constraints (ConstrainedSR3), got {type(backend).__name__}"
        )
    return be.check(), name


def refine_prepared(prep: Prepared, fit_: Any, *, seed: int = 0, **options: Any) -> Any:
    """Refine a backend Fit of ``prep.problem`` on the pairs (in the scaled coordinates).

    The scaled problem has x~ = x 2**-s and f~ = f 2**(c - s), i.e. time t~ = t 2**-c, so the
    pairs map exactly to (x0 2**-s, xh 2**-s) with step h 2**-c.
    """
    from ._field import noisy_pairs
    from ._refine import refine_fit

    sc = prep.scaling
    if "centred" not in options:  # noisy pairs: the centred map, free of the errors-in-variables bias
        options["centred"] = noisy_pairs(
            prep.library, sc.scale_x(prep.X), sc.scale_x(prep.Xh), sc.scale_h(float(prep.train.h)),
            sc.scale_x(prep.X_val), sc.scale_x(prep.Xh_val), seed=seed,
        )  # fmt: skip
    new, _ = refine_fit(
        fit_, prep.library, X0=sc.scale_x(prep.X), XH=sc.scale_x(prep.Xh), h=sc.scale_h(float(prep.train.h)),
        X0_val=sc.scale_x(prep.X_val), XH_val=sc.scale_x(prep.Xh_val), V_target=prep.problem.V, seed=seed,
        **options,
    )  # fmt: skip
    return new


def assemble(prep: Prepared, fit_: Any, *, backend_name: str, settings: FitSettings,
             timings: Mapping[str, float] | None = None) -> Result:  # fmt: skip
    """Result in data coordinates from a backend Fit of a :class:`Prepared` problem (step 5)."""
    mapped = prep.scaling.to_data_fit(fit_)
    metrics: dict[str, Any] = {
        "route": "neural", "tau": prep.tau, "v_theta_min": prep.v_min, "n_points": int(prep.X.shape[0]),
        "n_train_pairs": int(prep.train.n),
    }  # fmt: skip
    reference = None
    val = prep.val
    if val is not None and val.n > 0:
        j = np.arange(min(val.n, _CHUNK))
        try:
            reference = one_step_rel(
                lambda x: evaluate(prep.decomposition, x, ("f",))["f"], np.asarray(val.x0)[j],
                np.asarray(val.xh)[j], float(val.h),
            )  # fmt: skip
            metrics["val_one_step_rel_network"] = reference
        except TrainingError:
            pass  # the network is evaluated outside the data region; the figure is optional
    tm = dict(prep.timings)
    tm.update(timings or {})
    res = build_result(
        prep.names, mapped.V, mapped.g, region=prep.X, val=val, reference_one_step=reference,
        metrics=metrics, timings=tm, verbose=settings.verbose, backend=backend_name,
        library=prep.setup.spec, fit=mapped, decomposition=prep.decomposition, model="orthogonal", tau=prep.tau,
    )  # fmt: skip
    diff = res.U_numpy(prep.X) - 2.0 * prep.V_net
    diff = diff - diff.mean()
    rmse = float(np.sqrt(np.mean(diff**2)))
    spread = float(np.std(2.0 * prep.V_net))
    res.metrics["u_rmse_vs_network"] = rmse
    res.metrics["u_rel_err_vs_network"] = rmse / spread if spread > 0 else rmse
    return res


class NeuralRoute(Route):
    """The seed paper's route: neural decomposition, constrained regression, refinement."""

    name = "neural"

    def run(self, pairs: Any, settings: FitSettings) -> Result:
        from ..backends import fit_problem

        be, name = get_backend_instance(settings.backend, settings.backend_options)
        prep = prepare(pairs, settings)
        t1 = time.perf_counter()
        fit_ = fit_problem(be, prep.problem)
        timings = {"regression": time.perf_counter() - t1}
        if settings.refine:
            t1 = time.perf_counter()
            fit_ = refine_prepared(prep, fit_, seed=settings.seed)
            timings["refine"] = time.perf_counter() - t1
            log(settings.verbose, f"refined the candidate models on the pairs in {timings['refine']:.1f} s")
        backend_name = str(getattr(fit_, "backend", "") or name)
        return assemble(prep, fit_, backend_name=backend_name, settings=settings, timings=timings)
