"""``symqp.fit``: snapshot pairs to an exact symbolic quasipotential.

Pipeline: split the pairs by trajectory; train (or take) an orthogonal decomposition
f = -grad V_theta + g_theta; keep the training points in the sublevel set
{V_theta < min V_theta + tau}; build the targets G = [f_theta, V_theta, g_theta] on a
bounded, spatially balanced subsample; run a regression backend on the library; map the
expressions back to the data coordinates; fix the constant of U = 2V so that min U over the
data region is 0; measure the result.

Scaling. For polynomial (monomial) libraries the regression runs in scaled coordinates
x~ = x / s and scaled outputs V~ = c V / s**2, f~ = c f / s, g~ = c g / s, where s and c
are powers of two chosen from the data (s ~ RMS of x, c such that RMS |f~| ~ 1). This keeps
the decomposition exact (f~ = -grad~ V~ + g~, and g~ . grad~ V~ = (c/s)**2 g . grad V), makes
the backends' thresholds scale-free (Example 2 of the paper has states ~1e-2 and V ~1e-8),
maps monomials to monomials (so sparsity is unchanged) and, because s and c are powers of
two, scaling and mapping back are exact in floating point. No centring is applied: a shift
would turn x**4 into a dense quartic and destroy the sparsity pattern. Other libraries
(trigonometric, rational) are not scale-covariant, so only the output scale c is used.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from .._errors import BackendError, DataError, LibraryError, SymqpError, TrainingError, first_line
from ..result import Result

__all__ = ["fit", "choose_tau", "prepare", "assemble", "refine_prepared", "Prepared"]

_CHUNK = 50_000
_DEFAULT_QUANTILE = 0.95
_MIN_POINTS = 200


def choose_tau(V: Any, *, quantile: float = _DEFAULT_QUANTILE, min_points: int = _MIN_POINTS) -> float:
    """Sublevel threshold tau (an offset above min V) from the values of V_theta on the data.

    The regression should stay where the network is reliable, i.e. where the data are; far
    from the attractors the data are scarce and V_theta extrapolates (paper, Sec. 2.3). The
    rule is scale-free: tau is the ``quantile`` of V_theta over the data points minus its
    minimum, so ``{V_theta < min V_theta + tau}`` holds that fraction of the data and drops
    the sparsely sampled outskirts. It is raised if needed so that at least ``min_points``
    points remain. On Example 1 of the paper (data as in App. B) the 0.95 quantile gives
    tau ~ 0.5, a region holding both minima and the saddle (the paper used 2, i.e. 99.98 %
    of the data); it adapts to the scale of V (Example 2 has V ~ 1e-8).

    Examples
    --------
    >>> V = np.linspace(0.0, 1.0, 1001) ** 2
    >>> round(choose_tau(V, quantile=0.5), 6)
    0.25
    """
    V = np.asarray(V, dtype=float).ravel()
    V = V[np.isfinite(V)]
    if V.size == 0:
        raise DataError("cannot choose tau: no finite values of V_theta on the data")
    if not 0.0 < quantile <= 1.0:
        raise DataError(f"tau quantile must be in (0, 1], got {quantile}")
    vmin = float(V.min())
    q = max(quantile, min(1.0, min_points / V.size))
    tau = float(np.quantile(V, q)) - vmin
    if tau <= 0.0:  # flat V_theta: keep everything
        tau = float(V.max() - vmin) or 1.0
    # strict inequality below: nudge so that the quantile point itself is kept
    return float(np.nextafter(tau, np.inf))


def _balanced_subsample(X: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``m`` points, spreading them evenly over space.

    The points are binned on a grid over their bounding box and each cell keeps at most k
    random points, with the smallest k that gives m points. Trajectory data pile up at the
    attractors (on Example 1 half the points have V < 1e-3); a plain random subsample would
    weight the least-squares fit almost entirely there, which conditions the higher-order
    terms badly.
    """
    n, d = X.shape
    if n <= m:
        return np.arange(n)
    bins = max(2, int(round((m / 4.0) ** (1.0 / d))))
    lo, hi = X.min(axis=0), X.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    idx = np.clip(((X - lo) / width * bins).astype(np.int64), 0, bins - 1)
    cell = np.ravel_multi_index(tuple(idx.T), (bins,) * d)
    perm = rng.permutation(n)
    order = perm[np.argsort(cell[perm], kind="stable")]
    cs = cell[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    # smallest cap k with sum(min(counts, k)) >= m
    lo_k, hi_k = 1, int(counts.max())
    while lo_k < hi_k:
        mid = (lo_k + hi_k) // 2
        if np.minimum(counts, mid).sum() >= m:
            hi_k = mid
        else:
            lo_k = mid + 1
    k = lo_k
    keep = order[rank < k - 1]
    edge = order[rank == k - 1]
    need = m - keep.size
    if need > 0:
        keep = np.concatenate([keep, rng.choice(edge, size=min(need, edge.size), replace=False)])
    return np.sort(keep)


def _pow2(x: float) -> int:
    """Exponent k of the power of two nearest to x (in log scale)."""
    if not (x > 0.0 and math.isfinite(x)):
        return 0
    return int(round(math.log2(x)))


def _monomial_degrees(terms: Sequence[sp.Expr], syms: Sequence[sp.Symbol]) -> list[int] | None:
    """Total degree of each term if every term is a single monomial, else None."""
    degs = []
    sset = set(syms)
    for t in terms:
        if not t.free_symbols <= sset or not t.is_polynomial(*syms):
            return None
        p = sp.Poly(t, *syms)
        if len(p.terms()) != 1:
            return None
        degs.append(int(p.total_degree()))
    return degs


@dataclasses.dataclass
class Prepared:
    """A regression problem in scaled coordinates, plus what is needed to map results back."""

    problem: Any
    library: Any
    library_spec: str
    names: tuple[str, ...]
    s_exp: int  # x~ = x * 2**-s_exp
    c_exp: int  # outputs scaled by 2**c_exp (and by s as described in the module docstring)
    degrees: list[int] | None
    tau: float
    v_min: float
    X: np.ndarray  # regression points, data coordinates
    V_net: np.ndarray
    decomposition: Any
    val_pairs: Any
    n_train_pairs: int
    timings: dict[str, float]
    v_mask: Any = None
    g_mask: Any = None
    h: float | None = None  # time step of the pairs
    Xh: np.ndarray | None = None  # x_h of the regression points, data coordinates
    X_val: np.ndarray | None = None  # held-out points in the sublevel set, and their x_h
    Xh_val: np.ndarray | None = None
    box: np.ndarray | None = None  # (d, 2) bounding box of the training states


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def _as_pairs(pairs: Any) -> Any:
    if isinstance(pairs, (str, os.PathLike)):
        from ..data import load_pairs

        return load_pairs(pairs)
    for attr in ("x0", "xh", "h", "names", "split"):
        if not hasattr(pairs, attr):
            raise DataError(
                f"expected snapshot pairs (symqp.data.Pairs or a .npz path), got {type(pairs).__name__}"
            )
    return pairs


def _as_library(spec: Any, names: tuple[str, ...], what: str) -> tuple[Any, str]:
    from ..library import Library, parse_library

    if spec is None:
        return None, ""
    if isinstance(spec, Library):
        text = getattr(spec, "spec", None) or " + ".join(str(t) for t in spec.terms)
        return spec, str(text)
    if isinstance(spec, str):
        return parse_library(spec, names), spec
    raise LibraryError(f"{what} must be a spec string like 'poly(4)' or a Library, got {type(spec).__name__}")


def _mask(lib: Any, sub: Any) -> np.ndarray | None:
    if sub is None:
        return None
    if hasattr(lib, "mask_of"):
        return np.asarray(lib.mask_of(sub), dtype=bool)
    mask = np.zeros(len(lib), dtype=bool)
    for t in sub.terms:
        mask[lib.index(t)] = True
    return mask


def _evaluate(dec: Any, X: np.ndarray, what: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Evaluate decomposition methods in chunks; non-finite output is a TrainingError."""
    out: dict[str, list[np.ndarray]] = {w: [] for w in what}
    for i in range(0, X.shape[0], _CHUNK):
        Xc = X[i : i + _CHUNK]
        for w in what:
            try:
                val = np.asarray(getattr(dec, w)(Xc), dtype=float)
            except SymqpError:
                raise
            except Exception as exc:  # noqa: BLE001 - torch/numpy internals -> one-line error
                raise TrainingError(f"evaluating the decomposition's {w} failed: {exc}") from exc
            out[w].append(val)
    res = {}
    for w, parts in out.items():
        arr = np.concatenate(parts, axis=0) if parts else np.empty((0,))
        if w == "V":
            arr = arr.reshape(-1)
        elif arr.ndim != 2 or arr.shape != X.shape:
            raise TrainingError(f"decomposition {w}(x) returned shape {arr.shape}, expected {X.shape}")
        if not np.all(np.isfinite(arr)):
            raise TrainingError(f"decomposition {w}(x) has non-finite values on the data")
        res[w] = arr
    return res


def _train_decomposition(
    train: Any,
    *,
    val: Any = None,
    options: Mapping[str, Any] | None,
    seed: int,
    device: str,
    steps: int | None,
    verbose: bool,
) -> Any:
    from ..decompose import NeuralDecomposition

    kw: dict[str, Any] = {"seed": seed, "device": device, "verbose": verbose}
    kw.update(dict(options or {}))
    if steps is not None:
        kw["steps"] = int(steps)
    try:
        dec = NeuralDecomposition(**kw)
    except TypeError as exc:
        raise TrainingError(f"bad decomposition option: {exc}") from None
    try:
        # the held-out trajectories of fit() are the network's validation data too, so the
        # network trains on every training trajectory instead of splitting them again
        return dec.fit(train, X_val=val) if val is not None else dec.fit(train)
    except SymqpError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch errors -> one-line message
        first = first_line(exc)
        raise TrainingError(f"neural decomposition failed: {type(exc).__name__}: {first}") from exc


def prepare(
    pairs: Any,
    *,
    library: Any = "poly(4)",
    v_library: Any = None,
    g_library: Any = None,
    tau: float | None = None,
    decomposition: Any = None,
    decomposition_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    steps: int | None = None,
    val_frac: float = 0.3,
    max_points: int = 20_000,
    verbose: bool = True,
) -> Prepared:
    """Decomposition, sublevel points and the scaled regression problem (first half of :func:`fit`)."""
    from ..backends import Problem

    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    pairs = _as_pairs(pairs)
    names = tuple(str(n) for n in pairs.names)
    if not isinstance(val_frac, (int, float)) or not 0.0 <= float(val_frac) < 1.0:
        raise DataError(f"val_frac must be in [0, 1), got {val_frac!r}")
    if not isinstance(max_points, (int, np.integer)) or max_points < 10:
        raise DataError(f"max_points must be an integer >= 10, got {max_points!r}")
    if tau is not None and not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise DataError(f"tau must be a positive number (offset above min V_theta), got {tau!r}")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise DataError(f"device must be 'cpu' or 'cuda', got {device!r}")

    # library: union of the given libraries, closed under differentiation; masks for V and g
    base, spec = _as_library(library, names, "library")
    lv, spec_v = _as_library(v_library, names, "v_library")
    lg, spec_g = _as_library(g_library, names, "g_library")
    parts = [p for p in (base, lv, lg) if p is not None]
    if not parts:
        raise LibraryError("no library given: pass library=, v_library= or g_library=")
    lib = parts[0]
    for p in parts[1:]:
        lib = lib + p
    if not lib.is_closed():
        lib = lib.closed()
    v_mask, g_mask = _mask(lib, lv), _mask(lib, lg)
    spec_text = "; ".join(
        s for s in (spec, f"V: {spec_v}" if spec_v else "", f"g: {spec_g}" if spec_g else "") if s
    )

    # split by trajectory, decomposition on the training part
    t0 = time.perf_counter()
    if val_frac > 0:
        train, val = pairs.split(frac=1.0 - float(val_frac), seed=seed)
    else:
        train, val = pairs, None
    timings["split"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if decomposition is None:
        _log(verbose, f"training the neural decomposition on {train.n} pairs ...")
        dec = _train_decomposition(
            train, val=val, options=decomposition_options, seed=seed, device=device, steps=steps, verbose=verbose
        )
    else:
        if decomposition_options:
            raise TrainingError("decomposition_options given together with a fitted decomposition")
        for attr in ("V", "grad_V", "g", "f"):
            if not callable(getattr(decomposition, attr, None)):
                raise TrainingError(f"the decomposition has no method {attr}(x)")
        dec = decomposition
    timings["decomposition"] = time.perf_counter() - t0

    # sublevel set and targets
    t0 = time.perf_counter()
    X_all = np.asarray(train.x0, dtype=float)
    V_all = _evaluate(dec, X_all, ("V",))["V"]
    v_min = float(V_all.min())
    tau_used = float(tau) if tau is not None else choose_tau(V_all)
    inside = V_all < v_min + tau_used
    if inside.sum() < max(10, len(lib) + 1):
        raise DataError(
            f"only {int(inside.sum())} points below V_theta < min + {tau_used:.4g}; "
            f"need more than {len(lib)} (the library size): raise tau"
        )
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(inside)
    idx = idx[_balanced_subsample(X_all[idx], int(max_points), rng)]
    X = X_all[idx]
    Xh = np.asarray(train.xh, dtype=float)[idx]
    T = _evaluate(dec, X, ("V", "g", "f"))
    X_val = V_val = f_val = g_val = Xh_val = None
    if val is not None and val.n > 0:
        Xv_all = np.asarray(val.x0, dtype=float)
        Vv_all = _evaluate(dec, Xv_all, ("V",))["V"]
        jv = np.flatnonzero(Vv_all < v_min + tau_used)
        if jv.size >= 10:
            jv = jv[_balanced_subsample(Xv_all[jv], max(10, int(max_points) // 2), rng)]
            X_val = Xv_all[jv]
            Xh_val = np.asarray(val.xh, dtype=float)[jv]
            Tv = _evaluate(dec, X_val, ("V", "g", "f"))
            V_val, f_val, g_val = Tv["V"], Tv["f"], Tv["g"]

    # scaling (powers of two; see the module docstring)
    syms = tuple(lib.variables)
    degrees = _monomial_degrees(lib.terms, syms)
    s_exp = _pow2(float(np.sqrt(np.max(np.mean(X**2, axis=0))))) if degrees is not None else 0
    f_rms = float(np.sqrt(np.mean(np.sum(T["f"] ** 2, axis=1))))
    c_exp = _pow2(2.0**s_exp / f_rms) if f_rms > 0 else 0

    def sc(x: np.ndarray | None, k: int) -> np.ndarray | None:
        return None if x is None else np.ldexp(x, k)

    problem = Problem(
        X=sc(X, -s_exp),
        f=sc(T["f"], c_exp - s_exp),
        V=sc(T["V"], c_exp - 2 * s_exp),
        g=sc(T["g"], c_exp - s_exp),
        library=lib,
        v_mask=v_mask,
        g_mask=g_mask,
        X_val=sc(X_val, -s_exp),
        f_val=sc(f_val, c_exp - s_exp),
        V_val=sc(V_val, c_exp - 2 * s_exp),
        g_val=sc(g_val, c_exp - s_exp),
    )
    timings["targets"] = time.perf_counter() - t0
    _log(
        verbose,
        f"regression on {X.shape[0]} points with V_theta < min + {tau_used:.4g} "
        f"({100.0 * inside.mean():.1f}% of the training data), {len(lib)} library terms",
    )
    timings["prepare"] = time.perf_counter() - t_all
    return Prepared(
        problem=problem,
        library=lib,
        library_spec=spec_text,
        names=names,
        s_exp=s_exp,
        c_exp=c_exp,
        degrees=degrees,
        tau=tau_used,
        v_min=v_min,
        X=X,
        V_net=T["V"],
        decomposition=dec,
        val_pairs=val,
        n_train_pairs=int(train.n),
        timings=timings,
        v_mask=v_mask,
        g_mask=g_mask,
        h=float(train.h),
        Xh=Xh,
        X_val=X_val,
        Xh_val=Xh_val,
        box=np.column_stack([X_all.min(axis=0), X_all.max(axis=0)]),
    )


def _unscale(prep: Prepared, expr: sp.Expr, out_exp: int) -> sp.Expr:
    """Map an expression of the scaled problem back to data coordinates (exact)."""
    plain = {s: sp.Symbol(n) for s, n in zip(prep.library.variables, prep.names)}
    e = sp.sympify(expr).xreplace(plain)
    if prep.s_exp:
        two_s = sp.Integer(2) ** prep.s_exp
        e = e.xreplace({sp.Symbol(n): sp.Symbol(n) / two_s for n in prep.names})
    k = out_exp
    return sp.expand(e * sp.Integer(2) ** k) if k else sp.expand(e)


def _map_fit(prep: Prepared, fit_: Any) -> Any:
    """The backend's Fit with every expression (and the coefficients) in data coordinates."""
    kv = 2 * prep.s_exp - prep.c_exp  # V = 2**kv * V~(x / s)
    kg = prep.s_exp - prep.c_exp  # g = 2**kg * g~(x / s)
    V = _unscale(prep, fit_.V, kv)
    g = tuple(_unscale(prep, e, kg) for e in fit_.g)
    syms = tuple(sp.Symbol(n) for n in prep.names)
    grad_V = tuple(sp.expand(sp.diff(V, s)) for s in syms)
    f = tuple(sp.expand(-a + b) for a, b in zip(grad_V, g))
    front = []
    for c in getattr(fit_, "front", None) or []:
        front.append(
            dataclasses.replace(c, V=_unscale(prep, c.V, kv), g=tuple(_unscale(prep, e, kg) for e in c.g))
        )
    coef = getattr(fit_, "coef", None)
    if coef is not None:
        coef = np.array(coef, dtype=float, copy=True)
        d = len(prep.names)
        deg = np.asarray(prep.degrees if prep.degrees is not None else [0] * coef.shape[0])
        if coef.shape == (deg.size, 2 * d + 1):
            coef[:, :d] = np.ldexp(coef[:, :d], (kg - prep.s_exp * deg)[:, None])
            coef[:, d] = np.ldexp(coef[:, d], kv - prep.s_exp * deg)
            coef[:, d + 1 :] = np.ldexp(coef[:, d + 1 :], (kg - prep.s_exp * deg)[:, None])
    diagnostics = dict(getattr(fit_, "diagnostics", {}) or {})
    diagnostics["scaling"] = {"x_scale_log2": prep.s_exp, "out_scale_log2": prep.c_exp}
    return dataclasses.replace(fit_, V=V, grad_V=grad_V, g=g, f=f, front=front, coef=coef, diagnostics=diagnostics)


def _min_over_region(U: sp.Expr, syms: tuple[sp.Symbol, ...], X: np.ndarray) -> float:
    """Minimum of U over the data region: best data point, refined by a bounded local search."""
    from scipy.optimize import minimize

    fU = sp.lambdify(syms, U, "numpy")
    grad = [sp.lambdify(syms, sp.diff(U, s), "numpy") for s in syms]
    with np.errstate(all="ignore"):
        u = np.broadcast_to(np.asarray(fU(*X.T), dtype=float), (X.shape[0],))
    if not np.any(np.isfinite(u)):
        raise BackendError("the symbolic U is not finite anywhere on the data")
    i0 = int(np.nanargmin(np.where(np.isfinite(u), u, np.nan)))
    best = float(u[i0])
    lo, hi = X.min(axis=0), X.max(axis=0)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        val = float(fU(*x))
        jac = np.array([float(gk(*x)) for gk in grad])
        return val, jac

    with np.errstate(all="ignore"):
        try:
            res = minimize(fun, X[i0], jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)))
            if np.isfinite(res.fun) and res.fun < best:
                best = float(res.fun)
        except (ValueError, ArithmeticError):
            pass
    return best


