"""Library evaluation Theta(X): generated Numba kernel against lambdify, pysindy and memory.

Workload (issue 3): 500,000 points in 3 variables, the degree-5 polynomial library
(56 terms), and 10 variables at degree 4 (1001 terms, 50,000 points so that the four
(n, q) arrays fit in memory). Peers measured in the same run:

- the memory floor of the issue: ``np.copyto`` of an (n, q) float64 array into a
  preallocated one of the same size (it reads and writes n*q numbers, so a kernel that
  only writes them can come in under it: ratios below 1 are possible),
- ``sympy.lambdify`` of the terms into NumPy, columns written into an (n, q) array,
- pysindy ``PolynomialLibrary(degree=K).fit_transform(X)``.

The Numba figures are warm (kernel loaded, preallocated ``out``); every time is the best
of several runs (25 for Numba and the floor, 3 for the slow peers) to damp the noise of a
shared machine.
``compile_s`` is code generation plus Numba compilation into an empty cache folder;
``cached_first_result_s`` is measured in a fresh Python process that finds the compiled
kernel in that folder: the time from building the library to the first Theta(X), which
includes importing Numba (reported alone as ``numba_import_s``; ``cached_load_s`` is
import plus kernel load, before the evaluation).

Figures: ``library_eval.numba_s``, ``library_eval.floor_s``, ``library_eval.ratio_to_floor``,
``library_eval.pysindy_s``, ``library_eval.speedup_vs_pysindy``, ``library_eval.lambdify_s``,
``library_eval.speedup_vs_lambdify``, ``library_eval.compile_s``,
``library_eval.cached_first_result_s``, ``library_eval.cached_load_s``,
``library_eval.numba_import_s``,
``library_eval.max_rel_diff_vs_pysindy`` and the ``library_eval.d10_*`` counterparts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable

import numpy as np


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _floor(n: int, q: int, repeat: int) -> float:
    src = np.ones((n, q))
    dst = np.zeros((n, q))  # touched, so no page faults are timed
    return _best(lambda: np.copyto(dst, src), repeat)


def _compile(lib) -> float:
    """Code generation + Numba compilation of the matrix kernel into an empty cache."""
    from symqp._optional import require
    from symqp.library import _codegen

    require("numba")  # import time is not compile time
    _codegen._KERNELS.pop(
        _codegen._digest(lib.terms, lib.variables, "matrix", np.float64), None
    )
    t0 = time.perf_counter()
    _codegen.get_kernel(lib.terms, lib.variables, mode="matrix", dtype=np.float64)
    return time.perf_counter() - t0


_SUBPROCESS = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import symqp.library as L
    d, degree, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    X = np.random.default_rng(0).uniform(-1, 1, (n, d))
    names = [f"x{i}" for i in range(d)]
    from symqp.library import _codegen
    t0 = time.perf_counter()
    lib = L.poly(names, degree)
    k = _codegen.get_kernel(lib.terms, lib.variables)  # imports Numba, loads the kernel
    t1 = time.perf_counter()
    out = lib.evaluate(X, backend="numba")
    t2 = time.perf_counter()
    hits = sum(k.func.stats.cache_hits.values())
    print(json.dumps({"first": t2 - t0, "load": t1 - t0, "hits": hits}))
    """
)

_IMPORT = "import time; t0 = time.perf_counter(); import numba; print(time.perf_counter() - t0)"


def _cached_first_result(d: int, degree: int, n: int, cache: str) -> tuple[float, float, float]:
    env = dict(os.environ, SYMQP_CACHE_DIR=cache)
    res = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS, str(d), str(degree), str(n)],
        capture_output=True, text=True, env=env, check=True, timeout=600,
    )
    info = json.loads(res.stdout.strip().splitlines()[-1])
    if info["hits"] < 1:
        raise RuntimeError("the second process did not load the kernel from the disk cache")
    imp = subprocess.run(
        [sys.executable, "-c", _IMPORT], capture_output=True, text=True, check=True, timeout=600
    )
    return float(info["first"]), float(info["load"]), float(imp.stdout.strip())


