"""Library specs from the command line: ``"poly(2), sin(x), cos(x), y*sin(x)"``.

Items are split on top-level commas. An item is a preset call -- ``poly(K)``,
``poly(K, max=M)``, ``trig(K)``, ``rational(K)`` with integer literals only -- or a term
parsed by :func:`symqp._parse.parse_expr_safe` over the variable names. Nothing is ever
evaluated; anything outside the allow-list raises :class:`ParseError` naming the token.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

import sympy as sp

from .._errors import LibraryError, ParseError
from .._parse import parse_expr_safe
from ._library import MAX_TERMS, Library, _as_variables
from ._presets import poly, poly_count, rational, trig

__all__ = ["parse_library", "split_items"]

_MAX_SPEC = 20_000
_LIMITS = {"poly": 30, "trig": 100, "rational": 30}
_KEYWORDS = {"poly": {"max"}, "trig": set(), "rational": set()}


def split_items(spec: str) -> list[str]:
    """Split ``spec`` on commas outside parentheses.

    Examples
    --------
    >>> split_items("poly(2, max=1), sin(x)")
    ['poly(2, max=1)', 'sin(x)']
    """
    items, depth, cur = [], 0, []
    for ch in spec:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ParseError(f"unbalanced ')' in library spec {spec!r}")
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ParseError(f"unbalanced '(' in library spec {spec!r}")
    items.append("".join(cur))
    return [s.strip() for s in items]


def _int_literal(node: ast.AST, item: str, what: str, hi: int) -> int:
    seg = ast.get_source_segment(item, node) or type(node).__name__
    if not (isinstance(node, ast.Constant) and type(node.value) is int):
        raise ParseError(f"{what} must be a non-negative integer literal, got {seg!r} in {item!r}")
    if not 0 <= node.value <= hi:
        raise ParseError(f"{what} {node.value} is out of range 0..{hi} in {item!r}")
    return node.value


def _preset(item: str, variables: tuple[sp.Symbol, ...]) -> Library | None:
    """The library of a preset item, or None when the item is not a preset call."""
    try:
        tree = ast.parse(item, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # let the term parser report it
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        return None
    name = tree.func.id
    if name not in _LIMITS:
        return None
    if len(tree.args) != 1 or any(isinstance(a, ast.Starred) for a in tree.args):
        raise ParseError(f"{name}() takes exactly one integer argument, in {item!r}")
    K = _int_literal(tree.args[0], item, f"{name}() argument", _LIMITS[name])
    kw = {}
    for k in tree.keywords:
        if k.arg not in _KEYWORDS[name]:
            raise ParseError(f"unknown keyword {k.arg!r} of {name}() in {item!r}")
        kw[k.arg] = _int_literal(k.value, item, f"{name}() {k.arg}=", _LIMITS[name])
    try:
        if name == "poly":
            if "max" not in kw and poly_count(len(variables), K) > MAX_TERMS:
                raise ParseError(
                    f"{item!r} in {len(variables)} variables would have "
                    f"{poly_count(len(variables), K)} terms (limit {MAX_TERMS})"
                )
            return poly(variables, K, max_per_var=kw.get("max"))
        if K == 0:
            raise ParseError(f"{name}() argument must be at least 1 in {item!r}")
        if name == "trig":
            return trig(variables, K)
        return rational(variables, K)
    except LibraryError as exc:
        raise ParseError(f"{item!r}: {exc}") from None


def parse_library(spec: str, variables: Iterable[str | sp.Symbol]) -> Library:
    """Build a :class:`Library` from a spec such as ``"poly(2), sin(x), y*sin(x)"``.

    Items: ``poly(K)`` (all monomials up to degree K; ``poly(K, max=M)`` caps each
    variable's power at M), ``trig(K)`` (sin/cos of k*x_i, k <= K), ``rational(K)``
    (1 and x_i**-p, p <= K), or a term over the variable names with ``+ - * / **``,
    sin, cos, tan, exp, log, sqrt, tanh, pi, E and numbers.

    Raises
    ------
    ParseError
        For empty items, unknown names, attributes, calls outside the allow-list,
        non-literal or out-of-range preset arguments, naming the offending token.

    Examples
    --------
    >>> parse_library("poly(2), sin(x), y*sin(x)", ["x", "y"]).names
    ('1', 'x', 'y', 'x**2', 'x*y', 'y**2', 'sin(x)', 'y*sin(x)')
    >>> parse_library("poly(2), __import__('os')", ["x", "y"])
    Traceback (most recent call last):
    ...
    symqp._errors.ParseError: function '__import__' is not allowed in "__import__('os')" ...
    """
    if not isinstance(spec, str):
        raise ParseError(f"library spec must be a string, got {type(spec).__name__}")
    if len(spec) > _MAX_SPEC:
        raise ParseError(f"library spec too long ({len(spec)} characters, limit {_MAX_SPEC})")
    try:
        vs = _as_variables(variables)
    except LibraryError as exc:
        raise ParseError(str(exc)) from None
    if not spec.strip():
        raise ParseError("empty library spec")
    terms: list[sp.Expr] = []
    for pos, item in enumerate(split_items(spec), start=1):
        if not item:
            raise ParseError(f"empty item {pos} in library spec {spec!r}")
        lib = _preset(item, vs)
        if lib is not None:
            terms += lib.terms
        else:
            t = parse_expr_safe(item, vs)
            if t == 0 or t.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
                raise ParseError(f"term {item!r} is zero or not finite")
            terms.append(t)
        if len(terms) > MAX_TERMS:
            raise ParseError(f"library spec has more than {MAX_TERMS} terms")
    return Library(terms, vs)
