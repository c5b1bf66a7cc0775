"""``symqp.compare``: one decomposition, several backends on the same regression problem."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import BackendError

__all__ = ["compare"]


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
        Passed on to ``compare_fits``; the other parameters are those of :func:`symqp.fit`.

    Returns
    -------
    The comparison of ``compare_fits`` (``rows``, ``to_text()``), with ``results`` added.
    """
    from ..backends import compare_fits
    from ._neural import assemble, get_backend_instance, prepare
    from ._settings import FitSettings, as_pairs

    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    if not backends:
        raise BackendError("no backends to compare")
    opts = dict(backend_options or {})
    unknown = set(opts) - {b for b in backends if isinstance(b, str)}
    if unknown:
        raise BackendError(f"backend_options for backends not compared: {', '.join(sorted(unknown))}")
    settings = FitSettings(
        library=library, v_library=v_library, g_library=g_library, tau=tau, decomposition=decomposition,
        decomposition_options=decomposition_options, seed=seed, device=device, steps=steps,
        val_frac=val_frac, max_points=max_points, verbose=verbose, method="neural",
    )  # fmt: skip
    # every backend checked (parameters, optional modules) before the network trains
    instances = [get_backend_instance(b, opts.get(b) if isinstance(b, str) else None)[0] for b in backends]
    prep = prepare(as_pairs(pairs), settings)
    comparison = compare_fits(prep.problem, instances, **options)
    results = {}
    for name, fit_ in _fits_of(comparison, backends):
        results[name] = assemble(prep, fit_, backend_name=name, settings=settings)
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
