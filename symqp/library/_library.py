"""The :class:`Library` of SymPy terms and its presets (poly, trig, rational, product)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import scipy.sparse
import sympy as sp

from .._errors import DataError, LibraryError
from .._parse import expanded_size, name_problem, parse_expr_safe, shorten
from . import _codegen
from ._closure import check_closure
from ._terms import (
    Span,
    decompose,
    derivative_expansion,
    key_expr,
    solve_in_span,
    sum_products,
    times_term,
)

__all__ = ["MAX_TERMS", "Library", "custom", "poly", "product", "rational", "trig"]

#: Largest library a preset or spec may build (poly(20) in 10 variables has 3e7 terms).
MAX_TERMS = 20_000
#: Most terms the exact expansion of one library term may have ((x + y + z)**30 has 496).
MAX_EXPANSION = 10_000
_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def _as_variables(variables: Iterable[str | sp.Symbol]) -> tuple[sp.Symbol, ...]:
    if isinstance(variables, (str, sp.Symbol)):
        variables = [variables]
    out: list[sp.Symbol] = []
    for v in variables:
        if not isinstance(v, (str, sp.Symbol)):
            raise LibraryError(f"variables must be names or SymPy Symbols, got {type(v).__name__}")
        problem = name_problem(v if isinstance(v, str) else v.name)
        if problem:
            raise LibraryError(f"variable name {problem}")
        out.append(sp.Symbol(v) if isinstance(v, str) else v)
    names = [str(v) for v in out]
    if not out:
        raise LibraryError("a library needs at least one variable")
    if len(set(names)) != len(names):
        raise LibraryError(f"duplicate variable names in {names}")
    return tuple(out)


def _as_term(t: Any, variables: tuple[sp.Symbol, ...]) -> sp.Expr:
    if isinstance(t, str):
        t = parse_expr_safe(t, variables)
    elif isinstance(t, (bool, np.bool_)):
        raise LibraryError(f"library term {t!r} is not an expression")
    elif isinstance(t, (int, np.integer)):
        t = sp.Integer(int(t))
    elif isinstance(t, (float, np.floating)):
        t = sp.Float(float(t))
    elif not isinstance(t, sp.Expr):
        raise LibraryError(f"library term of type {type(t).__name__} is not a SymPy expression")
    by_name = {str(v): v for v in variables}
    extra = sorted(str(s) for s in t.free_symbols if str(s) not in by_name)
    if extra:
        raise LibraryError(
            f"term {t} uses {', '.join(extra)}, not among the variables {', '.join(by_name)}"
        )
    t = t.xreplace({s: by_name[str(s)] for s in t.free_symbols if s not in variables})
    if t == 0:
        raise LibraryError("a library term is identically zero")
    if t.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise LibraryError(f"library term {t} is not finite")
    size = expanded_size(t)
    if size > MAX_EXPANSION:
        raise LibraryError(
            f"library term {shorten(str(t))} expands into about {size:.3g} terms (limit {MAX_EXPANSION})"
        )
    return t


def _as_mask(mask: Any, q: int, what: str) -> np.ndarray:
    """A bool (q,) mask from a bool mask, an index list or None (= all)."""
    if mask is None:
        return np.ones(q, dtype=bool)
    arr = np.asarray(mask)
    if arr.dtype == bool:
        if arr.shape != (q,):
            raise LibraryError(f"{what} has shape {arr.shape}, expected ({q},)")
        return arr.copy()
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise LibraryError(f"{what} must be a bool mask of length {q} or a list of column indices")
    if arr.size and (arr.min() < -q or arr.max() >= q):
        raise LibraryError(f"{what} has a column index outside 0..{q - 1}")
    out = np.zeros(q, dtype=bool)
    out[arr] = True
    return out


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DataError(f"unknown dtype {dtype!r}; use float64 or float32") from None
    if dt not in _DTYPES:
        raise DataError(f"dtype {dt} is not supported; use float64 or float32")
    return dt


class Library:
    """An ordered, de-duplicated list of SymPy terms theta_1..theta_q in named variables.

    Parameters
    ----------
    terms
        SymPy expressions (strings are parsed with the safe parser, numbers become
        constants). Repeated terms are dropped, keeping the first.
    variables
        Variable names or Symbols, in the column order of the data X.

    Examples
    --------
    >>> lib = Library(["1", "x", "x*y", "sin(y)"], ["x", "y"])
    >>> len(lib), lib.names
    (4, ('1', 'x', 'x*y', 'sin(y)'))
    >>> lib.missing_derivatives()
    (y, cos(y))
    >>> lib.closed().names
    ('1', 'x', 'x*y', 'sin(y)', 'y', 'cos(y)')
    """

    def __init__(self, terms: Iterable[Any], variables: Iterable[str | sp.Symbol]) -> None:
        self._variables = _as_variables(variables)
        if isinstance(terms, (str, sp.Basic)):
            terms = [terms]
        seen: dict[sp.Expr, None] = {}
        for t in terms:
            seen.setdefault(_as_term(t, self._variables), None)
        if not seen:
            raise LibraryError("a library needs at least one term")
        self._terms = tuple(seen)
        self._index = {t: i for i, t in enumerate(self._terms)}
        self._parts: list[dict] | None = None
        self._span: tuple | None = None
        self._dcoef: dict[tuple[int, int], tuple[dict | None, list]] = {}
        self._dterms: dict[int, tuple[sp.Expr, ...]] = {}

    @classmethod
    def from_pysindy(cls, lib: Any, names: Iterable[str] | str) -> Library:
        """The library of a pysindy feature library (polynomial, Fourier, custom with names, sums
        and products of these), each printed column read as a formula and checked against the
        column pysindy computes; see :func:`symqp.library._pysindy.from_pysindy`.

        Examples
        --------
        >>> import pysindy as ps
        >>> Library.from_pysindy(ps.PolynomialLibrary(degree=2, include_bias=False), "x y").names
        ('x', 'y', 'x**2', 'x*y', 'y**2')
        """
        from ._pysindy import from_pysindy

        return from_pysindy(lib, names)

    # ------------------------------------------------------------------ basics
    @property
    def terms(self) -> tuple[sp.Expr, ...]:
        """The terms theta_1..theta_q."""
        return self._terms

    @property
    def variables(self) -> tuple[sp.Symbol, ...]:
        """The variables, in the column order of X."""
        return self._variables

    @property
    def names(self) -> tuple[str, ...]:
        """Printable names of the terms."""
        return tuple(str(t) for t in self._terms)

    @property
    def d(self) -> int:
        """Number of variables."""
        return len(self._variables)

    def __len__(self) -> int:
        return len(self._terms)

    def __iter__(self) -> Iterator[sp.Expr]:
        return iter(self._terms)

    def __repr__(self) -> str:
        shown = ", ".join(self.names[:6]) + (", ..." if len(self) > 6 else "")
        vs = ", ".join(str(v) for v in self._variables)
        return f"Library({len(self)} terms in {vs}: {shown})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Library):
            return NotImplemented
        return self._terms == other._terms and self._variables == other._variables

    def __hash__(self) -> int:
        return hash((self._terms, self._variables))

    def __add__(self, other: Library) -> Library:
        if not isinstance(other, Library):
            return NotImplemented
        vs = self._variables + tuple(v for v in other._variables if v not in self._variables)
        return Library(self._terms + other._terms, vs)

    def __mul__(self, other: Library) -> Library:
        if not isinstance(other, Library):
            return NotImplemented
        return product(self, other)

    def index(self, term: Any) -> int:
        """Column of ``term`` (an expression or a formula string).

        Examples
        --------
        >>> poly(["x", "y"], 2).index("x*y")
        4
        """
        t = _as_term(term, self._variables)
        try:
            return self._index[t]
        except KeyError:
            raise LibraryError(f"term {t} is not in the library") from None

    def mask_of(self, sublibrary: Library | Iterable[Any]) -> np.ndarray:
        """Bool mask (q,) of the columns of ``self`` that are terms of ``sublibrary``.

        Used for hypothesis sub-spaces, e.g. V in ``poly(4)`` and g in ``poly(3)`` within
        one shared ``poly(4)`` library.

        Examples
        --------
        >>> lib = poly(["x"], 3)
        >>> lib.mask_of(poly(["x"], 1)).tolist()
        [True, True, False, False]
        """
        terms = sublibrary.terms if isinstance(sublibrary, Library) else [
            _as_term(t, self._variables) for t in sublibrary
        ]
        mask = np.zeros(len(self), dtype=bool)
        absent = []
        for t in terms:
            i = self._index.get(t)
            if i is None:
                absent.append(str(t))
            else:
                mask[i] = True
        if absent:
            raise LibraryError(f"terms not in the library: {', '.join(absent[:8])}")
        return mask

    def expression(self, coef: Any) -> sp.Expr | tuple[sp.Expr, ...]:
        """Sum of ``coef[i] * theta_i`` with zero coefficients dropped.

        ``coef`` of shape (q,) gives one expression; (q, m) gives a tuple of m.

        Examples
        --------
        >>> poly(["x"], 2).expression([0.0, -1, 0.5])
        0.5*x**2 - x
        """
        arr = np.asarray(coef, dtype=object)
        if arr.ndim == 2 and arr.shape[0] == len(self):
            return tuple(self.expression(arr[:, c]) for c in range(arr.shape[1]))
        if arr.shape != (len(self),):
            raise DataError(f"coefficients have shape {arr.shape}, expected ({len(self)},)")
        # one Add of all the products: adding them one by one re-flattens and re-sorts the
        # growing sum every time, quadratic in the number of terms (measured: 1001 dense
        # coefficients of poly(4) in 10 variables, 63 s one by one against 3.3 s at once)
        products = []
        for c, t in zip(arr, self._terms):
            if isinstance(c, sp.Basic):
                val = c
            elif isinstance(c, (bool, np.bool_)):
                raise DataError("coefficients must be numbers, got a bool")
            elif isinstance(c, (int, np.integer)):
                val = sp.Integer(int(c))
            else:
                try:
                    f = float(c)
                except (TypeError, ValueError):
                    raise DataError(f"coefficient {c!r} is not a number") from None
                if not math.isfinite(f):
                    raise DataError("coefficients contain NaN or inf")
                val = sp.Float(f)
            if not val.is_zero:
                products.append(times_term(val, t))
        return sum_products(products)

    # -------------------------------------------------------- gradient maps
    def _prepare_span(self) -> None:
        if self._parts is not None:
            return
        parts = [decompose(t, self._variables) for t in self._terms]
        single: dict = {}
        for i, p in enumerate(parts):
            if len(p) == 1:
                (key, c), = p.items()
                single.setdefault(key, (i, c))
        general = None
        if any(len(p) != 1 for p in parts):
            keys = list(dict.fromkeys(k for p in parts for k in p))
            row = {k: r for r, k in enumerate(keys)}
            B = sp.zeros(len(keys), len(parts))
            for i, p in enumerate(parts):
                for key, c in p.items():
                    B[row[key], i] = c
            general = Span(keys, B)
        self._parts, self._span = parts, (single, general)

    def _derivative_coef(self, k: int, j: int) -> tuple[dict | None, list]:
        hit = self._dcoef.get((k, j))
        if hit is None:
            self._prepare_span()
            target = derivative_expansion(self._parts[j], k, self._variables)
            hit = solve_in_span(target, *self._span)
            self._dcoef[(k, j)] = hit
        return hit

    def _columns(self, columns: Any) -> np.ndarray:
        return np.flatnonzero(_as_mask(columns, len(self), "columns"))

    def missing_derivatives(self, *, columns: Any = None) -> tuple[sp.Expr, ...]:
        """Basis functions needed by derivatives of the terms but absent from the library.

        ``columns`` (bool mask or indices) restricts the check to some terms, e.g. the
        hypothesis space of V. Empty when the library is closed under differentiation.

        Examples
        --------
        >>> Library(["x**2", "sin(x)"], ["x"]).missing_derivatives()
        (x, cos(x))
        """
        out: dict[sp.Expr, None] = {}
        for j in self._columns(columns):
            for k in range(self.d):
                for key in self._derivative_coef(k, int(j))[1]:
                    out.setdefault(key_expr(key, self._variables), None)
        return tuple(out)

    def is_closed(self, *, columns: Any = None) -> bool:
        """Whether every derivative of every (selected) term lies in the library's span."""
        return not self.missing_derivatives(columns=columns)

    def gradient_maps(self, *, exact: bool = False, columns: Any = None) -> list:
        """Gradient maps D_k with d/dx_k theta_j = sum_i theta_i (D_k)_ij.

        Parameters
        ----------
        exact
            Return ``sympy.SparseMatrix`` with exact entries instead of float64 CSR.
        columns
            Only fill the columns of these terms (bool mask or indices); the others are
            zero. Lets V use a sub-space whose derivatives are in the library although
            the whole library is not closed.

        Raises
        ------
        LibraryError
            Naming the missing derivative terms when the library is not closed.

        Examples
        --------
        >>> D = poly(["x"], 2).gradient_maps()
        >>> D[0].toarray()
        array([[0., 1., 0.],
               [0., 0., 2.],
               [0., 0., 0.]])
        """
        q = len(self)
        cols = self._columns(columns)
        problems = []
        entries: list[dict[tuple[int, int], sp.Expr]] = [{} for _ in range(self.d)]
        for k in range(self.d):
            for j in cols:
                coef, missing = self._derivative_coef(k, int(j))
                if missing:
                    miss = ", ".join(str(key_expr(m, self._variables)) for m in missing)
                    problems.append(f"d/d{self._variables[k]}({self._terms[j]}) needs {miss}")
                    continue
                for i, c in coef.items():
                    entries[k][(i, int(j))] = c
        if problems:
            shown = "; ".join(problems[:6]) + (f"; ... ({len(problems)} in all)" if len(problems) > 6 else "")
            raise LibraryError(
                f"library is not closed under differentiation: {shown} "
                "(add them, or use lib.closed())"
            )
        if exact:
            return [sp.SparseMatrix(q, q, e) for e in entries]
        mats = []
        for e in entries:
            rows = np.fromiter((i for i, _ in e), dtype=np.int64, count=len(e))
            cls = np.fromiter((j for _, j in e), dtype=np.int64, count=len(e))
            vals = np.fromiter((float(v) for v in e.values()), dtype=np.float64, count=len(e))
            mats.append(scipy.sparse.csr_matrix((vals, (rows, cls)), shape=(q, q)))
        return mats

    def closed(self, *, max_terms: int = 1000, max_seconds: float = 5.0) -> Library:
        """This library plus the derivative terms it misses, repeated until closed.

        Families whose derivatives never close (1/x, log(x), sqrt(x), tan(x), exp(x**2),
        ...) are recognised before anything is added (see
        :func:`symqp.library._closure.check_closure`).

        Raises
        ------
        LibraryError
            When the closure never ends, naming the derivative chain that keeps producing
            new terms, or would exceed ``max_terms`` terms or ``max_seconds`` of work.

        Examples
        --------
        >>> Library(["x*sin(x)"], ["x"]).closed().names
        ('x*sin(x)', 'x*cos(x)', 'sin(x)', 'cos(x)')
        >>> Library(["1/x"], ["x"]).closed()
        Traceback (most recent call last):
        ...
        symqp._errors.LibraryError: library is not closed under differentiation and its closure never ends: d/dx of 1/x keeps producing new terms (x**(-2), ...
        """
        missing = self.missing_derivatives()
        if not missing:
            return self
        check_closure(self._parts, self._variables, max_terms=max_terms, max_seconds=max_seconds)
        lib = self
        while missing:
            if len(lib) + len(missing) > max_terms:
                shown = ", ".join(str(m) for m in missing[:5])
                raise LibraryError(
                    f"closure did not terminate within max_terms={max_terms} "
                    f"(at {len(lib)} terms, still missing {shown})"
                )
            lib = Library(lib.terms + missing, lib.variables)
            missing = lib.missing_derivatives()
        return lib

    # ------------------------------------------------------------ evaluation
    def _check_X(self, X: Any, dtype: np.dtype) -> np.ndarray:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # noqa: BLE001 - ragged lists etc.
            raise DataError(f"X is not an array: {exc}") from None
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
        ):
            raise DataError(f"X must hold real numbers, got dtype {arr.dtype}")
        if arr.ndim == 1 and self.d == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.d:
            vs = ", ".join(str(v) for v in self._variables)
            raise DataError(f"X has shape {arr.shape}, expected (n, {self.d}) for variables {vs}")
        arr = np.ascontiguousarray(arr, dtype=dtype)
        if not np.isfinite(arr).all():
            raise DataError("X contains NaN or inf")
        return arr

    def _out(self, out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if out is None:
            return np.empty(shape, dtype=dtype)
        if not isinstance(out, np.ndarray):
            raise DataError("out must be a NumPy array")
        if out.shape != shape or out.dtype != dtype:
            raise DataError(f"out has shape {out.shape} and dtype {out.dtype}, expected {shape} {dtype}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise DataError("out must be a writeable C-contiguous array")
        return out

    def _use_numba(self, exprs, mode: str, n: int, dtype: np.dtype, backend: str) -> bool:
        if backend == "numpy":
            return False
        if backend == "numba":
            return True
        if backend != "auto":
            raise DataError(f"unknown backend {backend!r}; use 'auto', 'numba' or 'numpy'")
        if _codegen.loaded(exprs, self._variables, mode, dtype):
            return True
        return n >= _codegen.NUMBA_MIN_ROWS and _codegen.numba_available()

    def _kernel(self, exprs, mode: str, n: int, dtype: np.dtype, backend: str):
        """The compiled kernel to use, or None for the NumPy path.

        Under ``backend="auto"`` a term the code printer cannot compile falls back to
        NumPy; ``backend="numba"`` raises the LibraryError naming it.
        """
        if not self._use_numba(exprs, mode, n, dtype, backend):
            return None
        try:
            return _codegen.get_kernel(exprs, self._variables, mode=mode, dtype=dtype)
        except LibraryError:
            if backend == "numba":
                raise
            return None

    def _run(self, exprs, X, out, dtype, backend) -> np.ndarray:
        dt = _check_dtype(dtype)
        Xc = self._check_X(X, dt)
        res = self._out(out, (Xc.shape[0], len(exprs)), dt)
        if Xc.shape[0] == 0:
            return res
        kern = self._kernel(exprs, "matrix", Xc.shape[0], dt, backend)
        if kern is not None:
            kern(Xc, res)
            return res
        return _codegen.numpy_evaluate(exprs, self._variables, Xc, res)

    def evaluate(self, X: Any, out: np.ndarray | None = None, *, dtype: Any = np.float64,
                 backend: str = "auto") -> np.ndarray:
        """Theta(X): the (n, q) matrix of the terms at the rows of X.

        Runs a generated Numba kernel (cached on disk; parallel over rows) for large n,
        vectorised NumPy for tiny n or without Numba. ``backend`` forces 'numba' or
        'numpy'. ``out`` is an optional preallocated C-contiguous (n, q) array of ``dtype``
        (float64 or float32).

        Examples
        --------
        >>> poly(["x", "y"], 2).evaluate([[2.0, 3.0]])
        array([[1., 2., 3., 4., 6., 9.]])
        """
        return self._run(self._terms, X, out, dtype, backend)

    def derivative_terms(self, k: int | str | sp.Symbol) -> tuple[sp.Expr, ...]:
        """The exact derivatives d/dx_k theta_j, j = 1..q."""
        kk = self._var_index(k)
        if kk not in self._dterms:
            self._dterms[kk] = tuple(sp.diff(t, self._variables[kk]) for t in self._terms)
        return self._dterms[kk]

    def _var_index(self, k: int | str | sp.Symbol) -> int:
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if not -self.d <= k < self.d:
                raise LibraryError(f"variable index {k} out of range for {self.d} variables")
            return int(k) % self.d
        names = [str(v) for v in self._variables]
        if str(k) in names:
            return names.index(str(k))
        raise LibraryError(f"unknown variable {k!r}; the library has {', '.join(names)}")

    def evaluate_derivative(self, X: Any, k: int | str | sp.Symbol, out: np.ndarray | None = None,
                            *, dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
        """The (n, q) matrix of d/dx_k theta_j at the rows of X (exact derivatives, compiled).

        Examples
        --------
        >>> poly(["x", "y"], 2).evaluate_derivative([[2.0, 3.0]], "x")
        array([[0., 1., 0., 4., 3., 0.]])
        """
        return self._run(self.derivative_terms(k), X, out, dtype, backend)

    def evaluate_combination(self, X: Any, coef: Any, *, dtype: Any = np.float64,
                             backend: str = "auto") -> np.ndarray:
        """Theta(X) @ coef without building Theta: (n,) for coef (q,), (n, m) for (q, m).

        Examples
        --------
        >>> lib = poly(["x"], 2)
        >>> lib.evaluate_combination([[1.0], [2.0]], [1.0, 0.0, -1.0])
        array([ 0., -3.])
        """
        dt = _check_dtype(dtype)
        Xc = self._check_X(X, dt)
        c = np.asarray(coef, dtype=np.float64) if not isinstance(coef, np.ndarray) else coef
        if c.dtype == object or not np.issubdtype(c.dtype, np.number):
            raise DataError("coefficients must be real numbers")
        one = c.ndim == 1
        c2 = c[:, None] if one else c
        if c2.ndim != 2 or c2.shape[0] != len(self):
            raise DataError(f"coefficients have shape {c.shape}, expected ({len(self)},) or ({len(self)}, m)")
        c2 = np.ascontiguousarray(c2, dtype=dt)
        if not np.isfinite(c2).all():
            raise DataError("coefficients contain NaN or inf")
        res = np.empty((Xc.shape[0], c2.shape[1]), dtype=dt)
        if Xc.shape[0]:
            kern = self._kernel(self._terms, "combination", Xc.shape[0], dt, backend)
            if kern is not None:
                kern(Xc, c2, res)
            else:
                _codegen.numpy_combination(self._terms, self._variables, Xc, c2, res)
        return res[:, 0] if one else res


# The presets build Library objects; imported last because they need the class.
from ._presets import custom, poly, product, rational, trig
