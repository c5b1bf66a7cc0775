"""Invariant density p_eps = exp(-U/eps) / Z_eps: the normalisation Z_eps and a check of it.

Conventions: the noisy dynamics is ``dx = f dt + sqrt(eps) dW`` and U = 2V is the
Freidlin-Wentzell quasipotential, so for small eps the invariant density is close to
``exp(-U/eps) / Z_eps``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from scipy import integrate, special, stats

from .._errors import AnalysisError, first_line
from .._estimator import check_seed
from .._numeric import euler_maruyama_step, numpy_function, python_function
from ._common import as_model, check_box, check_eps, numpy_field

__all__ = [
    "PartitionFunction",
    "euler_maruyama",
    "invariant_density",
    "partition_function",
    "separate",
]

_LOG_TINY = 745.0  # exp(-745) underflows to 0 in float64


@dataclass(frozen=True)
class PartitionFunction:
    """Z_eps with its absolute error estimate and how it was computed.

    ``method`` is ``"exact"`` (closed forms only: Gaussian and Bessel factors),
    ``"separable"`` (product of one-dimensional factors, some by :func:`scipy.integrate.quad`),
    ``"nquad"`` (adaptive cubature over the box) or ``"qmc"`` (Laplace-guided randomised
    quasi-Monte Carlo over the box).
    """

    eps: float
    value: float
    error: float
    method: str
    log_value: float

    def __float__(self) -> float:
        return self.value


def separate(U: sp.Expr, variables: Sequence[sp.Symbol]) -> tuple[sp.Expr, dict] | None:
    """Split ``U = c + sum_i u_i(x_i)``; return ``(c, {x_i: u_i})`` or None if U couples variables.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> separate(x**4 - 2*x**2 + y**2 + 1, [x, y])
    (1, {x: x**4 - 2*x**2, y: y**2})
    >>> separate(x*y, [x, y]) is None
    True
    """
    parts = {v: sp.Integer(0) for v in variables}
    const = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(U)):
        fs = term.free_symbols & set(variables)
        if not fs:
            const += term
        elif len(fs) == 1:
            parts[next(iter(fs))] += term
        else:
            return None
    return const, parts


def _log_factor_closed(u: sp.Expr, x: sp.Symbol, eps: float) -> tuple[float, float] | None:
    """``(min u, log int_R exp(-(u - min u)/eps) dx)`` in closed form (quadratic or even
    quartic), else None. The two parts are kept apart so that ``-min U/eps``, which may be
    huge for tiny eps, is formed once from the exact minimum (log space)."""
    if not u.is_polynomial(x):
        return None
    p = sp.Poly(u, x)
    deg = p.degree()
    c = [float(p.coeff_monomial(x**k)) for k in range(deg + 1)]
    if deg == 2 and c[2] > 0:
        a, b, c0 = c[2], c[1], c[0]
        return c0 - b * b / (4 * a), 0.5 * np.log(np.pi * eps / a)
    if deg == 4 and c[4] > 0 and c[3] == 0 and c[1] == 0 and c[2] != 0:
        # App. C eq. C.2: u = a x^4 - b x^2 + c0
        a, b, c0 = c[4], -c[2], c[0]
        k = b * b / (8 * a * eps)
        # SciPy's scaled Bessel functions return NaN beyond k ~ 1e12; there the first two
        # terms of their large-k expansion (relative error ~ 1/k^2 < 1e-24) are exact in doubles
        large = k > 1e8
        if b > 0:
            # int = sqrt(b/(8a)) pi e^k [I_{1/4}(k) + I_{-1/4}(k)];  ive(v, k) = I_v(k) e^{-k}
            if large:
                log_s = np.log(2.0) - 0.5 * np.log(2 * np.pi * k) + np.log1p(0.75 / (8 * k))
            else:
                log_s = np.log(special.ive(0.25, k) + special.ive(-0.25, k))
            # e^(2k) exp(-c0/eps) = exp(-min u/eps), min u = c0 - b^2/(4a)
            return c0 - b * b / (4 * a), 0.5 * np.log(b / (8 * a)) + np.log(np.pi) + log_s
        # b < 0: int exp(-(a x^4 + |b| x^2)/eps) = sqrt(|b|/(4a)) e^k K_{1/4}(k)
        log_k = 0.5 * np.log(np.pi / (2 * k)) + np.log1p(-0.75 / (8 * k)) if large else np.log(special.kve(0.25, k))
        return c0, 0.5 * np.log(-b / (4 * a)) + log_k
    return None


def _finite_interval(uf, eps: float, center: float, umin: float, span: float) -> tuple[float, float]:
    """Expand from ``center`` until exp(-(u - umin)/eps) underflows on both sides."""
    out = []
    for sgn in (-1.0, 1.0):
        step = max(span, 1e-12)
        xs = center
        for _ in range(200):
            xs = xs + sgn * step
            val = float(uf(np.array([[xs]]))[0])
            if np.isfinite(val) and (val - umin) / eps > _LOG_TINY:
                break
            step *= 1.5
        else:
            raise AnalysisError(
                "U does not grow at infinity along a coordinate; Z_eps over the whole space "
                "diverges (give a box)"
            )
        out.append(xs)
    return out[0], out[1]


def _check_values(vals: np.ndarray, points: np.ndarray, names: str) -> None:
    """Refuse an integrand over points where U is undefined (NaN) or unbounded below.

    QUADPACK, handed a NaN, may loop or crash the process; every integral checks first.
    """
    bad = np.isnan(vals) | (vals == -np.inf)
    if bad.any():
        where = np.atleast_1d(points[int(np.argmax(bad))])
        at = ", ".join(f"{n} = {v:.4g}" for n, v in zip(names.split(","), where))
        what = "is not defined (NaN)" if np.isnan(vals[bad][0]) else "is -inf (Z_eps diverges)"
        raise AnalysisError(
            f"U {what} at {at}, inside the integration region; restrict the box to U's domain"
        )


def _guarded(fn, names: str):
    """``exp(-(U - umin)/eps)`` integrand that returns 0 instead of NaN/inf and records it."""
    bad: list = []

    def g(*t):
        v = fn(*t)
        if not np.isfinite(v):
            if not bad:
                bad.append(t)
            return 0.0
        return v

    def check() -> None:
        if bad:
            _check_values(np.array([np.nan]), np.array([bad[0]]), names)

    return g, check


@contextlib.contextmanager
def _quadrature(where: str) -> Iterator[None]:
    """SciPy's "did not converge" warning as an AnalysisError (the value would be wrong)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        try:
            yield
        except integrate.IntegrationWarning as exc:
            raise AnalysisError(
                f"the integral of exp(-U/eps) {where} did not converge ({first_line(exc)}); "
                "is U singular or unbounded below in the box?"
            ) from None