def _rk2(F: Any, x0: np.ndarray, h: float) -> np.ndarray:
    """Midpoint RK2 step, as in the training loss."""
    return x0 + h * F(x0 + 0.5 * h * F(x0))


def assemble(prep: Prepared, fit_: Any, *, backend_name: str, timings: Mapping[str, float] | None = None) -> Result:
    """Result in data coordinates from a backend Fit of a :class:`Prepared` problem (second half of :func:`fit`)."""
    t0 = time.perf_counter()
    mapped = _map_fit(prep, fit_)
    syms = tuple(sp.Symbol(n) for n in prep.names)
    U0 = sp.expand(2 * mapped.V)
    shift = _min_over_region(U0, syms, prep.X)
    U = sp.expand(U0 - sp.Float(shift)) if shift != 0.0 else U0
    # the constant only fixes min U = 0; a remainder at the minimiser's resolution (relative
    # to the largest coefficient) carries no information and would read as a spurious term
    const = U.as_coeff_Add()[0]
    floats = [abs(float(c)) for c in sp.Poly(U, *syms).coeffs()] if U.is_polynomial(*syms) else []
    if const != 0 and floats and abs(float(const)) < 1e-9 * max(floats):
        U = sp.expand(U - const)
    res = Result.from_expressions(
        prep.names,
        sp.expand(U / 2),
        g=mapped.g,
        backend=backend_name,
        library=prep.library_spec,
        fit=mapped,
        decomposition=prep.decomposition,
        model="orthogonal",
        tau=prep.tau,
    )
    res.U = U
    t_asm = time.perf_counter() - t0

    # metrics
    t0 = time.perf_counter()
    metrics: dict[str, Any] = {"tau": prep.tau, "v_theta_min": prep.v_min, "n_points": int(prep.X.shape[0])}
    metrics["n_train_pairs"] = prep.n_train_pairs
    if prep.box is not None:
        metrics["box"] = [[float(lo), float(hi)] for lo, hi in prep.box]
    with np.errstate(all="ignore"):
        gv = res.grad_V_numpy(prep.X)
        gg = res.g_numpy(prep.X)
        nv, ng = np.linalg.norm(gv, axis=1), np.linalg.norm(gg, axis=1)
        ok = (nv > 0) & (ng > 0)
        cos = np.abs(np.sum(gv * gg, axis=1)[ok]) / (nv[ok] * ng[ok])
        metrics["orthogonality"] = float(cos.mean()) if cos.size else 0.0
        diff = res.U_numpy(prep.X) - 2.0 * prep.V_net
        diff = diff - diff.mean()
        rmse = float(np.sqrt(np.mean(diff**2)))
        spread = float(np.std(2.0 * prep.V_net))
        metrics["u_rmse_vs_network"] = rmse
        metrics["u_rel_err_vs_network"] = rmse / spread if spread > 0 else rmse
    val = prep.val_pairs
    if val is not None and val.n > 0:
        rng = np.random.default_rng(0)
        j = np.arange(val.n) if val.n <= _CHUNK else np.sort(rng.choice(val.n, _CHUNK, replace=False))
        x0, xh, h = np.asarray(val.x0)[j], np.asarray(val.xh)[j], float(val.h)
        ref = float(np.mean(np.sum((xh - x0) ** 2, axis=1))) / h**2
        with np.errstate(all="ignore"):
            err = np.mean(np.sum((_rk2(res.f_numpy, x0, h) - xh) ** 2, axis=1)) / h**2
        metrics["val_one_step_mse"] = float(err)
        metrics["val_one_step_rel"] = float(err / ref) if ref > 0 else float(err)
        dec = prep.decomposition

        def f_net(x: np.ndarray) -> np.ndarray:
            return _evaluate(dec, x, ("f",))["f"]

        try:
            errn = np.mean(np.sum((_rk2(f_net, x0, h) - xh) ** 2, axis=1)) / h**2
            metrics["val_one_step_rel_network"] = float(errn / ref) if ref > 0 else float(errn)
        except TrainingError:
            pass  # the network is evaluated outside the data region; the figure is optional
        metrics["n_val_pairs"] = int(j.size)
    metrics["u_shift"] = float(shift)
    res.metrics = metrics
    tm = dict(prep.timings)
    tm.update(timings or {})
    tm["assemble"] = t_asm
    tm["metrics"] = time.perf_counter() - t0
    res.timings = tm
    return res


