"""The regression problem every backend solves, and the result types they return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from symqp._errors import BackendError
from symqp._numeric import numpy_function

__all__ = ["Candidate", "Fit", "Problem", "relative_error"]


def _array(name: str, value: Any, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BackendError(f"{name} must be a numeric array, got {type(value).__name__}") from None
    if arr.ndim != ndim:
        raise BackendError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise BackendError(f"{name} contains {bad} NaN or infinite value(s)")
    return arr


def _mask(name: str, value: Any, q: int) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype != np.bool_:
        raise BackendError(f"{name} must be a boolean array, got dtype {arr.dtype}")
    if arr.shape != (q,):
        raise BackendError(f"{name} must have shape ({q},) (one entry per library term), got {arr.shape}")
    return arr.copy()


@dataclass
class Problem:
    """Targets of an orthogonal decomposition on points, plus the function library.

    Parameters
    ----------
    X : array (n, d)
        Points.
    f, V, g : arrays (n, d), (n,), (n, d)
        Targets ``f_θ(X)``, ``V_θ(X)``, ``g_θ(X)`` (paper eq. 13).
    library : Library
        The function library (``symqp.library``); its variable count must equal ``d``.
    v_mask, g_mask : bool arrays (q,) or None
        Library terms allowed in ``V`` and in every ``g_i`` (None: all).
    X_val, f_val, V_val, g_val : arrays or None
        Held-out points and targets used for model selection (all four or none).
    constraints : array (m, q*(2d+1)) or None
        Extra linear equality constraints ``C vec(Ξ) = 0`` on the coefficient matrix
        ``Ξ = [f_1..f_d | V | g_1..g_d]`` flattened row-major (pysindy's ``"feature"``
        order), added to the structural ones.

    Raises
    ------
    BackendError
        On inconsistent shapes, NaN/Inf values, an empty point set, a library with the
        wrong number of variables, masks of the wrong length or a constraint matrix of the
        wrong width.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from symqp.library import poly
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    >>> V = (X**2).sum(1) / 2
    >>> pb = Problem(X, -X, V, np.zeros_like(X), poly((x, y), 2))
    >>> pb.n, pb.d, pb.q
    (20, 2, 6)
    """

    X: np.ndarray
    f: np.ndarray
    V: np.ndarray
    g: np.ndarray
    library: Any
    v_mask: np.ndarray | None = None
    g_mask: np.ndarray | None = None
    X_val: np.ndarray | None = None
    f_val: np.ndarray | None = None
    V_val: np.ndarray | None = None
    g_val: np.ndarray | None = None
    constraints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.X = _array("X", self.X, 2)
        n, d = self.X.shape
        if n == 0:
            raise BackendError("the point set X is empty (0 points)")
        if d == 0:
            raise BackendError("X has 0 columns (no variables)")
        self.f = _array("f", self.f, 2)
        self.V = _array("V", self.V, 1)
        self.g = _array("g", self.g, 2)
        for name, arr, shape in (("f", self.f, (n, d)), ("V", self.V, (n,)), ("g", self.g, (n, d))):
            if arr.shape != shape:
                raise BackendError(f"{name} must have shape {shape} to match X {self.X.shape}, got {arr.shape}")
        from symqp.library import Library

        lib = self.library
        if not isinstance(lib, Library):
            raise BackendError(f"library must be a symqp.library.Library, got {type(lib).__name__}")
        if len(lib.variables) != d:
            raise BackendError(
                f"library has {len(lib.variables)} variable(s) {tuple(map(str, lib.variables))} "
                f"but X has {d} column(s)"
            )
        q = len(lib.terms)
        if q == 0:
            raise BackendError("library is empty (0 terms)")
        self.v_mask = _mask("v_mask", self.v_mask, q)
        self.g_mask = _mask("g_mask", self.g_mask, q)
        vals = (self.X_val, self.f_val, self.V_val, self.g_val)
        given = [v is not None for v in vals]
        if any(given) and not all(given):
            raise BackendError("give all of X_val, f_val, V_val, g_val or none of them")
        if all(given):
            self.X_val = _array("X_val", self.X_val, 2)
            m = self.X_val.shape[0]
            if m == 0:
                raise BackendError("the validation point set X_val is empty (0 points)")
            if self.X_val.shape[1] != d:
                raise BackendError(f"X_val must have {d} columns like X, got shape {self.X_val.shape}")
            self.f_val = _array("f_val", self.f_val, 2)
            self.V_val = _array("V_val", self.V_val, 1)
            self.g_val = _array("g_val", self.g_val, 2)
            for name, arr, shape in (
                ("f_val", self.f_val, (m, d)), ("V_val", self.V_val, (m,)), ("g_val", self.g_val, (m, d))
            ):
                if arr.shape != shape:
                    raise BackendError(f"{name} must have shape {shape} to match X_val, got {arr.shape}")
        if self.constraints is not None:
            c = _array("constraints", self.constraints, 2)
            width = q * (2 * d + 1)
            if c.shape[1] != width:
                raise BackendError(
                    f"constraint matrix has {c.shape[1]} columns, expected q*(2d+1) = {q}*{2 * d + 1} = {width}"
                )
            self.constraints = c

    @property
    def n(self) -> int:
        """Number of training points."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of variables."""
        return int(self.X.shape[1])

    @property
    def q(self) -> int:
        """Number of library terms."""
        return len(self.library.terms)

    @property
    def variables(self) -> tuple[sp.Symbol, ...]:
        """The library's SymPy variables."""
        return tuple(self.library.variables)

    @property
    def has_validation(self) -> bool:
        """Whether held-out points were given."""
        return self.X_val is not None

    def targets(self, which: str = "train") -> np.ndarray:
        """Target matrix ``G = [f, V, g]`` (n, 2d+1) on the training or validation points."""
        if which == "train":
            return np.column_stack([self.f, self.V, self.g])
        if which == "val":
            if self.X_val is None:
                raise BackendError("this problem has no validation points")
            return np.column_stack([self.f_val, self.V_val, self.g_val])
        raise BackendError(f"unknown target set {which!r} (use 'train' or 'val')")