def _log_factor_quad(u: sp.Expr, x: sp.Symbol, eps: float, lim: tuple[float, float] | None,
                     span: float) -> tuple[float, float, float]:
    """``(min u, log int exp(-(u - min u)/eps), relative error)`` by adaptive quadrature."""
    uf = numpy_function(u, [x])
    lo_g, hi_g = (lim if lim is not None else (-10 * span, 10 * span))
    grid = np.linspace(lo_g, hi_g, 4001)
    with np.errstate(all="ignore"):
        vals = uf(grid[:, None])
    if not np.any(np.isfinite(vals)):
        raise AnalysisError(f"U is not finite anywhere on the search interval of {x}")
    i = int(np.nanargmin(vals))
    umin, xmin = float(vals[i]), float(grid[i])
    if lim is None:
        lo, hi = _finite_interval(uf, eps, xmin, umin, span)
    else:
        lo, hi = lim
    check_grid = np.linspace(lo, hi, 4001)
    with np.errstate(all="ignore"):
        _check_values(uf(check_grid[:, None]), check_grid, str(x))
    # local minima of the sampled u as break points so quad sees every narrow peak
    inner = (vals[1:-1] <= vals[:-2]) & (vals[1:-1] <= vals[2:])
    pts = [float(p) for p in grid[1:-1][inner] if lo < p < hi][:50]

    def integrand(t):
        with np.errstate(all="ignore"):
            return np.exp(-(float(uf(np.array([[t]]))[0]) - umin) / eps)

    g, check = _guarded(integrand, str(x))
    with _quadrature(f"along {x}"):
        val, err = integrate.quad(g, lo, hi, points=pts or None, limit=500, epsabs=0.0, epsrel=1e-11)
    check()
    if not val > 0:
        raise AnalysisError(f"the integral of exp(-U/eps) along {x} vanished numerically")
    return umin, np.log(val), err / val


