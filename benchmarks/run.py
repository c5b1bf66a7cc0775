"""Run the benchmark modules and merge their figures into ``benchmarks/results.json``.

Usage::

    python benchmarks/run.py [--quick] [--only NAME ...] [--out PATH]

Every ``benchmarks/<name>.py`` (except this file and files starting with ``_``) that
defines ``run(quick: bool) -> dict[str, float]`` is imported and run. The figures are merged
into one flat JSON object of named numbers (existing keys from other benchmarks are kept,
so ``--only`` updates just its own), together with ``machine.*`` keys describing the
machine. The file is written atomically. A module that raises is reported, the others still
run, and the exit code is 1.

``--quick`` runs tiny sizes as a smoke test; its figures go to ``results-quick.json`` unless
``--out`` says otherwise, so they never overwrite the real measurements.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def discover() -> dict[str, Path]:
    """Benchmark module names -> files, in alphabetical order."""
    return {
        p.stem: p
        for p in sorted(HERE.glob("*.py"))
        if p.name != "run.py" and not p.name.startswith("_")
    }


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"symqp_benchmarks.{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path.name}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def machine_info() -> dict[str, object]:
    import numpy as np

    info: dict[str, object] = {
        "machine.cpu_count": os.cpu_count() or 0,
        "machine.platform": platform.platform(),
        "machine.processor": platform.processor() or platform.machine(),
        "machine.python": platform.python_version(),
        "machine.numpy": np.__version__,
        "machine.date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        from importlib import metadata

        info["machine.torch"] = metadata.version("torch")
    except Exception:  # noqa: BLE001 - torch is an optional extra
        info["machine.torch"] = "not installed"
    return info


def check_figures(name: str, figures: object) -> dict[str, float]:
    if not isinstance(figures, dict):
        raise TypeError(f"run() returned {type(figures).__name__}, expected dict[str, float]")
    out: dict[str, float] = {}
    for key, value in figures.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"figure name {key!r} is not a non-empty string")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"figure {key!r} is {type(value).__name__}, expected a number")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"figure {key!r} is not finite ({value})")
        out[key] = value
    return out


def read_results(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"warning: {path.name} is unreadable ({exc}); starting a new file", file=sys.stderr)
        return {}
    if not isinstance(data, dict):
        print(f"warning: {path.name} is not a JSON object; starting a new file", file=sys.stderr)
        return {}
    return data


def write_results(path: Path, data: dict[str, object]) -> None:
    from symqp._io import atomic_write

    with atomic_write(path) as fh:
        json.dump(dict(sorted(data.items())), fh, indent=2)
        fh.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run symqp benchmarks and merge their figures.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default results.json, results-quick.json with --quick)")
    args = parser.parse_args(argv)

    modules = discover()
    unknown = [n for n in args.only if n not in modules]
    if unknown:
        print(f"error: unknown benchmark {unknown[0]!r}; available: {', '.join(modules)}", file=sys.stderr)
        return 2
    names = args.only or list(modules)
    out = args.out or HERE / ("results-quick.json" if args.quick else "results.json")

    merged: dict[str, float] = {}
    failed: list[str] = []
    for name in names:
        t0 = time.perf_counter()
        try:
            mod = load(name, modules[name])
            if not callable(getattr(mod, "run", None)):
                continue  # a helper file, not a benchmark
            print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
            figures = check_figures(name, mod.run(quick=args.quick))
        except Exception as exc:  # noqa: BLE001 - report and keep going
            failed.append(name)
            print(f"FAILED {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            continue
        merged.update(figures)
        print(f"   {name}: {len(figures)} figures in {time.perf_counter() - t0:.1f} s", flush=True)

    data = read_results(out)
    data.update(merged)
    data.update(machine_info())
    write_results(out, data)
    print(f"wrote {len(merged)} figures to {out}")
    if failed:
        print(f"{len(failed)} benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
