"""Built-in vector fields: the seed paper's examples and test families with exact U."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp

from .._errors import DataError
from .._parse import parse_expr_safe
from ._system import System, as_box, as_symbols, exact_number

__all__ = ["archetypal3d", "graphene", "maier_stein", "rotated_gradient", "linear_nongradient"]


def archetypal3d() -> System:
    """Example 1 of the seed paper (eq. 17): a 3-D non-gradient system with exact U.

    ``x' = -2(x³ - x) - y - z``, ``y' = -y + 2(x³ - x)``, ``z' = -z + 2(x³ - x)``;
    ``U = x⁴ - 2x² + y² + z² + 1``, Ω = [-2, 2] × [-1.5, 1.5]².

    Examples
    --------
    >>> s = archetypal3d()
    >>> s.U
    x**4 - 2*x**2 + y**2 + z**2 + 1
    >>> s.box.tolist()
    [[-2.0, 2.0], [-1.5, 1.5], [-1.5, 1.5]]
    """
    x, y, z = sp.symbols("x y z")
    c = 2 * (x**3 - x)
    return System(
        "archetypal3d",
        (x, y, z),
        (-c - y - z, -y + c, -z + c),
        [[-2.0, 2.0], [-1.5, 1.5], [-1.5, 1.5]],
        {},
        x**4 - 2 * x**2 + y**2 + z**2 + 1,
        "archetypal 3-D model with two stable points (±1, 0, 0) and exact quasipotential",
    )


def graphene(
    *,
    omega0: float = 1.0,
    omegaF: float = 1.0018,
    zeta: float = 0.00045,
    alpha: float = 33.0,
    beta: float = 1.4e-5,
) -> System:
    """Example 2 of the seed paper (eq. 23): slow dynamics of a graphene resonator (P, Q).

    No closed-form quasipotential (``U`` is None). Ω = [-0.02, 0.02]². The measured
    parameters enter as floating-point numbers.

    Examples
    --------
    >>> s = graphene()
    >>> s.names, s.U is None
    (('P', 'Q'), True)
    """
    P, Q = sp.symbols("P Q")
    w0, wF, zt, al, be = (sp.Float(float(v)) for v in (omega0, omegaF, zeta, alpha, beta))
    if float(omegaF) == 0.0:
        raise DataError("graphene: omegaF must be non-zero")
    det = (w0**2 - wF**2) / (2 * wF)
    nl = sp.Rational(3, 8) * al / wF
    r2 = P**2 + Q**2
    return System(
        "graphene",
        (P, Q),
        (det * Q - zt * P + nl * Q * r2, -det * P - zt * Q - nl * P * r2 - be / (2 * wF)),
        [[-0.02, 0.02], [-0.02, 0.02]],
        {"omega0": omega0, "omegaF": omegaF, "zeta": zeta, "alpha": alpha, "beta": beta},
        None,
        "nanomechanical graphene resonator in the rotating frame (bistable Duffing)",
    )


def maier_stein(alpha: float = 1.0, beta: float = 1.0) -> System:
    """The Maier–Stein system ``x' = x - x³ - βxy²``, ``y' = -α(1 + x²)y``.

    It is a gradient system exactly when ``α = β``; then ``f = -∇U/2`` with
    ``U = (x² − 1)²/2 + α(1 + x²)y²`` (zero at the stable points (±1, 0)). Otherwise ``U``
    is None. Ω = [-1.5, 1.5] × [-1, 1].

    Examples
    --------
    >>> maier_stein().U
    x**4/2 + x**2*y**2 - x**2 + y**2 + 1/2
    >>> maier_stein(1, 2).U is None
    True
    """
    x, y = sp.symbols("x y")
    a = exact_number(alpha, "maier_stein: alpha")
    b = exact_number(beta, "maier_stein: beta")
    U = sp.expand((x**2 - 1) ** 2 / 2 + a * (1 + x**2) * y**2) if a == b else None
    return System(
        "maier_stein",
        (x, y),
        (x - x**3 - b * x * y**2, -a * (1 + x**2) * y),
        [[-1.5, 1.5], [-1.0, 1.0]],
        {"alpha": float(a), "beta": float(b)},
        U,
        "Maier-Stein system (gradient when alpha == beta)",
    )


def linear_nongradient(a: float = 1.0) -> System:
    """Linear system ``f = [[-2, -a], [2a, -1]] x`` with ``U = 2x² + y²`` for every ``a``.

    ``V = x² + y²/2``, ``g = (-a y, 2a x)`` is orthogonal to ``∇V``. Ω = [-1, 1]².

    Examples
    --------
    >>> s = linear_nongradient(3)
    >>> s.field, s.U
    ((-2*x - 3*y, 6*x - y), 2*x**2 + y**2)
    """
    x, y = sp.symbols("x y")
    a_ = exact_number(a, "linear_nongradient: a")
    return System(
        "linear_nongradient",
        (x, y),
        (-2 * x - a_ * y, 2 * a_ * x - y),
        [[-1.0, 1.0], [-1.0, 1.0]],
        {"a": float(a_)},
        2 * x**2 + y**2,
        "linear non-gradient system with exact quadratic quasipotential",
    )


def _antisymmetric(A: object, d: int) -> sp.Matrix:
    if isinstance(A, (int, float, np.integer, np.floating, sp.Expr)) and not isinstance(A, bool):
        if d != 2:
            raise DataError(f"rotated_gradient: a scalar A is only allowed for d = 2, got d = {d}")
        a = exact_number(A, "rotated_gradient: A")
        return sp.Matrix([[0, a], [-a, 0]])
    if isinstance(A, sp.MatrixBase):
        A = A.tolist()
    try:
        rows = [list(r) for r in A]  # type: ignore[union-attr]
    except TypeError:
        raise DataError("rotated_gradient: A must be a (d, d) matrix or, for d = 2, a number") from None
    if len(rows) != d or any(len(r) != d for r in rows):
        raise DataError(f"rotated_gradient: A must have shape ({d}, {d})")
    M = sp.Matrix([[exact_number(v, "rotated_gradient: A entry") for v in r] for r in rows])
    if M + M.T != sp.zeros(d, d):
        raise DataError("rotated_gradient: A must be antisymmetric (A = -A^T)")
    return M


def rotated_gradient(
    V: sp.Expr | str | None = None,
    A: object | None = None,
    *,
    variables: Sequence[sp.Symbol | str] | str | None = None,
    box: object | None = None,
) -> System:
    """The family ``f = -(I + A)∇V`` with ``A`` constant antisymmetric: ``U = 2V`` exactly.

    ``g = -A∇V`` satisfies ``g·∇V = 0`` because ``A`` is antisymmetric, so this builds test
    systems with a known quasipotential from any potential ``V``.

    Parameters
    ----------
    V : sympy.Expr or str, optional
        The potential; a string is parsed safely. Default: the double well
        ``x⁴/4 - x²/2 + y²/2``.
    A : array_like (d, d) or number, optional
        Antisymmetric matrix; a number ``a`` means ``[[0, a], [-a, 0]]`` (d = 2). Default 1.
    variables : sequence of str or Symbol, optional
        Variable order (default ``x, y`` for the default V or a string V; the sorted free
        symbols of a SymPy V).
    box : array_like (d, 2), optional
        Sampling region; default ``[-2, 2]`` per variable.

    Examples
    --------
    >>> s = rotated_gradient("x**2 + y**2", 2)
    >>> s.field, s.U
    ((-2*x - 4*y, 4*x - 2*y), 2*x**2 + 2*y**2)
    """
    if variables is None:
        if V is None or isinstance(V, str):
            syms = sp.symbols("x y")
        else:
            syms = tuple(sorted(sp.sympify(V, strict=True).free_symbols, key=str))
            if not syms:
                raise DataError("rotated_gradient: V has no variables; pass variables=")
    else:
        syms = as_symbols(variables)
    if V is None:
        if len(syms) != 2:
            raise DataError("rotated_gradient: the default V needs two variables; pass V")
        x, y = syms
        V = x**4 / 4 - x**2 / 2 + y**2 / 2
    elif isinstance(V, str):
        V = parse_expr_safe(V, syms)
    else:
        V = sp.sympify(V, strict=True)
        by_name = {str(s): s for s in syms}
        V = V.xreplace({s: by_name[str(s)] for s in V.free_symbols if str(s) in by_name})
        extra = V.free_symbols - set(syms)
        if extra:
            raise DataError(f"rotated_gradient: V uses unknown symbols {sorted(map(str, extra))}")
    d = len(syms)
    Am = _antisymmetric(1 if A is None else A, d)
    grad = sp.Matrix([sp.diff(V, s) for s in syms])
    f = -(sp.eye(d) + Am) * grad
    params = {f"A{i}{j}": float(Am[i, j]) for i in range(d) for j in range(i + 1, d)}
    return System(
        "rotated_gradient",
        syms,
        tuple(sp.expand(e) for e in f),
        as_box(np.tile([-2.0, 2.0], (d, 1)) if box is None else box, d, "rotated_gradient: box"),
        params,
        sp.expand(2 * V),
        f"rotated gradient system f = -(I + A) grad V with V = {V}",
    )