def _laplace_qmc(model, eps: float, box: np.ndarray, m: int, reps: int, seed: int):
    from ._stationary import stationary_points

    U = model.U
    syms = model.variables
    Uf = numpy_function(U, syms)
    grad = [-sp.diff(U, v) for v in syms]
    comps = []
    try:
        pts = stationary_points(U, grad, syms, box=box, n_starts=128, seed=seed)
        H = numpy_function(sp.hessian(U, syms), syms)
        for p in pts:
            if p.hessian_kind == "min":
                h = H(p.x)
                comps.append((p.x, np.linalg.inv(h) * eps * 2.0, p.U))
    except AnalysisError:
        pass
    d = model.d
    lo, hi = box[:, 0], box[:, 1]
    vol = float(np.prod(hi - lo))
    umin_grid = min([c[2] for c in comps], default=None)
    # mixture weights ~ Laplace mass of each minimum; 10 % defensive uniform component
    if comps:
        logw = np.array([-(c[2] - umin_grid) / eps + 0.5 * np.linalg.slogdet(c[1])[1] for c in comps])
        w = np.exp(logw - logw.max())
        w = 0.9 * w / w.sum()
        weights = np.concatenate([w, [0.1]])
    else:
        weights = np.array([1.0])
    n = 2**m
    counts = np.maximum(1, np.round(weights * n).astype(int))
    alpha = counts / counts.sum()
    rng = np.random.default_rng(check_seed("", "seed", seed))
    ests = []
    shift = None
    for _ in range(reps):
        Xs = []
        for j, cnt in enumerate(counts):
            mm = int(np.ceil(np.log2(cnt))) if cnt > 1 else 0
            uq = stats.qmc.Sobol(d, scramble=True, seed=rng).random_base2(mm)[:cnt]
            if j < len(comps):
                L = np.linalg.cholesky(comps[j][1])
                z = stats.norm.ppf(np.clip(uq, 1e-12, 1 - 1e-12))
                Xs.append(comps[j][0] + z @ L.T)
            else:
                Xs.append(lo + uq * (hi - lo))
        X = np.concatenate(Xs)
        q = np.zeros(len(X))
        for j, (mu, cov, _) in enumerate(comps):
            q += alpha[j] * stats.multivariate_normal(mu, cov).pdf(X)
        q += alpha[-1] / vol if comps else 1.0 / vol
        inside = np.all((X >= lo) & (X <= hi), axis=1)
        with np.errstate(all="ignore"):
            u = Uf(X)
        _check_values(np.where(inside, u, 0.0), X, ",".join(model.names))
        if shift is None:
            shift = float(np.nanmin(u[inside])) if umin_grid is None else umin_grid
        val = np.where(inside, np.exp(-(u - shift) / eps), 0.0) / q
        ests.append(float(np.mean(val)))
    ests = np.array(ests)
    mean = float(ests.mean())
    err = float(ests.std(ddof=1) / np.sqrt(reps)) if reps > 1 else float("nan")
    return np.log(mean) - shift / eps, err / mean


