"""Stationary points of a symbolic vector field, their classification and barrier heights."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
from scipy import integrate

from .._errors import AnalysisError
from .._estimator import check_seed
from .._numeric import numpy_function
from ._common import Model, as_model, check_box, numpy_field

__all__ = ["Barrier", "StationaryPoint", "barriers", "stationary_points", "time_scales"]


@dataclass(frozen=True)
class StationaryPoint:
    """A zero of f, classified by the Jacobian of f and the Hessian of U.

    Attributes
    ----------
    x : ndarray (d,)
        Location.
    kind : str
        ``"stable node"``, ``"stable focus"``, ``"saddle"``, ``"unstable node"``,
        ``"unstable focus"`` or ``"non-hyperbolic"`` (from the eigenvalues of Df).
    index : int
        Number of eigenvalues of Df with positive real part (1 for an ordinary saddle).
    eigenvalues : ndarray (d,) complex
        Eigenvalues of the Jacobian of f.
    hessian_kind : str or None
        ``"min"``, ``"saddle"``, ``"max"`` or ``"degenerate"`` for the Hessian of U
        (None when U is not known).
    U : float or None
        Value of U at the point.
    exact : bool
        Found by exact symbolic solution (True) or numerical root finding (False).
    """

    x: np.ndarray
    kind: str
    index: int
    eigenvalues: np.ndarray
    hessian_kind: str | None
    U: float | None
    exact: bool = False

    @property
    def is_stable(self) -> bool:
        return self.kind.startswith("stable")

    @property
    def is_saddle(self) -> bool:
        return self.kind == "saddle"

    def __repr__(self) -> str:
        xs = ", ".join(f"{v:.6g}" for v in self.x)
        u = "" if self.U is None else f", U={self.U:.6g}"
        return f"StationaryPoint(({xs}), {self.kind!r}, index={self.index}{u})"


@dataclass(frozen=True)
class Barrier:
    """Barrier ``dU = U(saddle) - U(minimum)`` between a minimum and a connecting saddle."""

    minimum: StationaryPoint
    saddle: StationaryPoint
    dU: float
    connects: tuple[int, ...] = field(default=())  # indices of the minima the saddle joins


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise TimeoutError after ``seconds`` (SIGALRM; only in the main thread on POSIX)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        raise TimeoutError("no timer available outside the main thread")

    def handler(signum, frame):  # pragma: no cover - timing dependent
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _exact_roots(model: Model, timeout: float, max_bezout: int) -> list[np.ndarray] | None:
    """Real roots of f by SymPy, for modest polynomial systems; None if not feasible."""
    syms = model.variables
    polys = []
    for c in model.f:
        c = sp.nsimplify(sp.expand(c), rational=True)
        if not c.is_polynomial(*syms):
            return None
        # fitted coefficients (floats with long expansions) make Groebner bases explode and
        # the solve would only run into the time limit: go numerical at once
        if any(r.q > 10**4 for r in c.atoms(sp.Rational)):
            return None
        polys.append(sp.Poly(c, *syms))
    bezout = int(np.prod([max(p.total_degree(), 1) for p in polys]))
    if bezout > max_bezout:
        return None
    try:
        with _time_limit(timeout):
            sols = sp.solve([p.as_expr() for p in polys], syms, dict=True)
    except (TimeoutError, NotImplementedError, sp.PolynomialError):
        return None
    roots = []
    for s in sols:
        if set(s) != set(syms):
            return None  # a continuum of zeros: not isolated
        vals = [complex(sp.N(s[v], 20)) for v in syms]
        if all(abs(v.imag) <= 1e-10 * max(1.0, abs(v.real)) for v in vals):
            roots.append(np.array([v.real for v in vals]))
    return roots


def _numeric_roots(model: Model, box: np.ndarray, n_starts: int, seed: int) -> list[np.ndarray]:
    F = numpy_field(model)
    J = numpy_function(sp.Matrix(model.f).jacobian(model.variables), model.variables)
    rng = np.random.default_rng(check_seed("", "seed", seed))
    from scipy.stats import qmc

    m = max(1, int(np.ceil(np.log2(max(n_starts, 2)))))
    starts = qmc.Sobol(model.d, scramble=True, seed=rng).random_base2(m)
    starts = box[:, 0] + starts * (box[:, 1] - box[:, 0])
    from .._roots import newton_roots

    # all starts together (one scipy.optimize.root per start spent minutes in Python at d = 6)
    return list(newton_roots(F, J, starts))


def _dedup(points: list[np.ndarray], box: np.ndarray, tol: float) -> list[np.ndarray]:
    # relative to the box, but never coarser than the points' own size: in a box of width
    # 1e300 every root would otherwise count as the same point
    scale = box[:, 1] - box[:, 0]
    out: list[np.ndarray] = []
    for p in points:
        s = np.minimum(scale, 1.0 + np.abs(p))
        if any(np.all(np.abs(p - q) <= tol * s) for q in out):
            continue
        out.append(p)
    return out


def _classify(model: Model, x: np.ndarray, Jf, HU, Uf, exact: bool, tol: float) -> StationaryPoint:
    J = Jf(x)
    if not np.all(np.isfinite(J)):
        at = ", ".join(f"{n} = {v:.6g}" for n, v in zip(model.names, x))
        raise AnalysisError(f"the Jacobian of f is not finite at the stationary point {at} (overflow); "
                            "restrict the box")
    eig = np.linalg.eigvals(J)
    scale = max(1.0, float(np.max(np.abs(eig)))) if eig.size else 1.0
    re = eig.real
    small = np.abs(re) <= tol * scale
    n_pos = int(np.sum(re > tol * scale))
    complex_pair = bool(np.any(np.abs(eig.imag) > tol * scale))
    if np.any(small):
        kind = "non-hyperbolic"
    elif n_pos == 0:
        kind = "stable focus" if complex_pair else "stable node"
    elif n_pos == len(eig):
        kind = "unstable focus" if complex_pair else "unstable node"
    else:
        kind = "saddle"
    hkind, uval = None, None
    H = None if HU is None else HU(x)
    if H is not None and not np.all(np.isfinite(H)):
        hkind, uval = "not finite", float(Uf(x))
    elif H is not None:
        h = np.linalg.eigvalsh(0.5 * (H + H.T))
        hs = max(1e-300, float(np.max(np.abs(h))))
        if np.any(np.abs(h) <= tol * hs):
            hkind = "degenerate"
        elif np.all(h > 0):
            hkind = "min"
        elif np.all(h < 0):
            hkind = "max"
        else:
            hkind = "saddle"
        uval = float(Uf(x))
    return StationaryPoint(np.asarray(x, float), kind, n_pos, eig, hkind, uval, exact)


def stationary_points(
    obj: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    box: Any = None,
    exact: bool = True,
    timeout: float = 2.0,
    n_starts: int = 200,
    seed: int = 0,
    tol: float = 1e-8,
) -> list[StationaryPoint]:
    """Find and classify the zeros of f inside a box.

    Polynomial fields of modest degree are solved exactly with :func:`sympy.solve` under a
    time limit (``timeout`` seconds); otherwise, or if that fails, multi-start
    damped Newton from a Sobol design over the box (all starts at once), with deduplication.

    Parameters
    ----------
    obj
        A result/system object (attributes ``variables``, ``U``, ``f`` or ``field``), or U
        as a SymPy expression (or None) with ``f`` and ``variables`` given.
    f, variables
        The vector field and the variables when ``obj`` is an expression.
    box
        ``(d, 2)`` array of bounds; defaults to the object's box (``box`` attribute or
        ``metrics["box"]``).
    exact
        Try the exact symbolic solution first.
    timeout
        Time limit of the symbolic solve, in seconds.
    n_starts
        Number of starting points of the numerical search.
    seed
        Seed of the Sobol design.
    tol
        Relative tolerance for zero eigenvalues (non-hyperbolic / degenerate).

    Returns
    -------
    list of StationaryPoint
        Sorted by U (when known), then lexicographically.

    Raises
    ------
    AnalysisError
        If the box is invalid or contains no stationary point.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> pts = stationary_points(x**4 - 2*x**2 + y**2, [-4*x**3 + 4*x, -2*y], [x, y],
    ...                         box=[[-2, 2], [-2, 2]])
    >>> [(p.kind, p.hessian_kind, round(p.U, 6)) for p in pts]
    [('stable node', 'min', -1.0), ('stable node', 'min', -1.0), ('saddle', 'saddle', 0.0)]
    """
    model = as_model(obj, f, variables, need_f=True)
    if box is None:
        box = model.box
    if box is None:
        raise AnalysisError("no box given and the result carries no data region (metrics['box'])")
    box = check_box(box, model.d)
    pts: list[np.ndarray] | None = None
    is_exact = False
    if exact and model.d <= 4:
        pts = _exact_roots(model, timeout, max_bezout=125)
        is_exact = pts is not None
    if pts is None:
        pts = _numeric_roots(model, box, n_starts, seed)
    inside = [
        p for p in pts if np.all(p >= box[:, 0] - 1e-12) and np.all(p <= box[:, 1] + 1e-12)
    ]
    inside = _dedup(inside, box, 1e-6)
    if not inside:
        raise AnalysisError(
            "the box "
            + " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in box)
            + " contains no stationary point of f"
        )
    Jf = numpy_function(sp.Matrix(model.f).jacobian(model.variables), model.variables)
    HU = Uf = None
    if model.U is not None:
        HU = numpy_function(sp.hessian(model.U, model.variables), model.variables)
        U_at = numpy_function(model.U, model.variables)
        Uf = lambda x: float(U_at(x))
    out = [_classify(model, p, Jf, HU, Uf, is_exact, tol) for p in inside]
    out.sort(key=lambda s: ((s.U if s.U is not None else 0.0), s.index, tuple(s.x)))
    return out


def barriers(
    obj: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    points: list[StationaryPoint] | None = None,
    box: Any = None,
    step: float = 1e-4,
    t_relax: float = 200.0,
) -> list[Barrier]:
    """Barrier heights ``dU = U(saddle) - U(minimum)`` for saddles joining stable points.

    For every index-1 saddle, the flow of f is followed downhill from ``saddle ± step·v``
    (v the unstable eigenvector of Df, scaled by the box size) until it reaches a stable
    point; each stable point reached gets a :class:`Barrier` with that saddle. The flow is
    integrated with :func:`scipy.integrate.solve_ivp` (LSODA, adaptive, so slow systems
    cost no more than fast ones) for at most ``t_relax`` slowest relaxation times
    ``1 / min |Re lambda|`` of the stable points, stopping at a ball around a stable point.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> bs = barriers(x**4 - 2*x**2 + y**2, [-4*x**3 + 4*x, -2*y], [x, y],
    ...               box=[[-2, 2], [-2, 2]])
    >>> sorted((float(round(b.minimum.x[0], 6)), b.dU) for b in bs)
    [(-1.0, 1.0), (1.0, 1.0)]
    """
    model = as_model(obj, f, variables, need_U=True, need_f=True)
    if points is None:
        points = stationary_points(model, box=box)
    if box is None:
        box = model.box
    scale = 1.0 if box is None else float(np.max(np.asarray(box, float)[:, 1] - np.asarray(box, float)[:, 0]))
    # in a huge box, steps and target balls follow the spread of the points, not the box
    xs = np.array([p.x for p in points]) if points else np.zeros((1, model.d))
    spread = float(np.max(np.abs(xs[:, None, :] - xs[None, :, :]))) if len(xs) > 1 else 0.0
    scale = min(scale, 100.0 * (1.0 + spread + float(np.max(np.abs(xs)))))
    F = numpy_field(model)
    Jf = numpy_function(sp.Matrix(model.f).jacobian(model.variables), model.variables)
    stable = [i for i, p in enumerate(points) if p.is_stable]
    out: list[Barrier] = []
    if not stable:
        return out
    targets = np.array([points[i].x for i in stable])
    radius = 1e-3 * scale

    rates = [float(np.min(np.abs(points[i].eigenvalues.real))) for i in stable]
    t_max = t_relax / max(min(rates), 1e-300)

    def event(t, X):
        return float(np.min(np.linalg.norm(targets - X, axis=1))) - radius

    event.terminal = True
    for s in points:
        if not (s.is_saddle and s.index == 1):
            continue
        w, v = np.linalg.eig(Jf(s.x))
        k = int(np.argmax(w.real))
        u = np.real(v[:, k])
        u = u / np.linalg.norm(u)
        hit = []
        for sign in (1.0, -1.0):
            x0 = s.x + sign * step * scale * u
            with np.errstate(all="ignore"):
                sol = integrate.solve_ivp(lambda t, X: F(X[None])[0], (0.0, t_max), x0,
                                          method="LSODA", events=event, rtol=1e-8,
                                          atol=1e-10 * scale)
            e = sol.y[:, -1]
            if not np.all(np.isfinite(e)):
                continue
            dist = np.linalg.norm(targets - e, axis=1)
            j = int(np.argmin(dist))
            if dist[j] < 10 * radius:
                hit.append(stable[j])
        hit_t = tuple(sorted(set(hit)))
        for j in hit_t:
            m = points[j]
            out.append(Barrier(m, s, float(s.U - m.U), hit_t))
    return out


def time_scales(
    obj: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    box: Any = None,
    points: list[StationaryPoint] | None = None,
    n_samples: int = 64,
    seed: int = 0,
) -> tuple[float, float]:
    """``(t_slow, t_fast)``: the slowest relaxation time and the fastest time scale of f.

    ``t_slow = 1 / min |Re lambda|`` over the stable points (Jacobian eigenvalues; found in
    the box unless ``points`` are given), or, with no stable point, ``1 / median`` spectral
    radius of Df over the box; ``t_fast = 1 / max`` spectral radius of Df at ``n_samples``
    random points of the box. Used to choose default horizons and steps of trajectory plots
    and prediction errors for systems with very different time scales (e.g. the slow
    resonator dynamics of the paper's Example 2).

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> t_slow, t_fast = time_scales(None, [-0.01 * x, -2 * y], [x, y], box=[[-1, 1], [-1, 1]])
    >>> round(t_slow, 6), round(t_fast, 6)
    (100.0, 0.5)
    """
    model = as_model(obj, f, variables, need_f=True)
    if box is None:
        box = model.box
    if box is None:
        raise AnalysisError("no box given to estimate the time scales of f")
    bx = check_box(box, model.d)
    J = numpy_function(sp.Matrix(model.f).jacobian(model.variables), model.variables)
    rng = np.random.default_rng(check_seed("", "seed", seed))
    X = bx[:, 0] + rng.random((n_samples, model.d)) * (bx[:, 1] - bx[:, 0])
    with np.errstate(all="ignore"):
        rho = np.array([np.max(np.abs(np.linalg.eigvals(J(x)))) for x in X])
    rho = rho[np.isfinite(rho) & (rho > 0)]
    if rho.size == 0:
        raise AnalysisError("the Jacobian of f vanishes or is not finite on the box")
    t_fast = 1.0 / float(np.max(rho))
    if points is None:
        try:
            points = stationary_points(Model(model.variables, None, model.f, bx),
                                       box=bx, seed=seed)
        except AnalysisError:
            points = []
    rates = [float(np.min(np.abs(p.eigenvalues.real))) for p in points if p.is_stable]
    rates = [r for r in rates if r > 0]
    t_slow = 1.0 / min(rates) if rates else 1.0 / float(np.median(rho))
    return t_slow, t_fast
