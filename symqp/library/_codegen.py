"""Numba kernels generated from SymPy expressions, cached as real source files.

A list of expressions e_1..e_m in variables x_1..x_d becomes a kernel

    @njit(parallel=True, cache=True, fastmath=False)
    def kernel(X, out):
        for r in prange(X.shape[0]):
            v0 = X[r, 0]; ...
            m4 = m1 * v0          # monomials: one multiplication each, from a parent
            c0 = math.sin(v0)     # other terms: common subexpressions (sympy.cse)
            out[r, 0] = ...

Beyond ``UNROLL_MAX`` monomial products (e.g. 1001 terms of degree 4 in 10 variables),
the monomials are computed instead by loops over an integer table passed to the kernel,
runs ``s[dst + i] = s[src + i] * x_k`` (contiguous in the graded order of ``poly``, so
they vectorise), in the row of ``out`` itself when the library is a graded polynomial
prefix, else in a scratch vector. This keeps the compile time flat (unrolled, such a
kernel takes minutes to compile) and shares one compiled kernel among such libraries.

The source, printed by a SymPy printer subclass, is written to
``<cache>/symqp_k_<hash of the source>.py`` and imported with :mod:`importlib`, so that Numba's on-disk cache (``cache=True``) is reused by later
processes (functions made by ``lambdify`` cannot be cached by Numba: sympy #18432).
The cache folder is ``$SYMQP_CACHE_DIR``, else ``$XDG_CACHE_HOME/symqp``, else ``~/.cache/symqp``. Numba is imported only
when a kernel is built. A NumPy path (``lambdify`` into NumPy, vectorised over rows)
serves tiny inputs and machines without Numba.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from .._errors import LibraryError, MissingDependencyError, first_line
from .._io import atomic_write
from .._numeric import numpy_columns

__all__ = [
    "Kernel",
    "cache_dir",
    "get_kernel",
    "kernel_plan",
    "kernel_source",
    "numpy_combination",
    "numpy_evaluate",
]

# Bump when the generated source changes shape, so stale cache files are not reused.
_CODEGEN_VERSION = "3"
# Below this many rows a kernel that is not yet loaded is not worth its load/compile time.
NUMBA_MIN_ROWS = 2048

_LOCK = threading.Lock()
_KERNELS: dict[str, Kernel] = {}


def cache_dir() -> Path:
    """Folder of generated kernel sources: ``$SYMQP_CACHE_DIR``, else ``$XDG_CACHE_HOME/symqp``,
    else ``~/.cache/symqp`` (empty variables count as unset)."""
    env = os.environ.get("SYMQP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "symqp"


class _KernelPrinter(PythonCodePrinter):
    """Python/``math`` printer whose integer powers become plain multiplications.

    ``x**3`` is printed ``(v0*v0*v0)`` instead of a call to ``pow``: Numba then emits
    multiplications (the same products the monomial chain uses), and float32 kernels stay
    in float32.
    """

    _MAX_MUL_POW = 8

    def _print_Pow(self, expr, rational=False):
        b, e = expr.as_base_exp()
        if e.is_Integer and 0 < abs(int(e)) <= self._MAX_MUL_POW:
            base = self.parenthesize(b, PRECEDENCE["Mul"] + 1)
            prod = "*".join([base] * abs(int(e)))
            return f"({prod})" if e > 0 else f"(1.0/({prod}))"
        if e == sp.Rational(1, 2):
            return f"math.sqrt({self._print(b)})"
        if e == sp.Rational(-1, 2):
            return f"(1.0/math.sqrt({self._print(b)}))"
        return super()._print_Pow(expr, rational=rational)

    def _print_Rational(self, expr):
        return f"({float(expr.p)!r}/{float(expr.q)!r})"

    def _print_Integer(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))


def _monomial(expr: sp.Expr, variables: Sequence[sp.Symbol]) -> tuple[float, tuple[int, ...]] | None:
    """``c * prod x_k**e_k`` with a numeric c and integers e_k >= 0, else None."""
    c, rest = expr.as_coeff_Mul()
    if not c.is_Number:
        return None
    pos = {v: k for k, v in enumerate(variables)}
    exps = [0] * len(variables)
    for fac in sp.Mul.make_args(rest):
        if fac == 1:
            continue
        b, e = fac.as_base_exp()
        if b not in pos or not e.is_Integer or int(e) < 0:
            return None
        exps[pos[b]] += int(e)
    return float(c), tuple(exps)


class _Plan:
    """What a kernel computes: straight-line statements plus, for large polynomial parts,
    integer tables driving loops over monomials (see :func:`kernel_plan`)."""

    def __init__(self) -> None:
        self.lines: list[str] = []  # statements per row (after the v{k} loads)
        self.values: dict[int, str] = {}  # term index -> Python text of its value
        self.blocks: list[list[int]] = []  # table mode: [dst, src, length, variable slot]
        self.nslots = 0  # table mode: monomial slots (constant, variables, products)
        self.inplace = False  # table mode: slot j is column j of out (no scratch)
        self.col: list[int] = []  # table mode with scratch: out[col[t]] = coef[t] * s[idx[t]]
        self.idx: list[int] = []
        self.coef: list[float] = []

    @property
    def table(self) -> bool:
        return self.nslots > 0


def _plan(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], unroll_max: int) -> _Plan:
    d = len(variables)
    vsyms = [sp.Symbol(f"v{k}") for k in range(d)]
    sub = dict(zip(variables, vsyms))
    plan = _Plan()
    printer = _KernelPrinter({"fully_qualified_modules": True, "strict": True})

    # 1. monomials c * x^a: each product computed once from a parent x^(a - e_j), with j
    #    the first variable present. In the graded order of poly() the products of one
    #    degree and one j then come from a contiguous run of parents (as in scikit-learn's
    #    PolynomialFeatures), which the table-driven kernel turns into vectorisable loops.
    order: dict[tuple[int, ...], int] = {(0,) * d: 0}
    for k in range(d):
        e = [0] * d
        e[k] = 1
        order[tuple(e)] = k + 1
    steps: list[tuple[int, int]] = []  # (parent slot, variable) of slots d+1, d+2, ...

    def need(a: tuple[int, ...]) -> int:
        if a in order:
            return order[a]
        j = min(k for k in range(d) if a[k] > 0)
        parent = list(a)
        parent[j] -= 1
        p = need(tuple(parent))
        order[a] = d + 1 + len(steps)
        steps.append((p, j))
        return order[a]

    monos: list[tuple[int, float, int]] = []
    general: list[int] = []
    for i, e in enumerate(exprs):
        e = sp.sympify(e)
        if e == 0:
            plan.values[i] = "0.0"
            continue
        mono = _monomial(e, variables)
        if mono is None:
            general.append(i)
            continue
        c, a = mono
        monos.append((i, c, need(a)))

    if len(steps) <= unroll_max:
        # straight-line code: every product a local variable (fastest for small libraries)
        def name(slot: int) -> str:
            return "1.0" if slot == 0 else f"v{slot - 1}" if slot <= d else f"m{slot - d - 1}"

        for s, (p, j) in enumerate(steps):
            plan.lines.append(f"m{s} = {name(p)} * v{j}")
        for i, c, slot in monos:
            plan.values[i] = name(slot) if c == 1.0 else f"({c!r} * {name(slot)})"
    else:
        # loops over integer tables: the compile time no longer grows with the library
        # (unrolled, the 1001 monomials of degree 4 in 10 variables took minutes to compile)
        plan.nslots = d + 1 + len(steps)
        for j, (p, k) in enumerate(steps, start=d + 1):
            last = plan.blocks[-1] if plan.blocks else None
            if last and last[3] == k + 1 and last[0] + last[2] == j and last[1] + last[2] == p:
                last[2] += 1
            else:
                plan.blocks.append([j, p, 1, k + 1])
        plan.inplace = len(monos) == plan.nslots and all(
            c == 1.0 and slot == i for i, c, slot in monos
        )
        if not plan.inplace:
            for i, c, slot in monos:
                plan.col.append(i)
                plan.idx.append(slot)
                plan.coef.append(c)

    # 2. everything else through common-subexpression elimination.
    if general:
        gex = [sp.sympify(exprs[i]).xreplace(sub) for i in general]
        reps, reduced = sp.cse(gex, symbols=sp.numbered_symbols("c"), optimizations="basic")
        try:
            for s, rhs in reps:
                plan.lines.append(f"{s} = {printer.doprint(rhs)}")
            for i, rhs in zip(general, reduced):
                plan.values[i] = f"({printer.doprint(rhs)})"
        except (NotImplementedError, TypeError, ValueError) as exc:  # unsupported function
            first = first_line(exc)
            raise LibraryError(f"cannot generate compiled code for a term: {first}") from None
    return plan


#: Monomial products written as straight-line code up to this many; beyond, a table loop.
UNROLL_MAX = 128
# Rows per chunk of the table-driven kernels (one scratch vector per chunk).
_CHUNK = 256


def kernel_plan(
    exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], mode: str, dtype=np.float64,
    *, unroll_max: int | None = None,
) -> tuple[str, tuple[np.ndarray, ...]]:
    """Source of a Numba kernel for ``exprs`` and the tables passed to it after its arguments.

    ``mode`` is 'matrix' (``kernel(X, out)``: out[r, i] = e_i(X[r])) or 'combination'
    (``kernel(X, coef, out)``: out[r, c] = sum_i coef[i, c] e_i(X[r])). The kernel is
    compiled eagerly for C-contiguous arrays of ``dtype``: with a fixed signature a later
    process loads it from Numba's disk cache without type inference. Up to ``unroll_max``
    (default :data:`UNROLL_MAX`) monomial products are unrolled; larger polynomial parts
    run loops over integer tables (returned; empty otherwise), so that the source, and its
    compiled code, is shared by all libraries with the same non-polynomial terms.
    """
    if mode not in ("matrix", "combination"):
        raise ValueError(mode)
    from .. import __version__

    plan = _plan(exprs, variables, UNROLL_MAX if unroll_max is None else unroll_max)
    dt = np.dtype(dtype).name
    arr = f"{dt}[:, ::1]"
    args = ["X", "out"] if mode == "matrix" else ["X", "coef", "out"]
    types = [arr] * len(args)
    tables: tuple[np.ndarray, ...] = ()
    if mode == "combination" and plan.inplace:
        plan.inplace = False  # combinations need the scratch vector
        plan.col = plan.idx = list(range(plan.nslots))
        plan.coef = [1.0] * plan.nslots
    if plan.table:
        args.append("blocks")
        types.append("int64[:, ::1]")
        tables = (np.array(plan.blocks, dtype=np.int64).reshape(-1, 4),)
        if not plan.inplace:
            args += ["nslots", "col", "idx", "mcoef"]
            types += ["int64", "int64[::1]", "int64[::1]", f"{dt}[::1]"]
            tables += (
                np.int64(plan.nslots), np.array(plan.col, dtype=np.int64),
                np.array(plan.idx, dtype=np.int64), np.array(plan.coef, dtype=dt),
            )
    general = sorted(plan.values)  # every term not in the monomial tables
    out = [
        f"# generated by symqp {__version__} (codegen {_CODEGEN_VERSION}): do not edit",
        "import math",
        "",
        "import numpy as np",
        "from numba import njit, prange",
        "",
        "",
        f'@njit("void({", ".join(types)})", parallel=True, cache=True, fastmath=False)',
        f"def kernel({', '.join(args)}):",
    ]
    # the monomial tables: s[0] = 1, s[1 + k] = x_k, then runs of products
    # s[dst + i] = s[src + i] * s[var] (contiguous, so the inner loop vectorises)
    fill = [
        "s[0] = 1.0",
        "for k in range(X.shape[1]):",
        "    s[k + 1] = X[r, k]",
        "for b in range(blocks.shape[0]):",
        "    dst = blocks[b, 0]",
        "    src = blocks[b, 1]",
        "    xk = s[blocks[b, 3]]",
        "    for i in range(blocks[b, 2]):",
        "        s[dst + i] = s[src + i] * xk",
    ]
    if plan.table and not plan.inplace:
        out += [
            "    n = X.shape[0]",
            f"    for ch in prange((n + {_CHUNK - 1}) // {_CHUNK}):",
            f"        s = np.empty(nslots, np.{dt})",
            f"        for r in range(ch * {_CHUNK}, min(n, (ch + 1) * {_CHUNK})):",
        ]
        ind = " " * 12
        out += [ind + s for s in fill]
    else:
        out.append("    for r in prange(X.shape[0]):")
        ind = " " * 8
        if plan.table:  # slot j is column j of out
            out += [ind + "s = out[r]"] + [ind + s for s in fill]
    if general or not plan.table:
        out += [ind + f"v{k} = X[r, {k}]" for k in range(len(variables))]
    out += [ind + s for s in plan.lines]
    if mode == "matrix":
        if plan.table and not plan.inplace:
            out += [ind + "for t in range(col.shape[0]):",
                    ind + "    out[r, col[t]] = mcoef[t] * s[idx[t]]"]
        out += [ind + f"out[r, {i}] = {plan.values[i]}" for i in general]
    else:
        out += [ind + f"t{i} = {plan.values[i]}" for i in general]
        out += [ind + "for c in range(coef.shape[1]):", ind + "    acc = 0.0"]
        if plan.table:
            out += [ind + "    for t in range(col.shape[0]):",
                    ind + "        acc += coef[col[t], c] * (mcoef[t] * s[idx[t]])"]
        out += [ind + f"    acc += coef[{i}, c] * t{i}" for i in general]
        out += [ind + "    out[r, c] = acc"]
    return "\n".join(out) + "\n", tables


def kernel_source(
    exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], mode: str, dtype=np.float64
) -> str:
    """Python source of the Numba kernel for ``exprs`` (see :func:`kernel_plan`)."""
    return kernel_plan(exprs, variables, mode, dtype)[0]


def _digest(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], mode: str, dtype) -> str:
    """Key of a kernel in this process: the terms, variables, mode, dtype and versions."""
    return _digest_cached(tuple(exprs), tuple(variables), mode, np.dtype(dtype).name, UNROLL_MAX)


# Memoised: srepr of a large library costs tens of milliseconds, more than evaluating it.
@functools.lru_cache(maxsize=256)
def _digest_cached(exprs: tuple, variables: tuple, mode: str, dtype: str, unroll_max: int) -> str:
    from .. import __version__

    h = hashlib.sha256()
    for part in (
        _CODEGEN_VERSION,
        __version__,
        str(unroll_max),
        mode,
        dtype,
        sp.srepr(variables),
        sp.srepr(tuple(sp.sympify(e) for e in exprs)),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class Kernel:
    """A loaded Numba kernel for a fixed list of expressions, mode and dtype.

    Calling it with the kernel's arguments appends its tables (table-driven kernels).
    """

    def __init__(self, func, path: Path, m: int, mode: str, dtype,
                 tables: tuple[np.ndarray, ...] = ()) -> None:
        self.func = func
        self.path = path
        self.m = m
        self.mode = mode
        self.dtype = np.dtype(dtype)
        self.tables = tables

    def __call__(self, *args):
        return self.func(*args, *self.tables)


def get_kernel(
    exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], *, mode: str = "matrix", dtype=np.float64
) -> Kernel:
    """Load (or generate, write and load) the kernel for ``exprs``.

    The file is named by a hash of its source, which carries the symqp and codegen
    versions, the dtype, and the terms (or, for table-driven polynomial parts, only the
    non-polynomial terms: the tables are arguments).

    Raises
    ------
    MissingDependencyError
        When Numba cannot be imported.
    """
    from .._optional import require

    require("numba")
    key = _digest(exprs, variables, mode, dtype)
    with _LOCK:
        if key in _KERNELS:
            return _KERNELS[key]
        src, tables = kernel_plan(exprs, variables, mode, dtype)
        folder = cache_dir()
        modname = f"symqp_k_{hashlib.sha256(src.encode()).hexdigest()[:32]}"
        path = folder / f"{modname}.py"
        module = sys.modules.get(modname)
        if module is None or Path(getattr(module, "__file__", "")) != path:
            module = _load_kernel_module(modname, path, src)
        kern = Kernel(module.kernel, path, len(exprs), mode, dtype, tables)
        _KERNELS[key] = kern
        return kern


def _write_kernel(path: Path, src: str) -> None:
    try:
        with atomic_write(path) as fh:
            fh.write(src)
    except OSError as exc:
        raise LibraryError(
            f"cannot write generated kernel to cache folder {path.parent} "
            f"(set SYMQP_CACHE_DIR to a writable folder): {exc}"
        ) from None


def _source_matches(path: Path, src: str) -> bool:
    """Whether the cached file holds exactly ``src`` (its name carries the source's hash)."""
    try:
        return path.read_bytes() == src.encode()
    except OSError:
        return False


def _purge_kernel(path: Path) -> None:
    """Remove a kernel file and Numba's cache entries for it (index and compiled code)."""
    for p in [path, *path.parent.glob(f"__pycache__/{path.stem}.*")]:
        try:
            p.unlink()
        except OSError:
            pass


def _import_kernel(modname: str, path: Path, src: str) -> ModuleType:
    if not _source_matches(path, src):
        _purge_kernel(path)
        _write_kernel(path, src)
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def _load_kernel_module(modname: str, path: Path, src: str) -> ModuleType:
    """Import the kernel file, writing it when it is absent or not exactly ``src``.

    A cached file whose content differs from the source its name hashes (truncated by a
    crash, edited, damaged on disk), or that fails to import (including a damaged Numba
    cache entry beside it), is removed with its Numba cache and generated again once.
    """
    try:
        return _import_kernel(modname, path, src)
    except LibraryError:
        raise
    except Exception:  # noqa: BLE001 - any failure of a cached file: rebuild it once
        _purge_kernel(path)
    try:
        return _import_kernel(modname, path, src)
    except LibraryError:
        raise
    except Exception as exc:  # noqa: BLE001
        _purge_kernel(path)
        raise LibraryError(f"cannot load generated kernel {path}: {first_line(exc)}") from None


def loaded(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], mode: str, dtype) -> bool:
    """Whether the kernel is already loaded in this process."""
    return _digest(exprs, variables, mode, dtype) in _KERNELS


