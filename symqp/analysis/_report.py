"""Summary of a result (``symqp analyze``) and the figure/HTML report (``symqp report``)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import AnalysisError
from .._io import atomic_write
from ..data._pairs import default_names
from ._common import Model, as_model, check_box, check_eps
from ._report_parts import formula_images, provenance_html, provenance_rows, slice_note

__all__ = ["format_summary", "summarize", "write_report"]

FIGURES = ("trajectories", "fields", "potentials", "densities", "pareto")
#: Box width beyond which a numerical search for stationary points is flagged as unreliable.
WIDE_BOX = 1e6


def _resolve_box(model: Model, box: Any, reference: Any) -> np.ndarray:
    if box is not None:
        return check_box(box, model.d)
    if model.box is not None:
        return check_box(model.box, model.d)
    rb = getattr(reference, "box", None)
    if rb is not None:
        return check_box(rb, model.d)
    raise AnalysisError(
        "no region to analyse: give a box (--box) or a reference system (--system); the "
        "result carries no data region (metrics['box'])"
    )


def _reference_model(reference: Any, model: Model) -> Model | None:
    if reference is None:
        return None
    ref = as_model(reference, need_f=True)
    if ref.names != model.names:
        raise AnalysisError(
            f"the reference system has variables {list(ref.names)}, the result {list(model.names)}"
        )
    # express the reference in the result's symbols (names agree)
    return ref


def summarize(
    obj: Any,
    *,
    eps: Sequence[float] = (0.05, 0.1, 0.2),
    box: Any = None,
    reference: Any = None,
    n_traj: int = 20,
    t_final: float | None = None,
    dt: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Stationary points, barriers, Z_eps, exit-time rates and (with a reference) prediction error.

    Parameters
    ----------
    obj
        A result or system (attributes ``variables``, ``U``, ``f``).
    eps
        Noise strengths for Z_eps and the exit-time estimates.
    box
        Region ``(d, 2)``; defaults to the result's data region or the reference's box.
    reference
        A system with the true field: enables the prediction error (eq. 18) and the
        comparison of Z_eps with the exact U when it is known.
    n_traj, t_final, dt
        Trajectories of the prediction error; by default ``t_final`` is ten slowest
        relaxation times of the reference and ``dt = min(t_final / 1000, t_fast / 5)``.

    Returns
    -------
    dict
        ``points``, ``barriers``, ``Z`` (eps -> PartitionFunction), ``Z_reference``,
        ``exit`` (list of ExitTimeEstimate), ``prediction`` (PredictionError or None),
        ``notes`` (list of str), ``box``; :func:`format_summary` prints it.

    Examples
    --------
    >>> from symqp.systems import get_system
    >>> s = summarize(get_system("archetypal3d"), eps=[0.1])
    >>> [round(b.dU, 6) for b in s["barriers"]], round(s["Z"][0.1].value, 6)
    ([1.0, 1.0], 0.179867)
    """
    from ._density import partition_function
    from ._exit import exit_time_estimate
    from ._predict import prediction_error
    from ._stationary import barriers, stationary_points

    model = as_model(obj, need_f=True)
    epss = check_eps(eps)
    bx = _resolve_box(model, box, reference)
    ref = _reference_model(reference, model)
    mobj = Model(model.variables, model.U, model.f, bx)
    notes: list[str] = []
    out: dict[str, Any] = {"box": bx, "eps": epss, "notes": notes, "points": [],
                           "barriers": [], "Z": {}, "Z_reference": {}, "exit": [],
                           "prediction": None}
    try:
        out["points"] = stationary_points(mobj, box=bx, seed=seed)
    except AnalysisError as exc:
        notes.append(f"stationary points: {exc}")
    width = float(np.max(bx[:, 1] - bx[:, 0]))
    if width > WIDE_BOX and not all(p.exact for p in out["points"] or [None]):
        notes.append(
            f"the box is {width:.3g} wide: the numerical search for stationary points starts from "
            "random points in it and may miss points in a small part of it; give a smaller box"
        )
    if model.U is not None and out["points"]:
        out["barriers"] = barriers(mobj, points=out["points"], box=bx)
        seen = set()
        for b in out["barriers"]:
            key = (tuple(np.round(b.minimum.x, 9)), tuple(np.round(b.saddle.x, 9)))
            if key in seen or b.dU <= 0:
                continue
            seen.add(key)
            try:
                out["exit"].append((b, exit_time_estimate(mobj, minimum=b.minimum, saddle=b.saddle,
                                                          eps=epss)))
            except AnalysisError as exc:
                notes.append(f"exit time from {_fmt_point(b.minimum.x)}: {exc}")
    if model.U is not None:
        for e in epss:
            try:
                out["Z"][e] = partition_function(mobj, eps=e)
            except AnalysisError:
                try:
                    out["Z"][e] = partition_function(mobj, eps=e, box=bx)
                except AnalysisError as exc:
                    notes.append(f"Z at eps={e:g}: {exc}")
            if ref is not None and ref.U is not None:
                try:
                    out["Z_reference"][e] = partition_function(ref.U, ref.variables, eps=e)
                except AnalysisError:
                    out["Z_reference"][e] = partition_function(ref.U, ref.variables, eps=e, box=bx)
    else:
        notes.append("the result has no quasipotential U: no barriers or Z_eps")
    if ref is not None:
        from ._figures import default_horizon

        t_final, dt = default_horizon(ref, bx, t_final, dt, slow=10.0, steps=1000)
        out["prediction"] = prediction_error(model, ref, box=bx,
                                             n_traj=n_traj, t_final=t_final, dt=dt, seed=seed)
    return out


