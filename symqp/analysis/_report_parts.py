"""Pieces of the HTML report: formula images, provenance, and where figures are sliced.

:func:`symqp.analysis.write_report` lays out the page; this module renders the formulas of
U, ∂V/∂x_k, g_k and f_k (mathtext PNGs, so the page stays self-contained and offline), says
how the result was made (backend, library, route, τ, metrics, timings, package version and
the command that reproduces it) and labels the slice at which figures of 3-D and higher
systems are drawn.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

__all__ = ["formula_images", "provenance_html", "provenance_rows", "slice_note"]


def _tex_name(name: str) -> str:
    return sp.latex(sp.Symbol(name))


def formula_images(obj: Any, model: Any, out: Path, dpi: int) -> list[tuple[str, str]]:
    """Write ``formula_*.png`` for U, ∂V/∂x_k, g_k and f_k; return ``[(file, alt text)]``.

    A system (no ∇V or g) gets U and f only.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from symqp.result import Result
    >>> from symqp.analysis._common import as_model
    >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2 / 2)
    >>> [n for n, _ in formula_images(r, as_model(r), Path(tempfile.mkdtemp()), 60)]
    ['formula_U.png', 'formula_gradV_x.png', 'formula_g_x.png', 'formula_f_x.png']
    """
    from ._figures import render_formula

    names = model.names
    items: list[tuple[str, str, Any, str]] = [("formula_U.png", "U", model.U, f"U({', '.join(names)})")]
    grad = getattr(obj, "grad_V", None)
    g = getattr(obj, "g", None)
    if grad is not None and len(grad) == len(names):
        items += [(f"formula_gradV_{n}.png", rf"\partial V / \partial {_tex_name(n)}", e, f"dV/d{n}")
                  for n, e in zip(names, grad)]  # fmt: skip
    if g is not None and len(g) == len(names):
        items += [(f"formula_g_{n}.png", f"g_{{{_tex_name(n)}}}", e, f"g_{n}") for n, e in zip(names, g)]
    if model.f is not None:
        items += [(f"formula_f_{n}.png", f"f_{{{_tex_name(n)}}}", e, f"f_{n}") for n, e in zip(names, model.f)]
    written = []
    for file, label, expr, alt in items:
        fig = render_formula(sp.sympify(expr), label=label, path=out / file, dpi=dpi)
        import matplotlib.pyplot as plt

        plt.close(fig)
        written.append((file, alt))
    return written


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + (", ..." if len(value) > 8 else "") + "]"
    return str(value)


def provenance_rows(obj: Any) -> list[tuple[str, str]]:
    """How the result was made, as ``(what, value)`` rows (empty for a system).

    Examples
    --------
    >>> from symqp.result import Result
    >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2, backend="sr3", library="poly(2)", tau=0.5,
    ...                             metrics={"route": "symbolic", "val_one_step_rel": 1e-9})
    >>> dict(provenance_rows(r))["route"], dict(provenance_rows(r))["τ (sublevel threshold)"]
    ('symbolic', '0.5')
    """
    from .. import __version__

    if not hasattr(obj, "metrics"):
        return []
    m = dict(getattr(obj, "metrics", {}) or {})
    rows = [("symqp version", __version__)]
    for label, value in (("model", getattr(obj, "model", None)), ("backend", getattr(obj, "backend", None)),
                         ("library", getattr(obj, "library", None)), ("route", m.pop("route", None)),
                         ("why this route", m.pop("route_reason", None)),
                         ("τ (sublevel threshold)", getattr(obj, "tau", None))):  # fmt: skip
        if value not in (None, ""):
            rows.append((label, _fmt(value)))
    fit = getattr(obj, "fit", None)
    if fit is not None and getattr(fit, "selection", ""):
        rows.append(("model selection", str(fit.selection)))
    for key in ("command", "call"):
        if m.get(key):
            rows.append(("reproduce with", str(m.pop(key))))
    for key, value in m.items():
        if isinstance(value, (int, float, str, bool)) or (isinstance(value, (list, tuple)) and len(value) <= 8):
            rows.append((f"metric: {key}", _fmt(value)))
    timings = getattr(obj, "timings", {}) or {}
    if timings:
        rows.append(("timings", ", ".join(f"{k} {float(v):.3g} s" for k, v in timings.items())))
    return rows


def provenance_html(rows: Sequence[tuple[str, str]]) -> str:
    """The provenance rows as an HTML table (escaped)."""
    if not rows:
        return ""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="provenance">{body}</table>'


def slice_note(names: Sequence[str], plane: Any, base: np.ndarray) -> str:
    """Where a 2-D figure of a d >= 3 system is cut: ``" (x, y plane at z = 0)"``, or ``""``.

    Examples
    --------
    >>> slice_note(["x", "y", "z"], (0, 1), np.array([1.0, 0.0, -0.5]))
    ' — (x, y) plane at z = -0.5'
    >>> slice_note(["x", "y"], (0, 1), np.zeros(2))
    ''
    """
    d = len(names)
    if d < 3:
        return ""
    i, j = (int(k) for k in plane)
    fixed = ", ".join(f"{names[k]} = {float(base[k]):.4g}" for k in range(d) if k not in (i, j))
    return f" — ({names[i]}, {names[j]}) plane at {fixed}"
