"""One sweep point, run where a worker runs it: simulate (or load), fit, analyse, one table row.

:func:`run_point` is a plain function of picklable arguments, so joblib and Dask workers
(other processes, other machines) run it as they are; it never writes files — the driver
writes the result JSON and the row, so that a table row always has its result beside it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import resource
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._errors import SymqpError, first_line
from ._spec import Analysis, Point

__all__ = ["METRIC_COLUMNS", "eps_columns", "peak_rss_mb", "run_point", "thread_limits"]

# the columns every row has after the point's settings (plus eps_columns(analysis.eps))
METRIC_COLUMNS = (
    "status", "route", "quality", "val_one_step_rel", "hj_residual", "n_terms_U", "max_coef_err",
    "exact_support", "n_stable", "n_saddles", "dU", "n_barriers", "simulate_s", "fit_s", "analysis_s",
    "wall_s", "peak_mb", "threads", "host", "pid", "finished", "analysis_notes", "U",
)  # fmt: skip

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def eps_columns(eps: tuple[float, ...]) -> tuple[str, ...]:
    """Columns of Z_ε and of the exit time for each ε.

    Examples
    --------
    >>> eps_columns((0.1,))
    ('Z_eps_0.1', 'exit_time_eps_0.1')
    """
    return tuple(c for e in eps for c in (f"Z_eps_{e:g}", f"exit_time_eps_{e:g}"))


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that cap BLAS, OpenMP (torch) and Numba threads of a worker process."""
    return {k: str(int(threads)) for k in _THREAD_ENV}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``resource.getrusage``)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


