"""Numba kernels generated from SymPy expressions, cached as real source files.

A list of expressions e_1..e_m in variables x_1..x_d becomes a kernel

    @njit(parallel=True, cache=True, fastmath=False)
    def kernel(X, out):
        for r in prange(X.shape[0]):
            v0 = X[r, 0]; ...
            m4 = m1 * v0          # monomials: one multiplication each, from a parent
            c0 = math.sin(v0)     # other terms: common subexpressions (sympy.cse)
            out[r, 0] = ...

written by a SymPy printer subclass into ``<cache>/symqp_k_<hash>.py`` and imported with
:mod:`importlib`, so that Numba's on-disk cache (``cache=True``) is reused by later
processes (functions made by ``lambdify`` cannot be cached by Numba: sympy #18432).
The cache folder is ``$SYMQP_CACHE_DIR`` or ``~/.cache/symqp``. Numba is imported only
when a kernel is built. A NumPy path (``lambdify`` into NumPy, vectorised over rows)
serves tiny inputs and machines without Numba.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from .._errors import LibraryError, MissingDependencyError
from .._io import atomic_write

__all__ = ["cache_dir", "Kernel", "get_kernel", "numpy_evaluate", "numpy_combination"]

# Bump when the generated source changes shape, so stale cache files are not reused.
_CODEGEN_VERSION = "2"
# Below this many rows a kernel that is not yet loaded is not worth its load/compile time.
NUMBA_MIN_ROWS = 2048

_LOCK = threading.Lock()
_KERNELS: dict[str, Kernel] = {}


def cache_dir() -> Path:
    """Folder of generated kernel sources: ``$SYMQP_CACHE_DIR`` or ``~/.cache/symqp``."""
    env = os.environ.get("SYMQP_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "symqp"


class _KernelPrinter(PythonCodePrinter):
    """Python/``math`` printer whose integer powers become plain multiplications.

    ``x**3`` is printed ``(v0*v0*v0)`` instead of a call to ``pow``: Numba then emits
    multiplications (the same products the monomial chain uses), and float32 kernels stay
    in float32.
    """

    _MAX_MUL_POW = 8

    def _print_Pow(self, expr, rational=False):  # noqa: D102 - printer dispatch
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

    def _print_Rational(self, expr):  # noqa: D102
        return f"({float(expr.p)!r}/{float(expr.q)!r})"

    def _print_Integer(self, expr):  # noqa: D102
        return repr(float(expr))

    def _print_Float(self, expr):  # noqa: D102
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


def _body(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol]) -> tuple[list[str], list[str]]:
    """Statements computing ``t{i}`` for each expression; returns (statements, values).

    ``values[i]`` is the Python text of expression i (a local name or a literal).
    """
    d = len(variables)
    vsyms = [sp.Symbol(f"v{k}") for k in range(d)]
    sub = dict(zip(variables, vsyms))
    lines = [f"v{k} = X[r, {k}]" for k in range(d)]
    values: list[str] = [""] * len(exprs)
    printer = _KernelPrinter({"fully_qualified_modules": True, "strict": True})

    # 1. monomials c * x^a: each product computed once from a parent x^(a - e_j).
    mono_name: dict[tuple[int, ...], str] = {(0,) * d: "1.0"}
    for k in range(d):
        e = [0] * d
        e[k] = 1
        mono_name[tuple(e)] = f"v{k}"
    mono_lines: list[tuple[int, str]] = []

    def need(a: tuple[int, ...]) -> str:
        if a in mono_name:
            return mono_name[a]
        j = max(k for k in range(d) if a[k] > 0)
        parent = list(a)
        parent[j] -= 1
        pname = need(tuple(parent))
        name = f"m{len(mono_lines)}"
        mono_lines.append((sum(a), f"{name} = {pname} * v{j}"))
        mono_name[a] = name
        return name

    general: list[int] = []
    for i, e in enumerate(exprs):
        e = sp.sympify(e)
        if e == 0:
            values[i] = "0.0"
            continue
        mono = _monomial(e, variables)
        if mono is None:
            general.append(i)
            continue
        c, a = mono
        name = need(a)
        values[i] = name if c == 1.0 else f"({c!r} * {name})"
    lines += [s for _, s in mono_lines]

    # 2. everything else through common-subexpression elimination.
    if general:
        gex = [sp.sympify(exprs[i]).xreplace(sub) for i in general]
        reps, reduced = sp.cse(gex, symbols=sp.numbered_symbols("c"), optimizations="basic")
        try:
            for s, rhs in reps:
                lines.append(f"{s} = {printer.doprint(rhs)}")
            for i, rhs in zip(general, reduced):
                values[i] = f"({printer.doprint(rhs)})"
        except Exception as exc:  # printer refuses an unsupported function
            raise LibraryError(f"cannot generate compiled code for a term: {exc}") from None
    return lines, values


def kernel_source(
    exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], mode: str, dtype=np.float64
) -> str:
    """Python source of a Numba kernel for ``exprs`` (``mode`` 'matrix' or 'combination').

    The kernel is compiled eagerly for C-contiguous arrays of ``dtype``: with a fixed
    signature a later process loads it from Numba's disk cache without type inference.
    """
    lines, values = _body(exprs, variables)
    ind = " " * 8
    arr = f"{np.dtype(dtype).name}[:, ::1]"
    sig = f"void({arr}, {arr})" if mode == "matrix" else f"void({arr}, {arr}, {arr})"
    out = [
        "# generated by symqp: do not edit",
        "import math",
        "from numba import njit, prange",
        "",
        "",
        f'@njit("{sig}", parallel=True, cache=True, fastmath=False)',
    ]
    if mode == "matrix":
        out += ["def kernel(X, out):", "    for r in prange(X.shape[0]):"]
        out += [ind + s for s in lines]
        out += [ind + f"out[r, {i}] = {v}" for i, v in enumerate(values)]
    elif mode == "combination":
        out += ["def kernel(X, coef, out):", "    for r in prange(X.shape[0]):"]
        out += [ind + s for s in lines]
        out += [ind + f"t{i} = {v}" for i, v in enumerate(values)]
        out += [ind + "for c in range(coef.shape[1]):", ind + "    s = 0.0"]
        out += [ind + f"    s += coef[{i}, c] * t{i}" for i in range(len(values))]
        out += [ind + "    out[r, c] = s"]
    else:  # pragma: no cover - internal
        raise ValueError(mode)
    return "\n".join(out) + "\n"


def _digest(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], mode: str, dtype) -> str:
    from .. import __version__

    h = hashlib.sha256()
    for part in (
        _CODEGEN_VERSION,
        __version__,
        mode,
        np.dtype(dtype).name,
        sp.srepr(tuple(variables)),
        sp.srepr(tuple(sp.sympify(e) for e in exprs)),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class Kernel:
    """A loaded Numba kernel for a fixed list of expressions, mode and dtype."""

    def __init__(self, func, path: Path, m: int, mode: str, dtype) -> None:
        self.func = func
        self.path = path
        self.m = m
        self.mode = mode
        self.dtype = np.dtype(dtype)

    def __call__(self, *args):
        return self.func(*args)


def get_kernel(
    exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol], *, mode: str = "matrix", dtype=np.float64
) -> Kernel:
    """Load (or generate, write and load) the kernel for ``exprs``.

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
        folder = cache_dir()
        modname = f"symqp_k_{key}"
        path = folder / f"{modname}.py"
        if not path.exists():
            src = kernel_source(exprs, variables, mode, dtype)
            try:
                with atomic_write(path) as fh:
                    fh.write(src)
            except OSError as exc:
                raise LibraryError(
                    f"cannot write generated kernel to cache folder {folder} "
                    f"(set SYMQP_CACHE_DIR to a writable folder): {exc}"
                ) from None
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        kern = Kernel(module.kernel, path, len(exprs), mode, dtype)
        _KERNELS[key] = kern
        return kern


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


def _lambdified(exprs: Sequence[sp.Expr], variables: Sequence[sp.Symbol]):
    # lambdify prints the (already validated) SymPy expressions; no user text is involved.
    return sp.lambdify(tuple(variables), list(exprs), modules="numpy", cse=True)


def numpy_evaluate(exprs, variables, X: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out[:, i] = exprs[i](X)`` with vectorised NumPy code."""
    fn = _lambdified(exprs, variables)
    with np.errstate(all="ignore"):
        cols = fn(*[X[:, k] for k in range(X.shape[1])])
    for i, c in enumerate(cols):
        out[:, i] = c
    return out


def numpy_combination(exprs, variables, X: np.ndarray, coef: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = Theta(X) @ coef`` built column by column with NumPy (no (n, q) matrix)."""
    fn = _lambdified(exprs, variables)
    with np.errstate(all="ignore"):
        cols = fn(*[X[:, k] for k in range(X.shape[1])])
    out[...] = 0.0
    for i, c in enumerate(cols):
        if np.any(coef[i] != 0):
            out += np.multiply.outer(np.broadcast_to(np.asarray(c, dtype=out.dtype), (X.shape[0],)), coef[i])
    return out
