"""The Pareto plot: complexity against error of one or several fronts (matplotlib, Agg)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from symqp._errors import BackendError

__all__ = ["plot_pareto"]

_FORMATS = (".png", ".pdf", ".svg")
_FLOOR = 1e-17  # exact fits (error 0) are drawn at this height on the log axis


def plot_pareto(fronts: Any, path: str | os.PathLike[str] | None = None, *, dpi: int = 100) -> Any:
    """Plot the validation (``o-``) and training (``x:``) error of Pareto fronts against
    complexity, on a log scale, circling each fit's chosen model.

    Parameters
    ----------
    fronts
        A :class:`Fit`, a result with a fit (``result.fit``), a
        :class:`~symqp.backends.Comparison`, a list of :class:`Candidate` (anything with
        ``complexity``, ``train_error`` and ``val_error``), a list of fits or results, or a
        dict ``{label: any of these}``.
    path : str or path-like, optional
        Where to write the figure (``.png``, ``.pdf`` or ``.svg``, written atomically).
    dpi : int
        Resolution; the figure is 6.4 x 4.8 inches.

    Returns
    -------
    matplotlib.figure.Figure
        Drawn without pyplot (no window, no global state).

    Raises
    ------
    BackendError
        For nothing to plot, an entry that is not a candidate or an unsupported format.

    Examples
    --------
    >>> from types import SimpleNamespace as C
    >>> fig = plot_pareto([C(complexity=k, train_error=1.0 / k, val_error=1.5 / k) for k in (1, 2, 4)])
    >>> fig.axes[0].get_yscale(), len(fig.axes[0].lines)
    ('log', 2)
    """
    if path is not None and os.path.splitext(os.fspath(path))[1].lower() not in _FORMATS:
        raise BackendError(
            f"unsupported figure format {os.path.splitext(os.fspath(path))[1]!r} (use {', '.join(_FORMATS)})"
        )
    series = _series(fronts)
    if not any(front for _, front, _ in series):
        raise BackendError("nothing to plot: the Pareto front is empty")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for k, (label, front, chosen) in enumerate(series):
        pts = sorted((float(c.complexity), _height(c.val_error), _height(c.train_error)) for c in front)
        for col, style, kind in ((1, "o-", "validation"), (2, "x:", "training")):
            xy = [(p[0], p[col]) for p in pts if math.isfinite(p[col])]
            if xy:
                ax.plot(*zip(*xy), style, color=f"C{k}", label=f"{label} ({kind})")
        if chosen is not None:
            e = _height(chosen.val_error)
            e = e if math.isfinite(e) else _height(chosen.train_error)
            if math.isfinite(e):
                ax.plot([chosen.complexity], [e], "o", ms=14, mfc="none", color=f"C{k}")
    ax.set_yscale("log")
    ax.set_xlabel("complexity (terms of V and g)")
    ax.set_ylabel("relative error of [f, V, g]")
    ax.set_title("Pareto front")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        from symqp._io import atomic_write

        with atomic_write(os.fspath(path), "wb") as fh:
            fig.savefig(fh, format=os.path.splitext(os.fspath(path))[1].lower().lstrip("."), dpi=dpi)
    return fig


def _height(err: Any) -> float:
    e = float(err)
    return max(e, _FLOOR) if math.isfinite(e) else math.nan


def _series(fronts: Any) -> list[tuple[str, list, Any]]:
    """``(label, candidates, chosen candidate or None)`` for every front to draw."""
    fits = getattr(fronts, "fits", None)  # a Comparison
    if isinstance(fits, Mapping):
        fronts = fits
    if isinstance(fronts, Mapping):
        return [_one(obj, str(label)) for label, obj in fronts.items()]
    if isinstance(fronts, Sequence) and fronts and all(_fit_of(o) is not None for o in fronts):
        return [_one(obj, "") for obj in fronts]
    return [_one(fronts, "")]


def _fit_of(obj: Any) -> Any:
    inner = getattr(obj, "fit", None)  # a result carrying its fit
    if inner is not None and hasattr(inner, "front"):
        return inner
    return obj if hasattr(obj, "front") else None


def _one(obj: Any, label: str) -> tuple[str, list, Any]:
    fit = _fit_of(obj)
    items = fit.front if fit is not None else obj
    if items is None:
        items = []
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise BackendError(f"cannot read a Pareto front from {type(obj).__name__}")
    for c in items:
        if not all(hasattr(c, a) for a in ("complexity", "train_error", "val_error")):
            raise BackendError(f"front entries need complexity, train_error and val_error, got {type(c).__name__}")
    label = label or (getattr(fit, "backend", "") if fit is not None else "") or "front"
    chosen = None
    if getattr(fit, "V", None) is not None:  # the front entry holding the fit's own V and g
        same = lambda c: getattr(c, "V", None) == fit.V and tuple(getattr(c, "g", ())) == tuple(fit.g)
        chosen = next((c for c in items if same(c)), None)
    return label, list(items), chosen