def _fmt_point(x: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in np.asarray(x, float)) + ")"


def format_summary(summary: dict[str, Any], names: Sequence[str] = ()) -> str:
    """Plain-text rendering of :func:`summarize` output (what ``symqp analyze`` prints)."""
    lines = []
    bx = summary["box"]
    nm = list(names) or default_names(len(bx))
    lines.append("region: " + " x ".join(f"{n} in [{lo:g}, {hi:g}]" for n, (lo, hi) in zip(nm, bx)))
    lines.append("stationary points:")
    for p in summary["points"]:
        u = "" if p.U is None else f"  U = {p.U:.6g}"
        h = "" if p.hessian_kind is None else f"  Hessian of U: {p.hessian_kind}"
        idx = f" (index {p.index})" if p.is_saddle else ""
        how = "exact" if p.exact else "numerical"
        lines.append(f"  {_fmt_point(p.x)}  {p.kind}{idx}{h}{u}  [{how}]")
    if summary["barriers"]:
        lines.append("barriers dU = U(saddle) - U(minimum):")
        for b in summary["barriers"]:
            lines.append(f"  {_fmt_point(b.minimum.x)} -> saddle {_fmt_point(b.saddle.x)}: "
                         f"dU = {b.dU:.6g}")
    if summary["Z"]:
        lines.append("partition function Z_eps = int exp(-U/eps) dx:")
        for e, Z in summary["Z"].items():
            ref = summary["Z_reference"].get(e)
            extra = ""
            if ref is not None:
                extra = f"  reference {ref.value:.6g} (rel. diff {abs(Z.value / ref.value - 1):.2%})"
            err = f" ± {Z.error:.2g}" if Z.error > 0 else ""
            if not 0.0 < Z.value < np.inf:  # beyond double precision: the logarithm
                rel = Z.error / Z.value if Z.error > 0 and Z.value > 0 else 0.0
                err = f" (relative error {rel:.2g})" if rel > 0 else ""
                lines.append(f"  eps = {e:g}: Z = exp({Z.log_value:.6g}){err} [{Z.method}]{extra}")
                continue
            lines.append(f"  eps = {e:g}: Z = {Z.value:.6g}{err} [{Z.method}]{extra}")
    for b, est in summary["exit"]:
        head = f"mean exit time from {_fmt_point(b.minimum.x)} over {_fmt_point(b.saddle.x)}"
        if est.times is not None:
            vals = ", ".join(f"eps={e:g}: {t:.4g}" for e, t in zip(est.eps, est.times))
            lines.append(f"{head} ({est.note}): {vals}")
        else:
            lines.append(f"{head}: rate exp({est.dU:.4g}/eps); {est.note}")
    if summary["prediction"] is not None:
        lines.append(f"long-term prediction error (eq. 18): {summary['prediction']}")
    for n in summary["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _mesh_panel(model: Model, bx: np.ndarray, N: int, points) -> Any:
    from ._mesh import mesh_quasipotential

    stable = [p for p in points if p.is_stable]
    if model.d != 2 or not stable:
        return None
    return mesh_quasipotential(Model(model.variables, None, model.f, bx),
                               attractor=stable[0].x, box=bx, N=N)


def write_report(
    obj: Any,
    out: str | os.PathLike[str],
    *,
    reference: Any = None,
    eps: Sequence[float] = (0.05, 0.1, 0.2),
    box: Any = None,
    plane: Sequence[int] = (0, 1),
    mesh_N: int = 201,
    network: Any = None,
    dpi: int = 100,
    seed: int = 0,
) -> Path:
    """Write the figures (PNG) and a self-contained ``index.html`` into ``out``.

    Figures: ``trajectories.png`` (identified, and the reference dashed), ``fields.png``
    (downhill and circulatory streamplots), ``potentials.png`` (symbolic U, the exact U of
    the reference, a network U if given, and for 2D the OLIM mesh quasipotential of the
    reference field, or of the result's field without reference), ``densities.png``,
    ``pareto.png`` (when the result has a Pareto front) and ``formula_U.png`` (mathtext).
    The page embeds every image as base64, so it can be moved alone. Returns the page path.
    ``network`` is a callable ``(n, d) -> (n,)`` giving U; by default ``2 V`` of the
    result's fitted decomposition when it has one (the network potential is shifted to min 0
    on the plot like every panel).

    Examples
    --------
    >>> import tempfile
    >>> from symqp.systems import linear_nongradient
    >>> page = write_report(linear_nongradient(), tempfile.mkdtemp(), mesh_N=41)
    >>> page.name, (page.parent / "fields.png").is_file()
    ('index.html', True)
    """
    from ._figures import (
        plot_densities,
        plot_fields,
        plot_pareto,
        plot_potentials,
        plot_trajectories,
        slice_point,
    )

    model = as_model(obj, need_U=True, need_f=True)
    bx = _resolve_box(model, box, reference)
    ref = _reference_model(reference, model)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnalysisError(f"cannot create the report folder {out}: {exc.strerror}") from None
    summary = summarize(obj, eps=eps, box=bx, reference=reference, seed=seed)
    mobj = Model(model.variables, model.U, model.f, bx)
    base = slice_point(model, bx)
    cut = slice_note(model.names, plane, base)  # where 3-D+ figures are sliced
    written: list[tuple[str, str]] = []

    def keep(name: str, caption: str) -> None:
        written.append((name, caption))

    plot_trajectories(mobj, ref, box=bx, plane=plane,
                      seed=seed, path=out / "trajectories.png", dpi=dpi)
    keep("trajectories.png", "Trajectories of the identified field"
         + (" (solid) and of the reference field (dashed)" if ref is not None else ""))
    plot_fields(mobj, box=bx, plane=plane, fixed=base, path=out / "fields.png", dpi=dpi)
    keep("fields.png", "Downhill part -∇V and circulatory part g (line width ∝ speed)" + cut)
    panels: dict[str, Any] = {"symbolic U": model.U}
    if ref is not None and ref.U is not None:
        panels["exact U"] = ref.U
    dec = getattr(obj, "decomposition", None)
    if network is None and dec is not None and callable(getattr(dec, "V", None)):
        network = lambda X: 2.0 * np.asarray(dec.V(X), float).ravel()
    if network is not None:
        panels["network U"] = network
    mesh_note = ""
    try:
        src = ref if ref is not None else model
        from ._stationary import stationary_points

        pts = summary["points"] if ref is None else stationary_points(
            Model(src.variables, None, src.f, bx), box=bx)
        mesh = _mesh_panel(src, bx, mesh_N, pts)
        if mesh is not None:
            panels[f"mesh (OLIM, N={mesh_N})"] = mesh
    except AnalysisError as exc:
        mesh_note = f" (no mesh reference: {exc})"
    plot_potentials(panels, model.variables, box=bx, plane=plane, fixed=base,
                    path=out / "potentials.png", dpi=dpi)
    keep("potentials.png", "Quasipotential contours: " + ", ".join(panels) + mesh_note + cut)
    axis = plane[0] if isinstance(plane, (list, tuple)) else 0
    plot_densities(mobj, eps=eps, box=bx, axis=int(axis),
                   reference=None if ref is None or ref.U is None else ref.U,
                   path=out / "densities.png", dpi=dpi)
    keep("densities.png", "Marginal invariant densities for several ε"
         + (" (reference dashed)" if ref is not None and ref.U is not None else ""))
    fit = getattr(obj, "fit", None)
    if fit is not None and getattr(fit, "front", None):
        plot_pareto(obj, path=out / "pareto.png", dpi=dpi)
        keep("pareto.png", "Pareto front of the regression backend")
    formulas = formula_images(obj, model, out, dpi)
    text = format_summary(summary, model.names)
    if getattr(obj, "uncertainty", None):  # a fit of noisy pairs: bootstrap intervals of U
        table = obj.coefficient_table()
        text += (f"\ncoefficients of U, {100 * table.level:.0f}% bootstrap intervals and inclusion "
                 f"probabilities ({obj.uncertainty.get('n_replicates')} replicates):\n{table}")
    page = out / "index.html"
    with atomic_write(page, "w", encoding="utf-8") as fh:
        fh.write(_html(model, text, written, out, formulas, provenance_rows(obj)))
    return page


def _img(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _html(model: Model, text: str, figures: list[tuple[str, str]], out: Path,
          formulas: list[tuple[str, str]], provenance: list[tuple[str, str]]) -> str:  # fmt: skip
    names = ", ".join(model.names)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>symqp report: U({html.escape(names)})</title>",
        ("<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;}"
         "pre{background:#f4f4f4;padding:1em;overflow-x:auto;}"
         "figure{margin:1.5em 0;}img{max-width:100%;}table.provenance th{text-align:left;"
         "padding-right:1em;vertical-align:top;}</style></head><body>"),
        "<h1>symqp report</h1>",
        "<h2>Quasipotential U = 2V, its gradient, the circulatory part g and the field f = −∇V + g</h2>",
        *[f'<div class="formula"><img alt="{html.escape(alt)}" src="data:image/png;base64,{_img(out / name)}">'
          "</div>" for name, alt in formulas],
        f"<pre>U({html.escape(names)}) = {html.escape(str(model.U))}</pre>",
        *(["<h2>Provenance</h2>", provenance_html(provenance)] if provenance else []),
        "<h2>Analysis</h2>",
        f"<pre>{html.escape(text)}</pre>",
        "<h2>Figures</h2>",
    ]
    for name, caption in figures:
        parts.append(
            f'<figure><img alt="{html.escape(name)}" '
            f'src="data:image/png;base64,{_img(out / name)}">'
            f"<figcaption>{html.escape(caption)} ({html.escape(name)})</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