@dataclass
class Candidate:
    """One model on a Pareto front.

    ``complexity`` is the number of nonzero terms of V and g (linear backends) or the
    expression size (evolutionary backends); errors are :func:`relative_error` values of
    ``[f, V, g]`` on training and held-out points (NaN when there are none). ``params``
    says how the model was found (threshold, iterations, ...); ``coef`` is its coefficient
    matrix ``Ξ = [f | V | g]`` (q, 2d+1) in library order where the backend is linear.
    """

    complexity: int
    train_error: float
    val_error: float
    V: sp.Expr
    g: tuple[sp.Expr, ...]
    params: dict = field(default_factory=dict)
    coef: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class Fit:
    """The chosen symbolic decomposition ``f = -∇V + g`` and how it was found (U = 2V)."""

    V: sp.Expr
    grad_V: tuple[sp.Expr, ...]
    g: tuple[sp.Expr, ...]
    f: tuple[sp.Expr, ...]
    coef: np.ndarray | None
    front: list[Candidate]
    selection: str
    timings: dict[str, float] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    backend: str = ""

    @property
    def U(self) -> sp.Expr:
        """The Freidlin–Wentzell quasipotential ``U = 2V``."""
        return sp.expand(2 * self.V)


def relative_error(pred: np.ndarray, target: np.ndarray) -> float:
    """Relative Frobenius error ``‖pred − target‖ / ‖target‖`` (absolute if the target is 0).

    Examples
    --------
    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    """
    num = float(np.linalg.norm(np.asarray(pred) - np.asarray(target)))
    den = float(np.linalg.norm(target))
    return num / den if den > 0 else num


def exact_field(V: sp.Expr, g: tuple[sp.Expr, ...], variables) -> tuple[tuple, tuple]:
    """``(∇V, f = −∇V + g)`` derived exactly from V and g."""
    grad = tuple(sp.expand(sp.diff(V, v)) for v in variables)
    f = tuple(sp.expand(-a + b) for a, b in zip(grad, g))
    return grad, f


def coef_candidate(
    problem: Problem,
    coef: np.ndarray,
    train: tuple[np.ndarray, np.ndarray],
    held: tuple[np.ndarray, np.ndarray] | None,
    params: dict,
) -> Candidate:
    """A :class:`Candidate` from a coefficient matrix ``Ξ = [f | V | g]`` (q, 2d+1).

    ``train`` and ``held`` are ``(Θ, G)`` pairs (library values and targets) on which the
    training and validation errors of ``Θ Ξ`` are measured; the complexity is the number
    of nonzero coefficients of V and g.
    """
    d, lib = problem.d, problem.library
    V = lib.expression(coef[:, d])
    g = tuple(lib.expression(coef[:, d + 1 + k]) for k in range(d))
    tr = relative_error(train[0] @ coef, train[1])
    va = relative_error(held[0] @ coef, held[1]) if held is not None else float("nan")
    return Candidate(int(np.count_nonzero(coef[:, d:])), tr, va, V, g, params, coef=coef)


def expression_errors(problem: Problem, V: sp.Expr, g: tuple[sp.Expr, ...]) -> tuple[float, float]:
    """Training and validation :func:`relative_error` of ``[f, V, g]`` built from V and g."""
    _, f = exact_field(V, g, problem.variables)
    funcs = numpy_function(list(f) + [V] + list(g), problem.variables)

    def err(X: np.ndarray, G: np.ndarray) -> float:
        pred = funcs(X)
        if not np.all(np.isfinite(pred)):
            return float("inf")
        return relative_error(pred, G)

    tr = err(problem.X, problem.targets("train"))
    va = err(problem.X_val, problem.targets("val")) if problem.has_validation else float("nan")
    return tr, va


def orthogonality_residual(V: sp.Expr, g: tuple[sp.Expr, ...], variables, X: np.ndarray) -> float:
    """Mean of ``|∇V·g| / (|∇V||g|)`` over the points where both are nonzero (0 if none).

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> orthogonality_residual((x**2 + y**2) / 2, (-y, x), (x, y), X)
    0.0
    """
    d = len(variables)
    arr = numpy_function([sp.diff(V, v) for v in variables] + list(g), variables)(X)
    gv, gg = arr[:, :d], arr[:, d:]
    na, nb = np.linalg.norm(gv, axis=1), np.linalg.norm(gg, axis=1)
    ok = (na > 0) & (nb > 0)
    if not np.any(ok):
        return 0.0
    return float(np.mean(np.abs(np.sum(gv[ok] * gg[ok], axis=1)) / (na[ok] * nb[ok])))


def f_residual(f: tuple[sp.Expr, ...], variables, X: np.ndarray, f_target: np.ndarray) -> float:
    """:func:`relative_error` of the symbolic f against the f targets on the points."""
    return relative_error(numpy_function(list(f), variables)(X), f_target)


def constraint_residual(problem: Problem, coef: np.ndarray) -> float:
    """Largest ``|C vec(Ξ)|`` over the decomposition's constraints and the problem's own."""
    from symqp.library import constraint_matrix

    C = np.asarray(
        constraint_matrix(problem.library, problem.d, v_mask=problem.v_mask, g_mask=problem.g_mask, order="feature"),
        dtype=float,
    )
    if problem.constraints is not None:
        C = np.vstack([C, problem.constraints])
    return float(np.max(np.abs(C @ np.asarray(coef, dtype=float).ravel()), initial=0.0))