def numba_available() -> bool:
    """Whether Numba can be imported (without raising)."""
    try:
        from .._optional import require

        require("numba")
    except MissingDependencyError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _lambdified(exprs: tuple[sp.Expr, ...], variables: tuple[sp.Symbol, ...]):
    # Kept per term list: building the function costs far more than a small evaluation.
    # SciPy supplies the special functions NumPy lacks (besselj, erf, ...).
    return numpy_columns(exprs, variables, special=True)


def _columns(exprs, variables, X: np.ndarray) -> list:
    fn = _lambdified(tuple(exprs), tuple(variables))
    try:
        with np.errstate(all="ignore"):
            return fn(*[X[:, k] for k in range(X.shape[1])])
    except (NameError, TypeError, AttributeError) as exc:
        raise LibraryError(f"cannot evaluate the library terms with NumPy: {exc}") from None


def numpy_evaluate(exprs, variables, X: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out[:, i] = exprs[i](X)`` with vectorised NumPy code."""
    cols = _columns(exprs, variables, X)
    for i, c in enumerate(cols):
        out[:, i] = c
    return out


def numpy_combination(exprs, variables, X: np.ndarray, coef: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = Theta(X) @ coef`` built column by column with NumPy (no (n, q) matrix)."""
    cols = _columns(exprs, variables, X)
    out[...] = 0.0
    for i, c in enumerate(cols):
        if np.any(coef[i] != 0):
            out += np.multiply.outer(np.broadcast_to(np.asarray(c, dtype=out.dtype), (X.shape[0],)), coef[i])
    return out
