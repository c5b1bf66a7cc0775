"""A figure of a sweep: one measured column against a swept one, a line per group."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._errors import DataError
from .._io import atomic_write
from ._table import read_table

__all__ = ["plot_sweep"]


def _numeric(df: Any, col: str, what: str) -> np.ndarray:
    if col not in df.columns:
        known = ", ".join(c for c in df.columns if c != "point_id")
        raise DataError(f"the sweep table has no column {col!r} for {what} (columns: {known})")
    values = df[col].to_numpy()
    try:
        return values.astype(float)
    except (TypeError, ValueError):
        raise DataError(f"column {col!r} ({what}) is not numeric") from None


def plot_sweep(table: Any, x: str, y: str, *, by: str | None = None, path: Any = None, logy: bool = False,
               dpi: int = 120) -> Any:  # fmt: skip
    """Plot column ``y`` against the swept column ``x`` of a sweep table; returns the Figure.

    Points with the same ``x`` (and ``by`` group) are averaged; the error bars are the
    standard deviation over them (e.g. over seeds). Rows without a value of ``y`` (a monostable
    point has no barrier) are left out and counted in the title.

    Parameters
    ----------
    table
        A :class:`pandas.DataFrame` from :func:`read_table`, a sweep folder or its ``table.csv``.
    x, y
        Column names, e.g. ``"params.beta"`` and ``"dU"``.
    by
        Column whose values get a line each (e.g. ``"library"``); None: one line.
    path
        Write a PNG there.
    logy
        Logarithmic y axis (exit times, Z_ε).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"point_id": ["a", "b", "c"], "params.beta": [1.0, 2.0, 2.0], "dU": [0.5, 0.3, 0.1]})
    >>> fig = plot_sweep(df, "params.beta", "dU")
    >>> fig.axes[0].lines[0].get_ydata().tolist()
    [0.5, 0.2]
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    df = table if hasattr(table, "columns") else read_table(table)
    xs, ys = _numeric(df, x, "x"), _numeric(df, y, "y")
    groups = [None] if by is None else list(dict.fromkeys(df[_check(df, by)].astype(str)))
    fig = Figure(figsize=(6.0, 4.0), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    missing = int(np.sum(~np.isfinite(ys)))
    for g in groups:
        sel = np.isfinite(xs) & np.isfinite(ys)
        if g is not None:
            sel &= df[by].astype(str).to_numpy() == g
        ux = np.unique(xs[sel])
        mean = np.array([ys[sel][xs[sel] == u].mean() for u in ux])
        std = np.array([ys[sel][xs[sel] == u].std() for u in ux])
        label = None if g is None else f"{by} = {g}"
        ax.errorbar(ux, mean, yerr=std if np.any(std > 0) else None, marker="o", capsize=3, label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if logy:
        ax.set_yscale("log")
    if by is not None:
        ax.legend()
    title = f"{y} against {x}" + (f" ({missing} points without {y})" if missing else "")
    ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        with atomic_write(os.fspath(path), "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
    return fig


def _check(df: Any, col: str) -> str:
    if col not in df.columns:
        raise DataError(f"the sweep table has no column {col!r} (columns: {', '.join(df.columns)})")
    return col
