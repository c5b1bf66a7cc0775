"""Term-by-term comparison of an identified U with an exact polynomial U."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sympy as sp

from .._errors import LibraryError

__all__ = ["coefficient_errors", "CoefficientErrors"]


@dataclasses.dataclass(frozen=True)
class CoefficientErrors:
    """Term-by-term comparison of an identified polynomial with the exact one.

    ``max_abs`` is the largest absolute coefficient error over the union of both supports;
    ``exact_support`` is True when both have the same nonzero terms; ``rows`` lists
    ``(term, identified, exact, abs_error)`` sorted by total degree.
    """

    max_abs: float
    exact_support: bool
    rows: tuple[tuple[sp.Expr, float, float, float], ...]
    missing: tuple[sp.Expr, ...]
    spurious: tuple[sp.Expr, ...]

    def to_text(self) -> str:
        """A small aligned table of the coefficients."""
        lines = [f"{'term':>12} {'identified':>14} {'exact':>14} {'abs error':>11}"]
        for term, got, want, err in self.rows:
            lines.append(f"{str(term):>12} {got:>14.6g} {want:>14.6g} {err:>11.3g}")
        lines.append(
            f"max coefficient error {self.max_abs:.3g}; "
            f"support {'exact' if self.exact_support else 'differs'}"
            + (f" (missing {', '.join(map(str, self.missing))})" if self.missing else "")
            + (f" (spurious {', '.join(map(str, self.spurious))})" if self.spurious else "")
        )
        return "\n".join(lines)


def coefficient_errors(U: sp.Expr, U_exact: sp.Expr, variables: Sequence[Any]) -> CoefficientErrors:
    """Compare the polynomial coefficients of an identified U with an exact U.

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> ce = coefficient_errors(1.001 * x**2 + 0.999 * y**2, x**2 + y**2, [x, y])
    >>> round(ce.max_abs, 6), ce.exact_support
    (0.001, True)
    """
    syms = tuple(sp.Symbol(str(v)) for v in variables)
    try:
        got = sp.Poly(sp.expand(U), *syms).as_dict()
        want = sp.Poly(sp.expand(U_exact), *syms).as_dict()
    except sp.PolynomialError as exc:
        raise LibraryError(f"coefficient comparison needs polynomials in {syms}: {exc}") from None
    got = {k: float(v) for k, v in got.items() if float(v) != 0.0}
    want = {k: float(v) for k, v in want.items() if float(v) != 0.0}
    keys = sorted(set(got) | set(want), key=lambda k: (sum(k), tuple(-e for e in k)))

    def mono(k: tuple[int, ...]) -> sp.Expr:
        return sp.Mul(*[s**e for s, e in zip(syms, k)])

    rows = tuple((mono(k), got.get(k, 0.0), want.get(k, 0.0), abs(got.get(k, 0.0) - want.get(k, 0.0))) for k in keys)
    return CoefficientErrors(
        max_abs=max((r[3] for r in rows), default=0.0),
        exact_support=set(got) == set(want),
        rows=rows,
        missing=tuple(mono(k) for k in keys if k in want and k not in got),
        spurious=tuple(mono(k) for k in keys if k in got and k not in want),
    )
