"""The sweep driver: runs the points that are not in the table yet, on one of three executors.

- serially in this process (``jobs=1``);
- on joblib's process pool (``jobs=N``), each worker's BLAS/OpenMP/Numba threads capped;
- on Dask: an existing scheduler (``scheduler="tcp://host:port"``) or a
  :class:`distributed.LocalCluster` of ``jobs`` worker processes (``local_cluster=True``).

Workers return rows; only the driver writes: first the result JSON
(``results/<point id>.json``, atomically), then the table row (fsync'ed), so a restarted
sweep skips every point that has a row and loses at most the points that were running.
Failed points go to ``failures.jsonl`` and are tried again on the next run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._errors import ParameterError
from .._estimator import check_int
from .._io import atomic_write
from ._point import METRIC_COLUMNS, eps_columns, run_point, thread_env
from ._spec import Point, SweepSpec, load_spec, parse_spec
from ._table import Table

__all__ = ["SweepRun", "run_sweep"]


@dataclasses.dataclass
class SweepRun:
    """What a call of :func:`run_sweep` did.

    ``skipped``: points already in the table; ``ok`` / ``failed``: points run now;
    ``failures``: (point id, one-line error) of the failed ones.
    """

    out: Path
    table: Path
    n_points: int
    skipped: int
    ok: int
    failed: int
    failures: list[tuple[str, str]]
    wall_s: float
    executor: str


class _Progress:
    """One line per finished point on stderr: count, last point, elapsed and remaining time."""

    def __init__(self, name: str, total: int, skipped: int, enabled: bool) -> None:
        from .._progress import is_quiet

        self.name, self.total, self.skipped, self.enabled = name, total, skipped, enabled and not is_quiet()
        self.t0 = time.perf_counter()
        self.done = self.failed = 0
        if self.enabled:
            todo = total - skipped
            print(f"sweep {name}: {total} points, {skipped} already done, {todo} to run", file=sys.stderr, flush=True)

    def step(self, pid: str, ok: bool, wall: float | None) -> None:
        self.done += 1
        self.failed += not ok
        if not self.enabled:
            return
        el = time.perf_counter() - self.t0
        left = self.total - self.skipped - self.done
        eta = el / self.done * left
        what = f"ok in {wall:.1f} s" if ok and wall is not None else "FAILED"
        print(f"sweep {self.name}: {self.skipped + self.done}/{self.total} ({self.failed} failed)  {pid} {what}"
              f"  elapsed {el:.0f} s, about {eta:.0f} s left", file=sys.stderr, flush=True)  # fmt: skip


def _as_spec(spec: Any) -> tuple[SweepSpec, Path | None]:
    if isinstance(spec, SweepSpec):
        return spec, None
    if isinstance(spec, Mapping):
        return parse_spec(spec), None
    if isinstance(spec, (str, os.PathLike)):
        return load_spec(spec), Path(spec)
    raise ParameterError(f"sweep spec must be a SweepSpec, a mapping or a file path, got {type(spec).__name__}")


def _columns(spec: SweepSpec) -> list[str]:
    settings = list(dict.fromkeys(k for p in spec.points for k in p.columns()))
    return ["point_id", *settings, *METRIC_COLUMNS, *eps_columns(spec.analysis.eps)]


@contextlib.contextmanager
def _dask_client(scheduler: str | None, jobs: int, threads: int) -> Iterator[Any]:
    from .._optional import require

    distributed = require("distributed")
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            client = stack.enter_context(distributed.Client(scheduler, timeout="30s"))
        else:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.ERROR, env=thread_env(threads)))  # fmt: skip
            client = stack.enter_context(distributed.Client(cluster))
        yield client


def _dask(pending: list[Point], spec: SweepSpec, threads: int, scheduler: str | None, jobs: int) -> Iterator[dict]:
    from .._optional import require

    distributed = require("distributed")
    with _dask_client(scheduler, jobs, threads) as client:
        futures = {client.submit(run_point, p, spec.analysis, threads, key=f"symqp-sweep-{p.id}", pure=False): p
                   for p in pending}  # fmt: skip
        try:
            for fut in distributed.as_completed(futures):
                try:
                    yield fut.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker fails its point only
                    yield {"id": futures[fut].id, "row": None, "result": None,
                           "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}  # fmt: skip
        finally:
            client.cancel(list(futures))


def _joblib(pending: list[Point], spec: SweepSpec, threads: int, jobs: int) -> Iterator[dict]:
    from .._optional import require

    joblib = require("joblib")
    with joblib.parallel_config(backend="loky", inner_max_num_threads=threads):
        par = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")
        yield from par(joblib.delayed(run_point)(p, spec.analysis, threads) for p in pending)


def _executor(pending, spec, *, jobs, threads, scheduler, local_cluster) -> tuple[str, Iterator[dict]]:
    if scheduler is not None or local_cluster:
        label = f"dask {scheduler}" if scheduler else f"dask LocalCluster ({jobs} workers)"
        return label, _dask(pending, spec, threads, scheduler, jobs)
    if jobs == 1:
        return "serial", (run_point(p, spec.analysis, threads) for p in pending)
    return f"joblib ({jobs} processes)", _joblib(pending, spec, threads, jobs)


def _record_failure(out: Path, point: Point, error: str) -> None:
    entry = {"point_id": point.id, "settings": dict(point.settings), "error": error,
             "time": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    with open(out / "failures.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")


def run_sweep(
    spec: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    local_cluster: bool = False,
    threads: int | None = None,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], Any] | None = None,
) -> SweepRun:
    """Run a sweep: every point not yet in the table is simulated (or loaded), fitted and analysed.

    Parameters
    ----------
    spec
        A :class:`SweepSpec`, a mapping (see :mod:`symqp.sweep._spec`) or a TOML/YAML/JSON file.
    out
        The sweep folder (``table.csv``, ``results/<id>.json``, ``failures.jsonl``,
        ``spec.json``); default ``<spec file stem>.sweep`` beside a spec file.
    jobs
        Points run at once: processes of joblib's pool, or workers of a Dask LocalCluster.
    scheduler
        Address of a running Dask scheduler (``"tcp://host:port"``); its workers need symqp.
    local_cluster
        Start a :class:`distributed.LocalCluster` of ``jobs`` processes on loopback.
    threads
        BLAS/OpenMP/Numba/torch threads of each point; default: the cores divided by
        ``jobs`` (1 on a remote scheduler), so workers do not oversubscribe the cores.
    progress
        A line on stderr per finished point.
    on_row
        Called with each row after it is written.

    Returns
    -------
    SweepRun

    Examples
    --------
    >>> import tempfile
    >>> spec = {"base": {"system": "linear_nongradient", "n_traj": 40, "n_pairs": 20,
    ...                  "library": "poly(2)", "method": "symbolic"},
    ...         "grid": {"seed": [0, 1]}, "analysis": {"exit_time": False}}
    >>> out = tempfile.mkdtemp()
    >>> run = run_sweep(spec, out, progress=False)
    >>> run.ok, run_sweep(spec, out, progress=False).skipped
    (2, 2)
    """
    t0 = time.perf_counter()
    spec, path = _as_spec(spec)
    check_int("run_sweep", "jobs", jobs, minimum=1)
    check_int("run_sweep", "threads", threads, minimum=1, allow_none=True)
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise ParameterError(f"run_sweep.scheduler must be an address like 'tcp://host:8786', got {scheduler!r}")
    if scheduler is not None and local_cluster:
        raise ParameterError("run_sweep: give scheduler= or local_cluster=True, not both")
    if out is None:
        if path is None:
            raise ParameterError("run_sweep: out= (the sweep folder) is needed when the spec is not a file")
        out = path.with_name(path.stem + ".sweep")
    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "spec.json", "w", encoding="utf-8") as fh:
        json.dump(spec.source, fh, indent=2, sort_keys=True, default=str)
    table = Table(out / "table.csv", _columns(spec))
    pending = [p for p in spec.points if p.id not in table.done]
    if threads is None:
        threads = 1 if scheduler else max(1, (os.cpu_count() or 1) // min(jobs, max(1, len(pending))))
    label, results = _executor(pending, spec, jobs=jobs, threads=threads, scheduler=scheduler,
                               local_cluster=local_cluster)  # fmt: skip
    by_id = {p.id: p for p in pending}
    bar = _Progress(spec.name, len(spec.points), len(spec.points) - len(pending), progress)
    failures: list[tuple[str, str]] = []
    try:
        for res in results:
            point = by_id[res["id"]]
            if res["error"] is not None:
                failures.append((point.id, res["error"]))
                _record_failure(out, point, res["error"])
                bar.step(point.id, False, None)
                continue
            with atomic_write(out / "results" / f"{point.id}.json", "w", encoding="utf-8") as fh:
                json.dump(res["result"], fh, indent=2, allow_nan=False)
            table.append(res["row"])
            bar.step(point.id, True, res["row"].get("wall_s"))
            if on_row is not None:
                on_row(res["row"])
    finally:  # stop the running points and the workers now, also when interrupted
        close = getattr(results, "close", None)
        if close is not None:
            close()
    return SweepRun(out, table.path, len(spec.points), len(spec.points) - len(pending), bar.done - bar.failed,
                    bar.failed, failures, time.perf_counter() - t0, label)  # fmt: skip