def _case(d: int, degree: int, n: int, *, repeat: int, lambdify: bool, prefix: str) -> dict[str, float]:
    import sympy as sp
    from pysindy import PolynomialLibrary

    from symqp.library import poly

    lib = poly([f"x{i}" for i in range(d)], degree)
    q = len(lib)
    X = np.random.default_rng(0).uniform(-1, 1, (n, d))
    fig: dict[str, float] = {}

    compile_s = _compile(lib)
    out = np.zeros((n, q))
    lib.evaluate(X, out=out, backend="numba")
    numba_s = _best(lambda: lib.evaluate(X, out=out, backend="numba"), repeat)
    floor_s = _floor(n, q, repeat)

    ps = PolynomialLibrary(degree=degree)
    ref = ps.fit_transform(X)
    slow = max(1, min(3, repeat // 4))  # repeats of the slow peers
    pysindy_s = _best(lambda: PolynomialLibrary(degree=degree).fit_transform(X), slow)
    rel = float(np.max(np.abs(out - ref) / np.maximum(np.abs(ref), 1.0)))
    del ref

    fig[f"{prefix}numba_s"] = numba_s
    fig[f"{prefix}floor_s"] = floor_s
    fig[f"{prefix}ratio_to_floor"] = numba_s / floor_s
    fig[f"{prefix}pysindy_s"] = pysindy_s
    fig[f"{prefix}speedup_vs_pysindy"] = pysindy_s / numba_s
    fig[f"{prefix}max_rel_diff_vs_pysindy"] = rel
    fig[f"{prefix}compile_s"] = compile_s

    print(f"library_eval: {n} points, {d} variables, poly({degree}) = {q} terms")
    print(f"  numba (warm)          {numba_s:9.4f} s   ratio 1.00")
    print(f"  memory floor (copy)   {floor_s:9.4f} s   numba / floor = {numba_s / floor_s:.2f}")
    print(f"  pysindy fit_transform {pysindy_s:9.4f} s   {pysindy_s / numba_s:.1f}x slower than numba")
    if lambdify:
        fn = sp.lambdify(lib.variables, list(lib.terms), modules="numpy")
        buf = np.empty((n, q))

        def lam() -> None:
            for i, c in enumerate(fn(*X.T)):
                buf[:, i] = c

        lam_s = _best(lam, slow)
        fig[f"{prefix}lambdify_s"] = lam_s
        fig[f"{prefix}speedup_vs_lambdify"] = lam_s / numba_s
        print(f"  sympy.lambdify        {lam_s:9.4f} s   {lam_s / numba_s:.1f}x slower than numba")
    print(f"  compile (codegen + numba, empty cache) {compile_s:.2f} s")
    print(f"  max relative difference to pysindy {rel:.1e}")
    return fig


def run(quick: bool = False) -> dict[str, float]:
    import numba

    n3, n10, repeat = (20_000, 1_000, 3) if quick else (500_000, 50_000, 25)
    saved = os.environ.get("SYMQP_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="symqp-bench-") as cache:
        os.environ["SYMQP_CACHE_DIR"] = cache
        try:
            print(f"numba {numba.__version__}, {numba.get_num_threads()} threads")
            fig = _case(3, 5, n3, repeat=repeat, lambdify=True,
                        prefix="library_eval.")
            first, load, imp = _cached_first_result(3, 5, n3, cache)
            fig["library_eval.cached_first_result_s"] = first
            fig["library_eval.cached_load_s"] = load
            fig["library_eval.numba_import_s"] = imp
            print(f"  fresh process, warm disk cache: first result after {first:.3f} s, of which "
                  f"{load:.3f} s to import Numba and load the kernel (Numba import alone: "
                  f"{imp:.3f} s); the rest is the evaluation into newly allocated memory")
            fig.update(_case(10, 4, n10, repeat=repeat, lambdify=False,
                             prefix="library_eval.d10_"))
        finally:
            if saved is None:
                os.environ.pop("SYMQP_CACHE_DIR", None)
            else:
                os.environ["SYMQP_CACHE_DIR"] = saved
    for key, value in fig.items():
        print(f"  {key:42s} {value:.4g}")
    return fig


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