@contextlib.contextmanager
def thread_limits(threads: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP (threadpoolctl), Numba and torch threads in the body (None: no cap)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    n = int(threads)
    torch = sys.modules.get("torch")
    old_env = os.environ.get("OMP_NUM_THREADS")
    if torch is None:  # torch reads this when it is first imported (by the neural route)
        os.environ["OMP_NUM_THREADS"] = str(n)
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    import numba

    old_numba = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(old_numba)
        if old_torch is not None:
            torch.set_num_threads(old_torch)
        if old_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old_env


def _system(settings: dict[str, Any]) -> Any:
    from ..systems import from_strings, get_system

    spec = settings["system"]
    if isinstance(spec, str):
        return get_system(spec, **settings.get("params", {}))
    known = ("field", "variables", "box", "U", "name")
    for key in spec:
        if key not in known:
            raise SymqpError(f"system table has no key {key!r} (known: {', '.join(known)})")
    if "field" not in spec or "variables" not in spec:
        raise SymqpError("a system table needs 'field' (one formula per variable) and 'variables'")
    return from_strings(spec["field"], spec["variables"], box=spec.get("box"), U=spec.get("U"),
                        name=str(spec.get("name", "custom")))  # fmt: skip


def load_or_simulate(settings: dict[str, Any]) -> tuple[Any, Any]:
    """(pairs, system or None) of a point: its data file, or a simulation of its system."""
    from ..data import load_pairs, sample_pairs
    from ..systems import sampling_defaults

    if "data" in settings:
        return load_pairs(settings["data"]), None
    system = _system(settings)
    name = settings["system"] if isinstance(settings["system"], str) else "rotated_gradient"
    cfg = sampling_defaults(name)
    cfg.update({k: settings[k] for k in ("n_traj", "n_pairs", "h", "dt", "noise") if k in settings})
    seed = settings.get("data_seed", settings.get("seed", 0))
    return sample_pairs(system, seed=seed, **cfg), system


def _note(notes: list[str], what: str, exc: BaseException) -> None:
    notes.append(f"{what}: {type(exc).__name__}: {first_line(exc)}")


def _box(result: Any, system: Any, pairs: Any) -> np.ndarray:
    if system is not None and getattr(system, "box", None) is not None:
        return np.asarray(system.box, float)
    X = np.asarray(pairs.x0, float)
    return np.c_[X.min(axis=0), X.max(axis=0)]


def analyse(result: Any, system: Any, pairs: Any, analysis: Analysis) -> dict[str, Any]:
    """Barrier, Z_ε, exit time and coefficient error of a fitted point (failures noted, not raised)."""
    from .. import analysis as an

    row: dict[str, Any] = {}
    notes: list[str] = []
    box = _box(result, system, pairs)
    if analysis.coefficients and system is not None and getattr(system, "U", None) is not None:
        try:
            from ..result import coefficient_errors

            ce = coefficient_errors(result.U, system.U, system.variables)
            row.update(max_coef_err=ce.max_abs, exact_support=bool(ce.exact_support))
        except SymqpError as exc:
            _note(notes, "coefficients", exc)
    lowest = None
    if analysis.barriers or analysis.exit_time:
        try:
            points = an.stationary_points(result, box=box)
            bars = an.barriers(result, points=points, box=box)
            row.update(n_stable=sum(p.is_stable for p in points), n_saddles=sum(p.is_saddle for p in points),
                       n_barriers=len(bars))  # fmt: skip
            if bars:
                lowest = min(bars, key=lambda b: b.dU)
                row["dU"] = lowest.dU
        except (SymqpError, ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
            _note(notes, "barriers", exc)
    for e in analysis.eps:
        z_col, t_col = eps_columns((e,))
        if analysis.partition:
            try:
                row[z_col] = float(an.partition_function(result, eps=e, box=box).value)
            except (SymqpError, ArithmeticError, ValueError) as exc:
                _note(notes, f"Z_eps({e:g})", exc)
        if analysis.exit_time and lowest is not None:
            try:
                est = an.exit_time_estimate(result, minimum=lowest.minimum, saddle=lowest.saddle, eps=[e])
                if est.times is not None:
                    row[t_col] = float(est.times[0])
                else:
                    notes.append(f"exit time({e:g}): {est.note}")
            except (SymqpError, ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
                _note(notes, f"exit time({e:g})", exc)
    row["analysis_notes"] = "; ".join(notes)
    return row


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_point(point: Point, analysis: Analysis, threads: int | None = 1) -> dict[str, Any]:
    """Simulate (or load), fit and analyse one point; ``{"id", "row", "result", "error"}``.

    ``row`` is the table row (settings, :data:`METRIC_COLUMNS`, :func:`eps_columns`),
    ``result`` the result's JSON dictionary; on a failure of the data or the fit both are
    None and ``error`` is one line. Analysis failures do not fail the point: they leave
    their columns empty and are listed in ``analysis_notes``.

    Examples
    --------
    >>> from symqp.sweep import Point, Analysis
    >>> p = Point.make({"system": "linear_nongradient", "n_traj": 40, "n_pairs": 20,
    ...                 "library": "poly(2)", "method": "symbolic"})
    >>> out = run_point(p, Analysis(eps=(0.1,), exit_time=False))
    >>> out["error"], out["row"]["exact_support"], out["row"]["n_stable"]
    (None, True, 1)
    """
    t_start = time.perf_counter()
    settings = dict(point.settings)
    with thread_limits(threads):
        try:
            t0 = time.perf_counter()
            pairs, system = load_or_simulate(settings)
            t_sim = time.perf_counter() - t0
            import symqp

            t0 = time.perf_counter()
            result = symqp.fit(pairs, **point.fit_options(), verbose=False)
            t_fit = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - one failed point must not end the sweep
            return {"id": point.id, "row": None, "result": None,
                    "error": f"{type(exc).__name__}: {first_line(exc)}"}  # fmt: skip
        t0 = time.perf_counter()
        figures = analyse(result, system, pairs, analysis)
        t_an = time.perf_counter() - t0
    m = result.metrics
    row: dict[str, Any] = {"point_id": point.id, **point.columns()}
    row.update(
        status="ok", route=m.get("route"), quality=m.get("quality"), val_one_step_rel=m.get("val_one_step_rel"),
        hj_residual=m.get("hj_residual"), n_terms_U=len(result.U.as_ordered_terms()), simulate_s=t_sim,
        fit_s=t_fit, analysis_s=t_an, wall_s=time.perf_counter() - t_start, peak_mb=peak_rss_mb(),
        threads=threads, host=socket.gethostname(), pid=os.getpid(),
        finished=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), U=str(result.U),
    )  # fmt: skip
    row.update(figures)
    row = {k: _finite(v) for k, v in row.items()}
    return {"id": point.id, "row": row, "result": result.to_dict(), "error": None}
