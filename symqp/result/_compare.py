"""``symqp.compare`` (one decomposition, several backends) and comparison with an exact U."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp

from .._errors import BackendError, LibraryError

__all__ = ["compare", "coefficient_errors", "CoefficientErrors"]


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


def compare(
    pairs: Any,
    *,
    library: Any = "poly(4)",
    backends: Sequence[Any] = ("sr3", "operon"),
    v_library: Any = None,
    g_library: Any = None,
    backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    tau: float | None = None,
    decomposition: Any = None,
    decomposition_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    steps: int | None = None,
    val_frac: float = 0.3,
    max_points: int = 20_000,
    verbose: bool = True,
    **options: Any,
) -> Any:
    """Train one decomposition and run several backends on the same regression problem.

    The decomposition, the sublevel points, the targets and the scaling are exactly those of
    :func:`symqp.fit`; the backends are then compared by
    :func:`symqp.backends.compare_fits` on that one :class:`~symqp.backends.Problem`. Each
    backend's result, mapped back to data coordinates as a :class:`Result`, is attached to
    the returned comparison as ``comparison.results`` (backend name -> Result).

    Parameters
    ----------
    backends
        Backend names (or instances) to compare.
    backend_options
        Per-backend keyword arguments, ``{"operon": {"generations": 50}}``.
    options
        Passed on to ``compare_fits``.

    Other parameters are those of :func:`symqp.fit`.

    Returns
    -------
    The comparison of ``compare_fits`` (``rows``, ``to_text()``), with ``results`` added.
    """
    from ..backends import compare_fits, get_backend
    from ._fit import assemble, prepare

    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    if not backends:
        raise BackendError("no backends to compare")
    opts = dict(backend_options or {})
    unknown = set(opts) - {b for b in backends if isinstance(b, str)}
    if unknown:
        raise BackendError(f"backend_options for backends not compared: {', '.join(sorted(unknown))}")
    instances = [get_backend(b, **dict(opts.get(b, {}))) if isinstance(b, str) else b for b in backends]
    prep = prepare(
        pairs,
        library=library,
        v_library=v_library,
        g_library=g_library,
        tau=tau,
        decomposition=decomposition,
        decomposition_options=decomposition_options,
        seed=seed,
        device=device,
        steps=steps,
        val_frac=val_frac,
        max_points=max_points,
        verbose=verbose,
    )
    comparison = compare_fits(prep.problem, instances, **options)
    results = {}
    for name, fit_ in _fits_of(comparison, backends):
        results[name] = assemble(prep, fit_, backend_name=name)
    try:
        comparison.results = results
    except (AttributeError, dataclasses.FrozenInstanceError):
        object.__setattr__(comparison, "results", results)
    comparison.prepared = prep
    return comparison


def _fits_of(comparison: Any, backends: Sequence[Any]) -> list[tuple[str, Any]]:
    """(name, Fit) pairs of a comparison, whatever container it keeps them in."""
    fits = getattr(comparison, "fits", None)
    if isinstance(fits, Mapping):
        return [(str(k), v) for k, v in fits.items() if v is not None and hasattr(v, "V")]
    if isinstance(fits, Sequence):
        return [(str(getattr(v, "backend", i)), v) for i, v in enumerate(fits) if v is not None and hasattr(v, "V")]
    return []
