"""Closing the loop with observed statistics: the invariant density and the mean exit times.

:func:`density_check` compares ``p_eps = exp(-U/eps) / Z_eps`` with the histogram of long
stochastic data (or, without data, of an Euler-Maruyama simulation of the model itself);
:func:`exit_time_check` compares the mean transition times between the stable states that
the Eyring-Kramers law predicts from U with those measured on the paths. Noise level ``eps``:
given, or the one a stochastic fit estimated (``result.metrics["eps"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import integrate

from .._errors import AnalysisError
from .._numeric import numpy_function
from ._common import as_model, check_box, check_eps, numpy_field
from ._density import euler_maruyama, marginal_density, partition_function

__all__ = ["density_check", "exit_time_check"]

_SUB = 4  # quadrature points per histogram cell and axis


def _is_data(obj: Any) -> bool:
    if hasattr(obj, "x0") and hasattr(obj, "xh"):
        return True
    return isinstance(obj, np.ndarray) and obj.dtype.kind in "fiu" and obj.ndim == 2


def _samples(data: Any, d: int) -> np.ndarray:
    X = np.asarray(data.x0 if hasattr(data, "x0") else data, dtype=float)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] < 10:
        raise AnalysisError(f"the data must hold at least 10 states of dimension {d}, got shape {X.shape}")
    X = X[np.all(np.isfinite(X), axis=1)]
    return X


def _eps_of(obj: Any, eps: Any) -> float:
    if eps is None:
        eps = (getattr(obj, "metrics", None) or {}).get("eps")
        if eps is None:
            raise AnalysisError("give eps, or a result fitted with stochastic=True (it estimates eps)")
    (e,) = check_eps(eps)
    return e


def _data_box(X: np.ndarray) -> np.ndarray:
    lo, hi = np.quantile(X, 0.0005, axis=0), np.quantile(X, 0.9995, axis=0)
    pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
    return np.column_stack([lo - pad, hi + pad])


def _cell_masses(model: Any, box: np.ndarray, bins: int, eps: float) -> np.ndarray:
    """exp(-U/eps) integrated over every cell of a bins^d grid on the box, normalised (d <= 2)."""
    d = model.d
    axes = [lo + (np.arange(bins * _SUB) + 0.5) * (hi - lo) / (bins * _SUB) for lo, hi in box]
    G = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    u = numpy_function(model.U, model.variables)(G)
    if not np.any(np.isfinite(u)):
        raise AnalysisError("U is not finite anywhere on the box")
    w = np.exp(-(u - np.nanmin(u)) / eps).reshape((bins * _SUB,) * d)
    if d == 1:
        m = w.reshape(bins, _SUB).sum(axis=1)
    else:
        m = w.reshape(bins, _SUB, bins, _SUB).sum(axis=(1, 3))
    return m / m.sum()


def _distances(p: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """(total variation, KL(p || q)) between two normalised histograms."""
    tv = 0.5 * float(np.abs(p - q).sum())
    on = p > 0
    with np.errstate(divide="ignore"):
        kl = float(np.sum(p[on] * np.log(p[on] / np.maximum(q[on], 1e-300))))
    return tv, kl


def _hist(X: np.ndarray, box: np.ndarray, bins: int) -> np.ndarray:
    inside = np.all((X >= box[:, 0]) & (X <= box[:, 1]), axis=1)
    H, _ = np.histogramdd(X[inside], bins=[bins] * X.shape[1], range=[tuple(r) for r in box])
    return H / max(H.sum(), 1.0)


def _figure_of(model: Any, X: np.ndarray, box: np.ndarray, eps: float, bins: int, path: Any):
    from ._figures import _figure, _label, _save

    d = model.d
    fig = _figure(size=(3.2 * d, 3.0))
    for k in range(d):
        ax = fig.add_subplot(1, d, k + 1)
        ax.hist(X[:, k], bins=bins, range=tuple(box[k]), density=True, color="0.7", label="data")
        xs, p = marginal_density(model, box, k, eps, 20 * bins + 1, n_other=81)
        ax.plot(xs, p, "C0-", lw=1.5, label=r"$e^{-U/\varepsilon}/Z$")
        ax.set_xlabel(_label(model, k))
    fig.axes[0].set_ylabel("marginal density")
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"invariant density against the data (ε = {eps:.3g})", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _check_data(model: Any, X: np.ndarray, eps: float, box: np.ndarray, bins: int, path: Any) -> dict:
    d = model.d
    n = X.shape[0]
    half = n // 2
    if d <= 2:
        ref = _cell_masses(model, box, bins, eps)
        H = _hist(X, box, bins)
        tv, kl = _distances(H, ref)
        tv_split, _ = _distances(_hist(X[:half], box, bins), _hist(X[half:], box, bins))
        tv_axes = []
    else:
        if d > 3:
            raise AnalysisError("density_check compares marginals of a non-separable U for d <= 3 only")
        tv_axes, kls, splits = [], [], []
        for k in range(d):
            edges = np.linspace(box[k, 0], box[k, 1], bins + 1)
            fine, w = marginal_density(model, box, k, eps, 20 * bins + 1, n_other=61)
            cum = integrate.cumulative_trapezoid(w, fine, initial=0.0)
            ref_k = np.diff(np.interp(edges, fine, cum / cum[-1]))
            H_k = _hist(X[:, [k]], box[[k]], bins)
            t, kk = _distances(H_k, ref_k)
            tv_axes.append(t)
            kls.append(kk)
            splits.append(_distances(_hist(X[:half, [k]], box[[k]], bins), _hist(X[half:, [k]], box[[k]], bins))[0])
        tv, kl, tv_split, H, ref = max(tv_axes), max(kls), max(splits), None, None
    try:
        log_z = partition_function(model.U, model.variables, eps=eps, box=box).log_value
    except AnalysisError:
        log_z = None
    fig = _figure_of(model, X, box, eps, bins, path)
    return {"eps": eps, "source": "data", "tv": tv, "kl": kl, "tv_split": tv_split, "tv_axes": tv_axes,
            "n_samples": n, "box": box.tolist(), "hist": H, "reference": ref, "log_Z": log_z, "figure": fig}


def density_check(
    obj: Any,
    f: Any = None,
    variables: Sequence[Any] | None = None,
    *,
    data: Any = None,
    eps: float | None = None,
    axis: int = 0,
    box: Any = None,
    n_paths: int = 2000,
    t_burn: float = 10.0,
    t_sample: float = 20.0,
    dt: float = 1e-3,
    bins: int = 40,
    seed: int = 0,
    path: Any = None,
) -> dict:
    """Compare the invariant density ``exp(-U/eps)/Z_eps`` with a histogram of stochastic paths.

    With ``data`` — or ``density_check(result, data)`` — the histogram is that of the states
    in the data (:class:`~symqp.data.Pairs`, their ``x0``, or an (n, d) array of states from
    long stochastic paths, e.g. ``symqp simulate SYSTEM --sde-eps EPS --n-traj 1 --dt H``).
    For d <= 2 the joint histogram on a ``bins``^d grid is compared with the cell masses of
    p_eps; for d = 3 the marginal along every axis (the largest distance is reported).
    ``eps`` defaults to the estimate of a stochastic fit (``result.metrics["eps"]``); the box
    to the range of the data. ``tv_split`` is the distance between the histograms of the two
    halves of the data: the sampling noise the distance to the model should be compared with.

    Without data the model itself is simulated (``dx = f dt + sqrt(eps) dW`` from ``n_paths``
    uniform starts in the box, ``t_burn`` dropped, ``t_sample`` histogrammed along ``axis``).

    Returns
    -------
    dict
        ``tv`` (total variation distance), ``kl`` (KL divergence of the data from the model),
        ``eps``, ``source`` (``"data"`` or ``"simulation"``), ``n_samples``; with data also
        ``tv_split``, ``tv_axes``, ``log_Z``, ``box`` and ``figure`` (a matplotlib Figure of the
        marginals, written as PNG to ``path`` when given); without, ``edges``, ``hist``,
        ``reference`` and ``rel_l2``.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> rng = np.random.default_rng(0)
    >>> samples = rng.normal(scale=0.5, size=(20000, 1))     # exp(-x**2 / 0.5) / Z, eps = 0.5
    >>> r = density_check(x**2, [-x], [x], data=samples, eps=0.5, bins=20)
    >>> bool(r["tv"] < 0.03), bool(r["tv"] < 3 * r["tv_split"])
    (True, True)
    """
    if data is None and _is_data(f):
        data, f = f, None
    if data is not None:
        model = as_model(obj, f, variables, need_U=True)
        e = _eps_of(obj, eps)
        X = _samples(data, model.d)
        bx = check_box(box, model.d) if box is not None else _data_box(X)
        return _check_data(model, X, e, bx, int(bins), path)
    e = _eps_of(obj, eps)
    model = as_model(obj, f, variables, need_U=True, need_f=True)
    box = model.box if box is None else box
    if box is None:
        raise AnalysisError("density_check needs a box (start region and histogram range)")
    bx = check_box(box, model.d)
    if not 0 <= axis < model.d:
        raise AnalysisError(f"axis {axis} out of range for {model.d} variables")
    rng = np.random.default_rng(seed)
    x0 = bx[:, 0] + rng.random((n_paths, model.d)) * (bx[:, 1] - bx[:, 0])
    burn = round(t_burn / dt)
    S = euler_maruyama(numpy_field(model), x0, eps=e, dt=dt, n_steps=burn + round(t_sample / dt), seed=seed + 1,
                       every=max(1, round(0.05 / dt)), burn=burn)  # fmt: skip
    vals = S[..., axis].ravel()
    edges = np.linspace(bx[axis, 0], bx[axis, 1], bins + 1)
    hist, _ = np.histogram(vals, bins=edges, density=True)
    fine, w = marginal_density(model, bx, axis, e, 20 * bins + 1, n_other=121)
    cum = integrate.cumulative_trapezoid(w, fine, initial=0.0)
    ref = np.diff(np.interp(edges, fine, cum / cum[-1])) / np.diff(edges)
    width = np.diff(edges)
    tv, kl = _distances(hist * width, ref * width)
    rel = float(np.sqrt(np.sum((hist - ref) ** 2 * width) / np.sum(ref**2 * width)))
    return {"edges": edges, "hist": hist, "reference": ref, "tv": tv, "kl": kl, "rel_l2": rel, "eps": e,
            "source": "simulation", "n_samples": int(vals.size)}  # fmt: skip


def _paths(data: Any, dt: float | None) -> tuple[list[np.ndarray], float]:
    """The paths in the data as state sequences, and the time between their states."""
    if not (hasattr(data, "x0") and hasattr(data, "xh")):
        if dt is None:
            raise AnalysisError("give dt, the time between the states of the path")
        return [np.asarray(data, dtype=float)], float(check_eps(dt)[0])
    x0, xh = np.asarray(data.x0, float), np.asarray(data.xh, float)
    traj = np.zeros(len(x0), int) if data.traj is None else np.asarray(data.traj)
    cut = np.flatnonzero(np.diff(traj) != 0) + 1
    chained = np.all(xh[:-1] == x0[1:], axis=1)
    chained[cut - 1] = True
    if dt is None:
        if not np.all(chained):
            raise AnalysisError("the pairs are not consecutive states of paths (x_h of one is not x_0 of the "
                                "next): give dt, the time between snapshots")
        dt = float(data.h)
    paths = [np.vstack([x0[a:b], xh[b - 1 : b]]) if np.all(chained[a : b - 1]) else x0[a:b]
             for a, b in zip(np.r_[0, cut], np.r_[cut, len(x0)])]  # fmt: skip
    return paths, float(check_eps(dt)[0])


def _transitions(paths: list[np.ndarray], centres: np.ndarray, radius: float, dt: float) -> dict:
    """Durations of the transitions between the balls around the centres, by (from, to)."""
    out: dict[tuple[int, int], list[float]] = {}
    for P in paths:
        dist = np.linalg.norm(P[:, None, :] - centres[None, :, :], axis=2)
        lab = np.where(dist.min(axis=1) < radius, dist.argmin(axis=1), -1)
        idx = np.flatnonzero(lab >= 0)
        if idx.size == 0:
            continue
        change = np.flatnonzero(np.diff(lab[idx]) != 0) + 1
        starts = np.r_[0, change]  # first entry into each visited ball, in order
        for a, b in zip(starts[:-1], starts[1:]):
            out.setdefault((int(lab[idx[a]]), int(lab[idx[b]])), []).append((idx[b] - idx[a]) * dt)
    return out


def exit_time_check(obj: Any, data: Any, *, eps: float | None = None, dt: float | None = None,
                    radius: float | None = None, box: Any = None) -> list[dict]:
    """Mean transition times between stable states: Eyring-Kramers from U against the paths.

    For every barrier of U (a minimum and a saddle joining it to another minimum,
    :func:`~symqp.analysis.barriers`) the mean exit time predicted by
    :func:`~symqp.analysis.exit_time_estimate` is set beside the one measured on the paths of
    ``data``: the mean time from the first entry into the ball of radius ``radius`` (default a
    quarter of the smallest distance between minima) around the minimum to the first entry into
    the ball around another one. ``data`` are the pairs of long paths (consecutive pairs share
    a snapshot, so the time step is h; otherwise give ``dt``) or one path as an (n, d) array.

    Returns
    -------
    list of dict
        ``minimum``, ``saddle``, ``dU``, ``predicted`` (None where the prefactor is not
        available), ``rate_only`` (exp(dU/eps)), ``measured`` (mean, None without a
        transition), ``stderr``, ``n_transitions``.

    Examples
    --------
    >>> import sympy as sp
    >>> from symqp.data import sample_sde_pairs
    >>> from symqp.systems import from_expressions
    >>> x, y = sp.symbols("x y")
    >>> U = x**4 / 2 - x**2 + y**2               # f = -grad U / 2: wells at (+-1, 0), barrier 0.5
    >>> system = from_expressions([-sp.diff(U, x) / 2, -sp.diff(U, y) / 2], [x, y],
    ...                           box=[[-1.5, 1.5], [-1, 1]], U=U)
    >>> paths = sample_sde_pairs(system, eps=0.25, n_traj=50, n_pairs=4000, h=0.05, dt=0.05,
    ...                          substeps=2, seed=1)
    >>> r = exit_time_check(system, paths, eps=0.25)[0]
    >>> r["n_transitions"] > 100, bool(0.75 < r["measured"] / r["predicted"] < 1.25)
    (True, True)
    """
    from ._exit import exit_time_estimate
    from ._stationary import barriers

    model = as_model(obj, None, None, need_U=True, need_f=True) if hasattr(obj, "variables") else None
    if model is None:
        raise AnalysisError("exit_time_check needs a result or system (U and f)")
    e = _eps_of(obj, eps)
    bars = barriers(model, box=box if box is not None else model.box)
    if not bars:
        raise AnalysisError("U has no saddle joining two stable states in the box: no transition to time")
    minima = {tuple(np.round(b.minimum.x, 12)): b.minimum.x for b in bars}
    centres = np.array(list(minima.values()))
    if radius is None:
        gaps = [np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1 :]]
        radius = 0.25 * min(gaps) if gaps else 0.25
    paths, step = _paths(data, dt)
    trans = _transitions(paths, centres, float(radius), step)
    out = []
    for b in bars:
        i = int(np.argmin(np.linalg.norm(centres - b.minimum.x, axis=1)))
        times = [t for (a, _), ts in trans.items() if a == i for t in ts]
        est = exit_time_estimate(model, minimum=b.minimum, saddle=b.saddle, eps=[e])
        out.append({
            "minimum": np.asarray(b.minimum.x).tolist(), "saddle": np.asarray(b.saddle.x).tolist(), "dU": b.dU,
            "predicted": None if est.times is None else float(est.times[0]), "rate_only": float(np.exp(b.dU / e)),
            "measured": float(np.mean(times)) if times else None,
            "stderr": float(np.std(times, ddof=1) / np.sqrt(len(times))) if len(times) > 1 else None,
            "n_transitions": len(times), "note": est.note,
        })  # fmt: skip
    return out
