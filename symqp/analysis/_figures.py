"""Figures in the style of the paper (matplotlib, Agg canvas, never a display).

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` of a fixed pixel size
(``size`` inches times ``dpi``) built without :mod:`matplotlib.pyplot`, so nothing global is
touched and no window opens; ``path`` saves it as PNG as well. Systems with more than two
variables are shown on a chosen plane ``(i, j)`` with the other coordinates fixed (by
default at the lowest stable point of f, or the box centre).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from .._errors import AnalysisError
from .._estimator import check_seed
from .._io import atomic_write
from .._numeric import numpy_function
from ..result._result import round_floats
from ._common import Model, as_model, check_box, check_eps, numpy_field
from ._density import marginal_density

__all__ = [
    "plot_densities",
    "plot_fields",
    "plot_pareto",
    "plot_potentials",
    "plot_trajectories",
    "render_formula",
    "slice_point",
]

SIZE = (6.4, 4.8)  # inches; 640 x 480 px at the default dpi of 100
DPI = 100


def _figure(size=SIZE, dpi=DPI):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> None:
    if path is None:
        return
    with atomic_write(os.fspath(path), "wb") as fh:
        fig.savefig(fh, format="png", dpi=fig.dpi)


def _plane(plane: Sequence[int], d: int) -> tuple[int, int]:
    try:
        i, j = (int(v) for v in plane)
    except (TypeError, ValueError):
        raise AnalysisError(f"plane must be two variable indices, got {plane!r}") from None
    if d < 2:
        raise AnalysisError("plots on a plane need at least two variables")
    if not (0 <= i < d and 0 <= j < d) or i == j:
        raise AnalysisError(f"plane {plane!r} is not two different indices below {d}")
    return i, j


def _box(model: Model, box: Any) -> np.ndarray:
    if box is None:
        box = model.box
    if box is None:
        raise AnalysisError("no box given and the result carries no data region (metrics['box'])")
    return check_box(box, model.d)


def slice_point(model: Model, box: np.ndarray, fixed: Any = None) -> np.ndarray:
    """Point whose coordinates off the plotted plane stay fixed (lowest stable point by default)."""
    if fixed is not None:
        p = np.asarray(fixed, float).ravel()
        if p.shape != (model.d,):
            raise AnalysisError(f"fixed must be a point of dimension {model.d}, got {p.shape}")
        return p
    centre = box.mean(axis=1)
    if model.d <= 2 or model.f is None:
        return centre
    from ._stationary import stationary_points

    try:
        pts = [p for p in stationary_points(model, box=box) if p.is_stable]
    except AnalysisError:
        return centre
    return pts[0].x.copy() if pts else centre


def default_horizon(model: Model, box: np.ndarray, t_final: float | None, dt: float | None, *,
                    slow: float, steps: int) -> tuple[float, float]:
    """Fill in ``t_final = slow * t_slow`` and ``dt = min(t_final / steps, t_fast / 5)``."""
    if t_final is None or dt is None:
        from ._stationary import time_scales

        t_slow, t_fast = time_scales(model, box=box)
        if t_final is None:
            t_final = slow * t_slow
        if dt is None:
            dt = min(t_final / steps, 0.2 * t_fast)
    if not (np.isfinite(t_final) and np.isfinite(dt) and t_final > 0 and dt > 0):
        raise AnalysisError(f"t_final and dt must be positive, got {t_final}, {dt}")
    return float(t_final), float(dt)


def _grid(box: np.ndarray, ij: tuple[int, int], base: np.ndarray, n: int):
    i, j = ij
    xs = np.linspace(box[i, 0], box[i, 1], n)
    ys = np.linspace(box[j, 0], box[j, 1], n)
    XX, YY = np.meshgrid(xs, ys, indexing="xy")
    P = np.tile(base, (XX.size, 1))
    P[:, i] = XX.ravel()
    P[:, j] = YY.ravel()
    return xs, ys, XX, YY, P


def _label(model: Model, k: int) -> str:
    return f"${sp.latex(model.variables[k])}$"


def _decomposition(model: Model):
    """(-grad V, g) as NumPy callables from U and f (V = U/2, g = f + grad V)."""
    if model.U is None or model.f is None:
        raise AnalysisError("the downhill/circulatory plot needs both U and f")
    V = model.U / 2
    down = [-sp.diff(V, v) for v in model.variables]
    circ = [sp.expand(fi + sp.diff(V, v)) for fi, v in zip(model.f, model.variables)]
    mk = lambda ex: numpy_field(Model(model.variables, None, tuple(ex)))
    return mk(down), mk(circ)


def plot_trajectories(
    obj: Any,
    reference: Any = None,
    *,
    x0: Any = None,
    box: Any = None,
    n_traj: int = 8,
    t_final: float | None = None,
    dt: float | None = None,
    plane: Sequence[int] = (0, 1),
    seed: int = 0,
    path: Any = None,
    dpi: int = DPI,
):
    """Trajectories of the identified f (solid), and of a reference field (dashed) if given.

    Paper Fig. 1a/3a (trajectories) and Fig. 2a/5a (observed vs identified). Integrated with
    the vectorised RK4 of :func:`symqp.analysis.rk4_trajectories` from ``x0`` or from
    ``n_traj`` uniform draws in the box; shown on ``plane``. By default ``t_final`` is five
    slowest relaxation times and ``dt`` the smaller of ``t_final / 2000`` and a fifth of the
    fastest time scale (:func:`symqp.analysis.time_scales`).

    Examples
    --------
    >>> from symqp.systems import linear_nongradient
    >>> fig = plot_trajectories(linear_nongradient(), n_traj=3, t_final=1.0)
    >>> tuple(int(v) for v in fig.get_size_inches() * fig.dpi)
    (640, 480)
    """
    from ._predict import rk4_trajectories

    model = as_model(obj, need_f=True)
    bx = _box(model, box)
    ij = _plane(plane, model.d)
    if x0 is None:
        rng = np.random.default_rng(check_seed("", "seed", seed))
        X0 = bx[:, 0] + rng.random((n_traj, model.d)) * (bx[:, 1] - bx[:, 0])
    else:
        X0 = np.atleast_2d(np.asarray(x0, float))
        if X0.shape[1] != model.d:
            raise AnalysisError(f"x0 must have shape (n, {model.d}), got {X0.shape}")
    t_final, dt = default_horizon(model, bx, t_final, dt, slow=5.0, steps=2000)
    fig = _figure(dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    S = rk4_trajectories(numpy_field(model), X0, t_final=t_final, dt=dt)
    colors = [f"C{k % 10}" for k in range(X0.shape[0])]
    for k in range(X0.shape[0]):
        ax.plot(S[:, k, ij[0]], S[:, k, ij[1]], "-", color=colors[k], lw=1.5)
    if reference is not None:
        ref = as_model(reference, need_f=True)
        if ref.d != model.d:
            raise AnalysisError(f"reference has {ref.d} variables, the result {model.d}")
        R = rk4_trajectories(numpy_field(ref), X0, t_final=t_final, dt=dt)
        for k in range(X0.shape[0]):
            ax.plot(R[:, k, ij[0]], R[:, k, ij[1]], "--", color="k", lw=1.0)
        ax.plot([], [], "-", color="C0", label="identified")
        ax.plot([], [], "--", color="k", label="reference")
        ax.legend(loc="best", fontsize=8)
    ax.plot(X0[:, ij[0]], X0[:, ij[1]], "o", color="k", ms=3)
    ax.set_xlim(*bx[ij[0]])
    ax.set_ylim(*bx[ij[1]])
    ax.set_xlabel(_label(model, ij[0]))
    ax.set_ylabel(_label(model, ij[1]))
    ax.set_title("trajectories")
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_fields(
    obj: Any,
    *,
    box: Any = None,
    plane: Sequence[int] = (0, 1),
    fixed: Any = None,
    n: int = 60,
    path: Any = None,
    dpi: int = DPI,
):
    """Downhill ``-grad V`` and circulatory ``g`` fields as streamplots (width ∝ speed).

    Paper Fig. 1b-c / 4a-b, with ``V = U/2`` and ``g = f + grad V``.

    Examples
    --------
    >>> from symqp.systems import linear_nongradient
    >>> fig = plot_fields(linear_nongradient(2.0), n=20)
    >>> len(fig.axes) >= 2
    True
    """
    model = as_model(obj, need_U=True, need_f=True)
    bx = _box(model, box)
    ij = _plane(plane, model.d)
    base = slice_point(model, bx, fixed)
    xs, ys, XX, _YY, P = _grid(bx, ij, base, n)
    down, circ = _decomposition(model)
    fig = _figure(dpi=dpi)
    for k, (F, title) in enumerate(((down, r"downhill $-\nabla V$"), (circ, r"circulatory $g$"))):
        ax = fig.add_subplot(1, 2, k + 1)
        with np.errstate(all="ignore"):
            W = F(P)
        u = W[:, ij[0]].reshape(XX.shape)
        v = W[:, ij[1]].reshape(XX.shape)
        speed = np.hypot(u, v)
        smax = float(np.nanmax(speed)) if np.any(np.isfinite(speed)) else 0.0
        if smax > 0 and np.all(np.isfinite(speed)):
            ax.streamplot(xs, ys, u, v, density=0.9, color="C0" if k == 0 else "C3",
                          linewidth=0.3 + 2.2 * speed / smax, arrowsize=0.7)
        else:
            ax.text(0.5, 0.5, "zero field", transform=ax.transAxes, ha="center")
        ax.set_xlim(*bx[ij[0]])
        ax.set_ylim(*bx[ij[1]])
        ax.set_xlabel(_label(model, ij[0]))
        if k == 0:
            ax.set_ylabel(_label(model, ij[1]))
        ax.set_title(title, fontsize=10)
        ax.set_aspect("auto")
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_potentials(
    panels: dict[str, Any],
    variables: Sequence[Any] | None = None,
    *,
    box: Any,
    plane: Sequence[int] = (0, 1),
    fixed: Any = None,
    n: int = 120,
    levels: int = 15,
    path: Any = None,
    dpi: int = DPI,
):
    """Contours of several quasipotentials side by side (exact vs network vs symbolic vs mesh).

    Paper Fig. 1d-e / 4c-e. ``panels`` maps a title to a SymPy U (or a result/system with a U),
    a callable ``(n, d) -> (n,)`` (e.g. a network), or a
    :class:`symqp.analysis.MeshQuasipotential` (2D only). Each panel is shifted to min 0 on
    the plotted grid; all panels share the colour levels.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> fig = plot_potentials({"exact": 2*x**2 + y**2, "fit": 2.1*x**2 + y**2}, [x, y],
    ...                       box=[[-1, 1], [-1, 1]], n=30)
    >>> len([a for a in fig.axes if a.get_title()])
    2
    """
    if not isinstance(panels, dict) or not panels:
        raise AnalysisError("panels must be a non-empty dict of title -> U")
    syms = None
    if variables is not None:
        syms = as_model(None, None, variables).variables
    grids = []
    d = None
    for title, item in panels.items():
        if hasattr(item, "U") and hasattr(item, "x") and hasattr(item, "y") and hasattr(item, "K"):
            grids.append((title, "mesh", item))
            d = d or 2
            continue
        if callable(item) and not isinstance(item, sp.Basic):
            grids.append((title, "call", item))
            continue
        if isinstance(item, (sp.Basic, str)):
            if syms is None:
                raise AnalysisError("variables must be given for SymPy panels")
            m = as_model(item, None, syms, need_U=True)
        else:
            m = as_model(item, need_U=True)
            syms = syms or m.variables
        grids.append((title, "expr", m))
        d = m.d
    if syms is None:
        raise AnalysisError("variables must be given when no panel is a SymPy U or a result")
    d = len(syms)
    bx = check_box(box, d)
    ij = _plane(plane, d)
    base = bx.mean(axis=1) if fixed is None else np.asarray(fixed, float).ravel()
    if base.shape != (d,):
        raise AnalysisError(f"fixed must be a point of dimension {d}")
    xs, ys, XX, _YY, P = _grid(bx, ij, base, n)
    Zs = []
    for title, kind, item in grids:
        if kind == "expr":
            with np.errstate(all="ignore"):
                Z = numpy_function(item.U, item.variables)(P).reshape(XX.shape)
            Zs.append((title, xs, ys, Z))
        elif kind == "call":
            with np.errstate(all="ignore"):
                Z = np.asarray(item(P), float).reshape(XX.shape)
            Zs.append((title, xs, ys, Z))
        else:
            if d != 2:
                raise AnalysisError("a mesh panel is only possible for 2D systems")
            Zs.append((title, item.x, item.y, np.asarray(item.U).T))
    shifted = []
    for title, gx, gy, Z in Zs:
        fin = np.isfinite(Z)
        if not fin.any():
            raise AnalysisError(f"panel {title!r} is not finite anywhere on the grid")
        shifted.append((title, gx, gy, np.where(fin, Z - np.min(Z[fin]), np.nan)))
    top = max(float(np.nanpercentile(Z, 95)) for _, _, _, Z in shifted)
    lv = np.linspace(0.0, top if top > 0 else 1.0, levels)
    k = len(shifted)
    cols = min(k, 2)
    rows = int(np.ceil(k / cols))
    fig = _figure(dpi=dpi)
    last = None
    for idx, (title, gx, gy, Z) in enumerate(shifted):
        ax = fig.add_subplot(rows, cols, idx + 1)
        last = ax.contourf(gx, gy, Z, levels=lv, cmap="viridis", extend="max")
        ax.contour(gx, gy, Z, levels=lv, colors="k", linewidths=0.3)
        ax.set_title(str(title), fontsize=9)
        ax.set_xlabel(f"${sp.latex(syms[ij[0]])}$", fontsize=8)
        ax.set_ylabel(f"${sp.latex(syms[ij[1]])}$", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    if last is not None:
        fig.colorbar(last, ax=fig.axes, shrink=0.8, label="U - min U")
    _save(fig, path)
    return fig


def plot_densities(
    obj: Any,
    variables: Sequence[Any] | None = None,
    *,
    eps: Sequence[float] = (0.05, 0.1, 0.2),
    box: Any = None,
    axis: int = 0,
    reference: Any = None,
    n: int = 400,
    path: Any = None,
    dpi: int = DPI,
):
    """Marginal invariant densities ``exp(-U/eps)/Z_eps`` along one variable, several eps.

    Paper Fig. 2b-d / 5b-d. The marginal is computed on the box (exact 1D factor when U
    separates, otherwise grid quadrature over the other variables, d <= 3). A ``reference``
    U (expression or object) is drawn dashed.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> fig = plot_densities(x**4 - 2*x**2 + y**2, [x, y], eps=[0.1, 0.2],
    ...                      box=[[-2, 2], [-2, 2]], n=50)
    >>> fig.axes[0].get_xlabel()
    '$x$'
    """
    epss = check_eps(eps)
    model = as_model(obj, None, variables, need_U=True)
    bx = _box(model, box)
    if not 0 <= axis < model.d:
        raise AnalysisError(f"axis {axis} out of range for {model.d} variables")
    fig = _figure(dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    refm = None
    if reference is not None:
        refm = (as_model(reference, None, model.variables, need_U=True)
                if isinstance(reference, sp.Basic) else as_model(reference, need_U=True))
    for k, e in enumerate(epss):
        xs, p = marginal_density(model, bx, axis, e, n)
        ax.plot(xs, p, "-", color=f"C{k}", label=f"ε = {e:g}")
        if refm is not None:
            xr, pr = marginal_density(refm, bx, axis, e, n)
            ax.plot(xr, pr, "--", color=f"C{k}", lw=1.0)
    if refm is not None:
        ax.plot([], [], "--", color="gray", label="reference")
    ax.set_xlabel(_label(model, axis))
    ax.set_ylabel("marginal density")
    ax.set_title(r"invariant density $\propto e^{-U/\varepsilon}$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_pareto(front: Any, *, path: Any = None, dpi: int = DPI):
    """Pareto front: validation (and training) error against complexity, log scale.

    ``front`` is a result with a fit (``result.fit.front``), a fit, or a list of candidates
    (``complexity``, ``train_error``, ``val_error``), or a dict ``{backend: front}``; drawn
    by :func:`symqp.backends.plot_pareto` (the chosen model of a fit is circled).

    Examples
    --------
    >>> from types import SimpleNamespace as C
    >>> fig = plot_pareto([C(complexity=k, train_error=1.0 / k, val_error=1.5 / k)
    ...                    for k in (1, 2, 4)])
    >>> fig.axes[0].get_yscale()
    'log'
    """
    from .._errors import BackendError
    from ..backends import plot_pareto as draw

    try:
        return draw(front, path, dpi=dpi)
    except BackendError as exc:
        raise AnalysisError(str(exc)) from None


def render_formula(expr: Any, *, label: str = "U", path: Any = None, digits: int = 4,
                   fontsize: int = 14, dpi: int = DPI):
    """Render ``label = expr`` with matplotlib's mathtext (plain text if mathtext fails).

    Floats are rounded to ``digits`` significant digits for display; long sums are broken
    over several lines. Returns the figure (size fitted to the formula).

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> fig = render_formula(x**4 - 2*x**2 + 1)
    >>> fig.texts[0].get_text()
    '$U = x^{4} - 2 x^{2} + 1$'
    """
    try:  # strict: numbers and SymPy objects only, text is never parsed here
        e = expr if isinstance(expr, sp.Basic) else sp.sympify(expr, strict=True)
    except (sp.SympifyError, TypeError):
        raise AnalysisError(f"render_formula needs a SymPy expression, got {type(expr).__name__}") from None
    e = round_floats(e, digits)
    terms = sp.Add.make_args(e) if isinstance(e, sp.Add) else (e,)
    per_line = 6
    if len(terms) > per_line:
        ordered = list(e.as_ordered_terms())
        lines = []
        for k in range(0, len(ordered), per_line):
            chunk = sp.latex(sp.Add(*ordered[k:k + per_line], evaluate=False), order="none")
            lines.append(chunk)
        texts = [f"${label} = {lines[0]}$"] + [
            f"$\\quad {'' if ln.startswith('-') else '+ '}{ln}$" for ln in lines[1:]
        ]
    else:
        texts = [f"${label} = {sp.latex(e)}$"]
    from matplotlib.mathtext import MathTextParser

    parser = MathTextParser("path")
    try:
        for t in texts:
            parser.parse(t)
    except ValueError:
        texts = [f"{label} = {e}"]
    height = 0.45 * len(texts) + 0.3
    width = min(16.0, max(2.0, 0.11 * fontsize / 14 * max(len(t) for t in texts)))
    fig = _figure(size=(width, height), dpi=dpi)
    for k, t in enumerate(texts):
        fig.text(0.02, 1 - (k + 0.8) / (len(texts) + 0.4), t, fontsize=fontsize, va="center")
    _save(fig, path)
    return fig
