"""Library presets: polynomials, sines and cosines, negative powers, products, custom lists."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sympy as sp

from .._errors import LibraryError
from ._library import MAX_TERMS, Library, _as_term, _as_variables

__all__ = ["custom", "poly", "poly_count", "product", "rational", "trig"]


def _check_int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise LibraryError(f"{what} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise LibraryError(f"{what} must be between {lo} and {hi}, got {value}")
    return int(value)


def poly_count(d: int, degree: int) -> int:
    """Number of monomials of total degree <= ``degree`` in ``d`` variables."""
    return math.comb(d + degree, d)


def poly(variables: Iterable[str | sp.Symbol], degree: int,
         max_per_var: int | Sequence[int] | None = None, *, include_bias: bool = True) -> Library:
    """All monomials of total degree <= ``degree``, in pysindy's graded order.

    Constant first, then degree 1 in variable order, then each degree in the order of
    ``itertools.combinations_with_replacement`` (as pysindy's ``PolynomialLibrary``).
    ``max_per_var`` caps the power of each variable (one int, or one per variable).

    Examples
    --------
    >>> poly(["x", "y"], 2).names
    ('1', 'x', 'y', 'x**2', 'x*y', 'y**2')
    >>> poly(["x", "y"], 3, max_per_var=1).names
    ('1', 'x', 'y', 'x*y')
    """
    vs = _as_variables(variables)
    d = len(vs)
    deg = _check_int(degree, "polynomial degree", 0, 64)
    if max_per_var is None:
        caps = [deg] * d
    elif isinstance(max_per_var, (int, np.integer)) and not isinstance(max_per_var, bool):
        caps = [_check_int(max_per_var, "max_per_var", 0, 64)] * d
    else:
        caps = [_check_int(c, "max_per_var", 0, 64) for c in max_per_var]
        if len(caps) != d:
            raise LibraryError(f"max_per_var has {len(caps)} entries for {d} variables")
    if poly_count(d, deg) > MAX_TERMS and max_per_var is None:
        raise LibraryError(
            f"poly(degree={deg}) in {d} variables has {poly_count(d, deg)} terms "
            f"(limit {MAX_TERMS})"
        )
    terms: list[sp.Expr] = [sp.Integer(1)] if include_bias else []
    for n in range(1, deg + 1):
        for combo in itertools.combinations_with_replacement(range(d), n):
            counts = [combo.count(k) for k in range(d)]
            if any(c > cap for c, cap in zip(counts, caps)):
                continue
            terms.append(sp.Mul(*[vs[k] ** c for k, c in enumerate(counts) if c]))
            if len(terms) > MAX_TERMS:
                raise LibraryError(f"polynomial library exceeds {MAX_TERMS} terms")
    if not terms:
        raise LibraryError("the polynomial library is empty (degree 0 without bias)")
    return Library(terms, vs)


def trig(variables: Iterable[str | sp.Symbol], harmonics: int = 1) -> Library:
    """sin(k x), cos(k x) for each variable x and k = 1..harmonics (pysindy's order).

    Examples
    --------
    >>> trig(["x"], 2).names
    ('sin(x)', 'cos(x)', 'sin(2*x)', 'cos(2*x)')
    """
    vs = _as_variables(variables)
    K = _check_int(harmonics, "number of harmonics", 1, 1000)
    if 2 * K * len(vs) > MAX_TERMS:
        raise LibraryError(f"trig library would exceed {MAX_TERMS} terms")
    terms = []
    for v in vs:
        for k in range(1, K + 1):
            terms += [sp.sin(k * v), sp.cos(k * v)]
    return Library(terms, vs)


def rational(variables: Iterable[str | sp.Symbol], powers: int = 2, *,
             denominators: Iterable[Any] | None = None, include_constant: bool = True) -> Library:
    """Negative powers ``den**-p`` (p = 1..powers) of each denominator, plus 1.

    Denominators default to the variables; they may be expressions or formula strings,
    e.g. Bhat's library in a radius r: ``rational(["r"], 2, denominators=["r", "10 - r"])``
    = {1, 1/r, 1/r**2, 1/(10 - r), 1/(10 - r)**2}.

    Examples
    --------
    >>> rational(["r"], 2, denominators=["r", "10 - r"]).names
    ('1', '1/r', 'r**(-2)', '1/(10 - r)', '(10 - r)**(-2)')
    """
    vs = _as_variables(variables)
    P = _check_int(powers, "powers", 1, 64)
    dens = list(vs) if denominators is None else [_as_term(t, vs) for t in denominators]
    terms: list[sp.Expr] = [sp.Integer(1)] if include_constant else []
    for den in dens:
        if den.is_number:
            raise LibraryError(f"denominator {den} does not depend on the variables")
        terms += [den ** (-p) for p in range(1, P + 1)]
    return Library(terms, vs)


def product(*libraries: Library) -> Library:
    """Tensor-product library: every product of one term from each library.

    Examples
    --------
    >>> product(poly(["x"], 1), trig(["y"], 1)).names
    ('sin(y)', 'cos(y)', 'x*sin(y)', 'x*cos(y)')
    """
    if not libraries or not all(isinstance(lib, Library) for lib in libraries):
        raise LibraryError("product() takes one or more Library objects")
    total = math.prod(len(lib) for lib in libraries)
    if total > MAX_TERMS:
        raise LibraryError(f"product library would have {total} terms (limit {MAX_TERMS})")
    vs: list[sp.Symbol] = []
    for lib in libraries:
        vs += [v for v in lib.variables if v not in vs]
    terms = [sp.Mul(*combo) for combo in itertools.product(*(lib.terms for lib in libraries))]
    return Library(terms, vs)


def custom(terms: Iterable[Any], variables: Iterable[str | sp.Symbol]) -> Library:
    """A library from any list of SymPy expressions or formula strings.

    Examples
    --------
    >>> custom(["exp(-x)", "x*exp(-x)"], ["x"]).names
    ('exp(-x)', 'x*exp(-x)')
    """
    return Library(terms, variables)
