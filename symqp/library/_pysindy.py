"""A :class:`~symqp.library.Library` from a pysindy feature library.

pysindy libraries compute columns numerically; a symqp library needs the terms as SymPy
expressions (for gradient maps, closure and exact results). Every pysindy library prints
its columns (``get_feature_names``): ``"x^2 y"``, ``"sin(1 x)"``, or the names a
``CustomLibrary`` is given. Those names are read with the safe parser (``^`` is a power,
a space between factors a product), and each parsed term is then checked against the
column pysindy computes on random points; a library whose printed names are not its
columns (an unnamed ``CustomLibrary``, PDE and weak-form libraries) is refused with the
first column that does not match. pysindy itself is imported only here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._errors import LibraryError, ParseError, SymqpError, first_line
from .._parse import parse_expr_safe, shorten

__all__ = ["from_pysindy"]

# points where the parsed terms are compared with pysindy's columns
_CHECK_POINTS = 64
# whitespace between two factors ("x y", "1 x", ") (") is a product; other whitespace goes
_PRODUCT_SPACE = re.compile(r"(?<=[\w.)])\s+(?=[\w.(])")


def _names(names: Any) -> list[str]:
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    if not isinstance(names, Iterable):
        raise LibraryError(f"names must be a list of variable names or a string 'x y', got {type(names).__name__}")
    out = [str(n) for n in names]
    if not out:
        raise LibraryError("from_pysindy needs the variable names, in the column order of the data")
    return out


def _is_pysindy_library(lib: Any) -> bool:
    module = type(lib).__module__ or ""
    return module.split(".")[0] == "pysindy" and callable(getattr(lib, "get_feature_names", None))


def _columns(lib: Any, X: np.ndarray, variables: list[str]) -> tuple[list[str], np.ndarray]:
    """pysindy's column names and values on ``X`` (on a clone: the user's object is untouched)."""
    import copy

    try:  # a copy, not sklearn's clone: pysindy 2.1's CustomLibrary does not clone
        fitted = copy.deepcopy(lib).fit(X)
        names = [str(n) for n in fitted.get_feature_names(input_features=list(variables))]
        values = np.asarray(fitted.transform(X), dtype=float)
    except SymqpError:
        raise
    except Exception as exc:  # noqa: BLE001 - pysindy internals (PDE libraries need grids, ...)
        raise LibraryError(
            f"pysindy {type(lib).__name__} cannot be evaluated on plain points: {type(exc).__name__}: "
            f"{first_line(exc)}"
        ) from None
    if values.ndim != 2 or values.shape != (X.shape[0], len(names)):
        raise LibraryError(
            f"pysindy {type(lib).__name__} returned {values.shape} values for {len(names)} named columns"
        )
    return names, values


def from_pysindy(lib: Any, names: Any) -> Any:
    """The symqp :class:`~symqp.library.Library` of a pysindy feature library.

    Parameters
    ----------
    lib
        A pysindy feature library with a symbolic form: ``PolynomialLibrary``,
        ``FourierLibrary``, ``IdentityLibrary``, a ``CustomLibrary`` whose
        ``function_names`` print formulas, and sums (``+``) and tensor products (``*``) of
        these. Unfitted or fitted; it is not modified.
    names
        The variable names, in the column order of the data (a list, or ``"x y"``).

    Returns
    -------
    Library
        The same terms as SymPy expressions, in pysindy's column order (a column that
        repeats an earlier one is dropped).

    Raises
    ------
    MissingDependencyError
        When pysindy is not installed.
    LibraryError
        For anything that is not a pysindy library, and for a library whose columns have
        no formula symqp can read (the message names the first such column).

    Examples
    --------
    >>> import pysindy as ps
    >>> from_pysindy(ps.PolynomialLibrary(degree=2), ["x", "y"]).names
    ('1', 'x', 'y', 'x**2', 'x*y', 'y**2')
    >>> from_pysindy(ps.FourierLibrary(n_frequencies=1), "x").names
    ('sin(x)', 'cos(x)')
    """
    from .._optional import require
    from ._library import Library

    require("pysindy")
    if not _is_pysindy_library(lib):
        raise LibraryError(f"expected a pysindy feature library, got {type(lib).__name__}")
    variables = _names(names)
    Library(["1"], variables)  # the names are checked before pysindy runs
    X = np.random.default_rng(0).uniform(-1.5, 1.5, (_CHECK_POINTS, len(variables)))
    printed, values = _columns(lib, X, variables)
    from .._numeric import numpy_function

    terms = []
    for j, text in enumerate(printed):
        source = _PRODUCT_SPACE.sub("*", text.strip())
        try:
            term = parse_expr_safe(source, variables, xor_is_pow=True)
        except ParseError as exc:
            raise LibraryError(
                f"pysindy {type(lib).__name__} column {j} {shorten(text)!r} has no formula symqp can read "
                f"({exc}); give a CustomLibrary function_names that print formulas"
            ) from None
        col = np.asarray(numpy_function(term, variables)(X), dtype=float).reshape(-1)
        if col.size == 1:
            col = np.full(X.shape[0], float(col[0]))
        if not np.allclose(col, values[:, j], rtol=1e-9, atol=1e-12):
            raise LibraryError(
                f"pysindy {type(lib).__name__} column {j} is printed {shorten(text)!r} but computes something "
                "else; give a CustomLibrary function_names that print its formulas"
            )
        terms.append(term)
    if not terms:
        raise LibraryError(f"pysindy {type(lib).__name__} has no columns")
    return Library(terms, variables)
