"""Closing a library under differentiation, and telling early when that never ends.

:meth:`Library.closed` adds the derivative terms a library misses until every derivative
lies in its span. Families such as ``1/x``, ``log(x)``, ``sqrt(x)``, ``tan(x)`` or
``exp(x**2)`` never close: every derivative brings a new, larger basis function. Before
adding anything, :func:`check_closure` explores the basis functions reachable by
differentiation (cheap: exact expansions, no linear algebra) and stops with a
:class:`LibraryError` naming the derivative chain as soon as

* a Laurent monomial with a negative power appears (``x**-n`` differentiates to
  ``x**-(n+1)`` forever), or
* a chain of derivatives grows :data:`MAX_RISES` times in a row (``tan(x) -> tan(x)**2 ->
  tan(x)**3 -> ...``), measured by :func:`weight`, or
* more than ``max_terms`` basis functions, or more than ``max_seconds`` of work, are needed.

A family that does close (polynomials times sines, cosines and exponentials of linear
forms) has derivatives that never grow for long: powers drop, sine turns into cosine.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import sympy as sp

from .._errors import LibraryError
from .._parse import shorten
from ._terms import Key, derivative_expansion, key_expr

__all__ = ["MAX_RISES", "check_closure", "weight"]

#: Consecutive growing derivatives after which a chain is taken as never closing.
MAX_RISES = 4
#: Default time budget of the exploration, in seconds.
MAX_SECONDS = 5.0


def weight(key: Key) -> float:
    """Size of a basis function: tree nodes plus the absolute numeric exponents.

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> weight((2, 1)), weight(sp.tan(x)), weight(sp.tan(x) ** 2), weight(sp.exp(3 * x))
    (3, 2.0, 7.584962500721156, 6.0)
    """
    if isinstance(key, tuple):
        return sum(abs(e) for e in key)
    w = 0.0
    for node in sp.preorder_traversal(key):
        w += 1.0
        if node.is_Pow and node.exp.is_Number:
            w += abs(float(node.exp))
        elif node.is_Rational:  # growing coefficients inside functions: exp(n*x), n = 1, 2, ...
            w += math.log2(1 + abs(node.p)) + math.log2(node.q)
        elif node.is_Float:
            w += math.log2(1 + abs(float(node)))
    return w


def _chain(key: Key, parent: dict, variables: Sequence[sp.Symbol]) -> tuple[sp.Expr, sp.Symbol, list[sp.Expr]]:
    """(root term, variable, basis functions from the root to ``key``)."""
    out = [key]
    var = None
    while parent[out[-1]] is not None:
        prev, k = parent[out[-1]]
        var = variables[k] if var is None else var
        out.append(prev)
    out.reverse()
    exprs = [key_expr(k, variables) for k in out]
    return exprs[0], (var if var is not None else variables[0]), exprs[1:]


def _never_closes(root: sp.Expr, var: sp.Symbol, chain: list[sp.Expr], why: str) -> LibraryError:
    shown = ", ".join(shorten(str(e)) for e in chain[:4])
    return LibraryError(
        f"library is not closed under differentiation and its closure never ends: "
        f"d/d{var} of {root} keeps producing new terms ({shown}, ...; {why}); remove {root} from "
        "the library, or use terms whose derivatives stay in it (poly(K), trig(K), exp(a*x), "
        "and products of these)"
    )


def _negative_power(key: Key) -> int | None:
    if isinstance(key, tuple):
        for k, e in enumerate(key):
            if e < 0:
                return k
    return None


def check_closure(parts: Sequence[dict], variables: Sequence[sp.Symbol], *,
                  max_terms: int, max_seconds: float = MAX_SECONDS) -> int:
    """Explore the basis functions reachable by differentiation from the library's terms.

    Parameters
    ----------
    parts
        The exact expansions (``{basis key: coefficient}``) of the library's terms.
    variables
        The library's variables.
    max_terms, max_seconds
        Limits on the number of basis functions and on the time spent.

    Returns
    -------
    int
        The number of basis functions in the closure (an upper bound on the closed
        library's size).

    Raises
    ------
    LibraryError
        When the closure never ends (the message names the derivative chain) or exceeds
        a limit.

    Examples
    --------
    >>> from symqp.library._terms import decompose
    >>> x = sp.Symbol("x")
    >>> check_closure([decompose(x * sp.sin(x), [x])], [x], max_terms=100)
    4
    >>> check_closure([decompose(sp.tan(x), [x])], [x], max_terms=100)
    Traceback (most recent call last):
    ...
    symqp._errors.LibraryError: library is not closed under differentiation and its closure never ends: d/dx of tan(x) keeps producing new terms (...
    """
    deadline = time.perf_counter() + max_seconds
    parent: dict[Key, Any] = {}
    rises: dict[Key, int] = {}
    sizes: dict[Key, float] = {}
    queue: deque = deque()
    for p in parts:
        for key in p:
            if key not in parent:
                parent[key], rises[key], sizes[key] = None, 0, weight(key)
                queue.append(key)
    for key in queue:
        k = _negative_power(key)
        if k is not None:
            root = key_expr(key, variables)
            step = key[:k] + (key[k] - 1,) + key[k + 1:]
            raise _never_closes(root, variables[k], [key_expr(step, variables)],
                                f"{variables[k]} has a negative power")
    while queue:
        key = queue.popleft()
        for k in range(len(variables)):
            for new in derivative_expansion({key: sp.Integer(1)}, k, variables):
                if new in parent:
                    continue
                parent[new] = (key, k)
                sizes[new] = weight(new)
                rises[new] = rises[key] + 1 if sizes[new] > sizes[key] else 0
                root, var, chain = _chain(new, parent, variables)
                if _negative_power(new) is not None:
                    raise _never_closes(root, var, chain, "a negative power appeared")
                if rises[new] >= MAX_RISES:
                    raise _never_closes(root, var, chain, f"{MAX_RISES} derivatives in a row grew")
                if len(parent) > max_terms:
                    raise _never_closes(root, var, chain, f"more than max_terms={max_terms} terms")
                if time.perf_counter() > deadline:
                    raise _never_closes(root, var, chain, f"no closure found within {max_seconds:g} s")
                queue.append(new)
    return len(parent)