def partition_function(
    obj: Any,
    variables: Sequence[Any] | None = None,
    *,
    eps: float,
    box: Any = None,
    method: str = "auto",
    qmc_points: int = 2**14,
    qmc_reps: int = 8,
    seed: int = 0,
) -> PartitionFunction:
    """Normalisation ``Z_eps = int exp(-U/eps) dx`` of the invariant density.

    If U separates additively, ``U = c + sum_i u_i(x_i)`` (detected symbolically), Z is the
    product of one-dimensional integrals: Gaussian closed form for quadratics, the Bessel
    closed form of App. C eq. C.2 for ``a x^4 - b x^2 + c`` (``K_{1/4}`` when ``b < 0``),
    otherwise :func:`scipy.integrate.quad`. Over the whole space when ``box`` is None.
    A U that couples variables needs a box: adaptive cubature (:func:`scipy.integrate.nquad`)
    for d <= 2, Laplace-guided randomised Sobol quasi-Monte Carlo (importance sampling with
    Gaussians ``N(m, 2 eps H(m)^-1)`` at the minima of U plus a uniform component) for d >= 3
    or ``method="qmc"``; its error is the spread of ``qmc_reps`` scrambled replicates.

    Parameters
    ----------
    obj
        A result (uses its U and variables) or U as a SymPy expression.
    variables
        Variables when ``obj`` is an expression.
    eps
        Noise strength, > 0.
    box
        ``(d, 2)`` integration region; None = the whole space (separable U only).
    method
        ``"auto"``, ``"separable"``, ``"nquad"`` or ``"qmc"``.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y, z = sp.symbols("x y z")
    >>> Z = partition_function(x**4 - 2*x**2 + y**2 + z**2 + 1, [x, y, z], eps=0.1)
    >>> round(Z.value, 6), Z.method
    (0.179867, 'exact')
    """
    (e,) = check_eps(eps)
    model = as_model(obj, None, variables, need_U=True)
    if method not in ("auto", "separable", "nquad", "qmc"):
        raise AnalysisError(f"unknown method {method!r} (choose auto, separable, nquad, qmc)")
    syms = model.variables
    bx = None if box is None else check_box(box, model.d)
    sep = separate(model.U, syms) if method in ("auto", "separable") else None
    if method == "separable" and sep is None:
        raise AnalysisError("U does not separate into one-variable parts; use nquad or qmc")
    if sep is not None:
        const, parts = sep
        umin, logz = float(const), 0.0
        rel = 0.0
        all_exact = True
        for i, v in enumerate(syms):
            u = parts[v]
            if u == 0:
                if bx is None:
                    raise AnalysisError(f"U does not depend on {v}: Z over the whole space diverges")
                logz += np.log(bx[i, 1] - bx[i, 0])
                continue
            closed = _log_factor_closed(u, v, e) if bx is None else None
            if closed is None:
                all_exact = False
                span = 1.0 if bx is None else float(bx[i, 1] - bx[i, 0])
                lim = None if bx is None else (float(bx[i, 0]), float(bx[i, 1]))
                m, lf, r = _log_factor_quad(u, v, e, lim, span)
                rel += r
            else:
                m, lf = closed
            umin += m
            logz += lf
        return _partition(e, logz - umin / e, rel, "exact" if all_exact else "separable")
    if bx is None:
        raise AnalysisError("U couples the variables: give a box to integrate Z_eps over")
    if method == "nquad" or (method == "auto" and model.d <= 2):
        Uf = python_function(model.U, syms)
        grid = np.stack(np.meshgrid(*[np.linspace(lo, hi, 41) for lo, hi in bx], indexing="ij"), -1)
        pts = grid.reshape(-1, model.d)
        uvals = numpy_function(model.U, syms)(pts)
        _check_values(uvals, pts, ",".join(model.names))
        umin = float(np.min(uvals))

        def integrand(*a):
            with np.errstate(all="ignore"):
                return np.exp(-(Uf(*a) - umin) / e)

        g, check = _guarded(integrand, ",".join(model.names))
        with _quadrature("over the box"):
            val, err = integrate.nquad(g, [tuple(r) for r in bx], opts={"limit": 200, "epsrel": 1e-9, "epsabs": 0.0})
        check()
        if not val > 0:
            raise AnalysisError(f"the integral of exp(-U/eps) over the box vanished numerically at eps = {e:g}")
        return _partition(e, np.log(val) - umin / e, err / val, "nquad")
    m = int(np.ceil(np.log2(max(qmc_points, 16))))
    logz, rel = _laplace_qmc(model, e, bx, m, qmc_reps, seed)
    return _partition(e, logz, rel, "qmc")