def _get_backend(backend: Any, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    from ..backends import get_backend

    if isinstance(backend, str):
        return get_backend(backend, **dict(options or {})), backend
    if callable(getattr(backend, "fit", None)):
        if options:
            raise BackendError("backend_options given together with a backend instance")
        return backend, str(getattr(backend, "name", type(backend).__name__.lower()))
    raise BackendError(f"backend must be a name like 'sr3' or a Backend, got {type(backend).__name__}")


def refine_prepared(prep: Prepared, fit_: Any, *, seed: int = 0, **options: Any) -> Any:
    """Refine a backend Fit of ``prep.problem`` on the pairs (in the scaled coordinates).

    The scaled problem has x~ = x 2**-s and f~ = f 2**(c - s), i.e. time t~ = t 2**-c, so the
    pairs map exactly to (x0 2**-s, xh 2**-s) with step h 2**-c. Returns the refined Fit (or
    ``fit_`` unchanged when the pairs are not available or no candidate is in the span).
    """
    from ._refine import refine_fit

    if prep.Xh is None or prep.h is None:
        return fit_
    s, c = prep.s_exp, prep.c_exp

    def sc(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else np.ldexp(x, -s)

    new, _ = refine_fit(
        fit_,
        prep.library,
        X0=sc(prep.X),
        XH=sc(prep.Xh),
        h=math.ldexp(prep.h, -c),
        X0_val=sc(prep.X_val),
        XH_val=sc(prep.Xh_val),
        V_target=prep.problem.V,
        seed=seed,
        **options,
    )
    return new


def run_backend(be: Any, problem: Any) -> Any:
    """Run a backend, turning third-party exceptions into a one-line BackendError."""
    try:
        return be.fit(problem)
    except SymqpError:
        raise
    except Exception as exc:  # noqa: BLE001 - solver internals -> one-line message
        first = first_line(exc)
        raise BackendError(f"regression backend failed: {type(exc).__name__}: {first}") from exc


def fit(
    pairs: Any,
    *,
    library: Any = "poly(4)",
    v_library: Any = None,
    g_library: Any = None,
    backend: Any = "sr3",
    backend_options: Mapping[str, Any] | None = None,
    tau: float | None = None,
    decomposition: Any = None,
    decomposition_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    steps: int | None = None,
    val_frac: float = 0.3,
    max_points: int = 20_000,
    refine: bool = True,
    verbose: bool = True,
) -> Result:
    """Trajectory snapshot pairs to an exact symbolic quasipotential.

    Parameters
    ----------
    pairs
        :class:`symqp.data.Pairs` or the path of an ``.npz`` file (``x0``, ``xh``, ``h``).
    library
        Library for the regression: a spec string (``"poly(4)"``, ``"poly(2), sin(x)"``) or a
        :class:`symqp.library.Library`. The union with ``v_library`` and ``g_library`` is used,
        closed under differentiation.
    v_library, g_library
        Hypothesis spaces of V and of g (subsets of the union library); ``None``: all terms.
    backend
        Regression backend name (``"sr3"``, ``"stlsq"``, ``"operon"``, ``"pysr"``) or instance.
    backend_options
        Keyword arguments for the named backend.
    tau
        Sublevel threshold, an offset above min V_theta: the regression uses the training
        points with V_theta < min V_theta + tau. ``None``: :func:`choose_tau`.
    decomposition
        A fitted decomposition (methods ``V``, ``grad_V``, ``g``, ``f`` on (n, d) arrays);
        ``None`` trains a :class:`symqp.decompose.NeuralDecomposition` on the training split.
    decomposition_options
        Keyword arguments of :class:`~symqp.decompose.NeuralDecomposition`.
    seed, device, steps
        Passed to the decomposition (``steps=None``: its default); ``seed`` also drives the
        split and the subsampling.
    val_frac
        Fraction of trajectories held out for validation (selection and metrics).
    max_points
        Bound on the number of regression points (balanced spatial subsample).
    refine
        Re-estimate the coefficients of every candidate on the backend's Pareto front from
        the pairs themselves (one-step RK4 error + orthogonality, on the candidate's support)
        and choose the simplest candidate within 10 % of the best held-out one-step error
        (see :func:`refine_prepared`). The network then only has to find the support.
    verbose
        Print progress to stderr.

    Returns
    -------
    Result
        U = 2V (min over the data region 0), grad V, g, f; metrics ``tau``,
        ``val_one_step_rel`` (RK2 one-step error of f on held-out pairs relative to the mean
        squared finite-difference velocity), ``orthogonality`` (mean |grad V . g| / (|grad V||g|)
        on the regression points), ``u_rel_err_vs_network`` (RMS of U - 2 V_theta, constant
        removed, over the spread of 2 V_theta), ...

    Examples
    --------
    A decomposition known exactly (V = (x**2 + y**2)/2, g = (-y, x)) stands in for the network:

    >>> import numpy as np, symqp
    >>> class Exact:
    ...     def V(self, X): return 0.5 * (X ** 2).sum(1)
    ...     def grad_V(self, X): return X.copy()
    ...     def g(self, X): return np.c_[-X[:, 1], X[:, 0]]
    ...     def f(self, X): return self.g(X) - self.grad_V(X)
    >>> rng = np.random.default_rng(0)
    >>> x0 = rng.uniform(-1, 1, (400, 2))
    >>> pairs = symqp.data.Pairs(x0=x0, xh=x0, h=0.01, names=("x", "y"), traj=np.arange(400) % 40)
    >>> r = symqp.fit(pairs, library="poly(2)", decomposition=Exact(), verbose=False)
    >>> r.U  # doctest: +SKIP
    1.0*x**2 + 1.0*y**2
    """
    t0 = time.perf_counter()
    be, name = _get_backend(backend, backend_options)
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
    t1 = time.perf_counter()
    fit_ = run_backend(be, prep.problem)
    t_reg = time.perf_counter() - t1
    timings = {"regression": t_reg}
    if refine:
        t1 = time.perf_counter()
        fit_ = refine_prepared(prep, fit_, seed=seed)
        timings["refine"] = time.perf_counter() - t1
        _log(verbose, f"refined the candidate models on the pairs in {timings['refine']:.1f} s")
    res = assemble(prep, fit_, backend_name=str(getattr(fit_, "backend", "") or name), timings=timings)
    res.timings["total"] = time.perf_counter() - t0
    return res