def _partition(eps: float, logz: float, rel: float, method: str) -> PartitionFunction:
    """Z from its logarithm; refuses a log that is not finite (eps too small for doubles)."""
    if not np.isfinite(logz):
        raise AnalysisError(
            f"Z_eps at eps = {eps:g} cannot be computed in double precision (log Z = {logz}); "
            "use a larger eps"
        )
    with np.errstate(over="ignore", under="ignore"):
        val = float(np.exp(logz))
    err = 0.0 if rel == 0 else val * rel
    return PartitionFunction(eps, val, err, method, float(logz))


def invariant_density(obj: Any, variables: Sequence[Any] | None = None, *, eps: float,
                      box: Any = None, Z: PartitionFunction | None = None):
    """Return ``p(X) -> (n,)``, the density ``exp(-U/eps)/Z_eps`` on (n, d) arrays.

    Examples
    --------
    >>> import sympy as sp, numpy as np
    >>> x = sp.Symbol("x")
    >>> p = invariant_density(x**2, [x], eps=0.5)
    >>> float(np.round(p(np.array([[0.0]]))[0], 6))  # 1/sqrt(pi/2)
    0.797885
    """
    (e,) = check_eps(eps)
    model = as_model(obj, None, variables, need_U=True)
    if Z is None:
        Z = partition_function(obj, variables, eps=e, box=box)
    Uf = numpy_function(model.U, model.variables)
    logz = Z.log_value

    def p(X):
        return np.exp(-Uf(np.asarray(X, float)) / e - logz)

    return p


def euler_maruyama(F, x0: np.ndarray, *, eps: float, dt: float, n_steps: int, seed: int = 0,
                   every: int = 1, burn: int = 0, box: np.ndarray | None = None):
    """Vectorised Euler-Maruyama for ``dx = F(x) dt + sqrt(eps) dW``; returns samples.

    Returns an array (n_saved, n_paths, d) of the states after ``burn`` steps, every
    ``every`` steps. With ``box``, a path leaving the box is reflected back into it.
    """
    rng = np.random.default_rng(check_seed("", "seed", seed))
    X = np.array(x0, float, copy=True)
    out = []
    for k in range(n_steps):
        X = euler_maruyama_step(F, X, dt, eps, rng)
        if box is not None:
            lo, hi = box[:, 0], box[:, 1]
            X = np.where(X < lo, 2 * lo - X, X)
            X = np.where(X > hi, 2 * hi - X, X)
            X = np.clip(X, lo, hi)
        if k >= burn and (k - burn) % every == 0:
            out.append(X.copy())
    return np.array(out)


def marginal_density(model: Any, box: np.ndarray, axis: int, eps: float, n: int, *,
                     n_other: int = 81) -> tuple[np.ndarray, np.ndarray]:
    """The marginal along ``axis`` of ``exp(-U/eps)`` on the box, normalised on ``n`` points.

    A separable U gives its one-variable factor; otherwise the other variables (d <= 3) are
    integrated out by the trapezoid rule on ``n_other`` points each. Returns ``(x, p)``.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> m = as_model(x**2 + x * y + y**2, None, [x, y])
    >>> xs, p = marginal_density(m, np.array([[-4.0, 4.0], [-4.0, 4.0]]), 0, 0.5, 401)
    >>> round(float(integrate.trapezoid(p * xs**2, xs)), 3)  # variance 2 eps / 3
    0.333
    """
    v = model.variables[axis]
    xs = np.linspace(box[axis, 0], box[axis, 1], n)
    sep = separate(model.U, model.variables)
    if sep is not None:
        u = numpy_function(sep[1][v], [v])(xs[:, None])
        w = np.exp(-(u - np.nanmin(u)) / eps)
    else:
        if model.d > 3:
            raise AnalysisError("the marginal density of a non-separable U needs d <= 3")
        axes = [xs if i == axis else np.linspace(box[i, 0], box[i, 1], n_other) for i in range(model.d)]
        G = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
        uu = numpy_function(model.U, model.variables)(G.reshape(-1, model.d)).reshape(G.shape[:-1])
        w = np.exp(-(uu - np.nanmin(uu)) / eps)
        for i in reversed(range(model.d)):
            if i != axis:
                w = integrate.trapezoid(w, axes[i], axis=i)
    total = integrate.trapezoid(w, xs)
    if not total > 0:
        raise AnalysisError(f"the density for eps = {eps} vanishes on the box")
    return xs, w / total

