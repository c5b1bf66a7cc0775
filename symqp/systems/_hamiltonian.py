"""Separable Hamiltonian systems ``H = pᵀM⁻¹p/2 + V(q)`` with exact potential V."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np
import sympy as sp

from .._errors import DataError
from ._system import FlowViews, System, as_box, as_symbols

__all__ = ["HamiltonianSystem", "harmonic_oscillator", "double_well", "central_force", "coulomb"]


@dataclass(frozen=True, eq=False)
class HamiltonianSystem(FlowViews):
    """A classical separable Hamiltonian system in canonical coordinates (q, p).

    Hamilton's equations are ``q' = M⁻¹p``, ``p' = -∇V(q)`` with a diagonal mass matrix.

    Parameters
    ----------
    name : str
        Short name.
    q, p : tuple of sympy.Symbol
        Positions and momenta (same length, the number of degrees of freedom ``dof``).
    mass : ndarray, shape (dof,)
        Diagonal of the mass matrix M (positive).
    V : sympy.Expr
        Exact potential energy in ``q``.
    box : ndarray, shape (2 dof, 2)
        Sampling region for ``q`` then ``p`` (low, high).
    params : dict of str to float
        Parameter values.
    description : str
        One line saying what the system is.

    Notes
    -----
    ``d`` is the state dimension ``2 dof``, as for :class:`System`; ``variables``, ``names``,
    ``field`` and :meth:`f_numpy` are those of the (q, p) flow, so a Hamiltonian system
    can be passed wherever a vector field is expected (:func:`symqp.data.sample_pairs`).

    Examples
    --------
    >>> s = harmonic_oscillator()
    >>> s.H
    p**2/2 + q**2/2
    >>> s.field
    (p, -q)
    >>> s.f_numpy()([[1.0, 0.5]])
    array([[ 0.5, -1. ]])
    """

    name: str
    q: tuple[sp.Symbol, ...]
    p: tuple[sp.Symbol, ...]
    mass: np.ndarray
    V: sp.Expr
    box: np.ndarray
    params: dict[str, float] = dc_field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        q = as_symbols(self.q, f"{self.name}: q")
        p = as_symbols(self.p, f"{self.name}: p")
        if len(q) != len(p):
            raise DataError(f"{self.name}: {len(q)} positions but {len(p)} momenta")
        if set(q) & set(p):
            raise DataError(f"{self.name}: q and p share symbols")
        try:
            mass = np.array(self.mass, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"{self.name}: mass must be a numeric array of shape ({len(q)},)") from None
        if mass.shape != (len(q),) or not np.all(np.isfinite(mass)) or np.any(mass <= 0):
            raise DataError(f"{self.name}: mass must be {len(q)} positive finite numbers, got {mass.tolist()}")
        mass.setflags(write=False)
        try:
            V = sp.sympify(self.V, strict=True)
        except (sp.SympifyError, TypeError):
            raise DataError(f"{self.name}: V must be a SymPy expression") from None
        extra = V.free_symbols - set(q)
        if extra:
            raise DataError(f"{self.name}: V uses symbols other than q: {sorted(map(str, extra))}")
        object.__setattr__(self, "q", q)
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "mass", mass)
        object.__setattr__(self, "V", V)
        object.__setattr__(self, "box", as_box(self.box, 2 * len(q), f"{self.name}: box"))
        object.__setattr__(self, "params", {str(k): float(v) for k, v in dict(self.params).items()})

    @property
    def dof(self) -> int:
        """Number of degrees of freedom (length of q)."""
        return len(self.q)

    @property
    def d(self) -> int:
        """State dimension ``2 dof``."""
        return 2 * len(self.q)

    @property
    def variables(self) -> tuple[sp.Symbol, ...]:
        """``q`` then ``p``."""
        return self.q + self.p

    @property
    def _inv_mass(self) -> tuple[sp.Expr, ...]:
        return tuple(sp.Integer(1) / sp.nsimplify(float(m), rational=True) for m in self.mass)

    @property
    def H(self) -> sp.Expr:
        """The Hamiltonian ``pᵀM⁻¹p/2 + V(q)``."""
        T = sum((im * pk**2 for im, pk in zip(self._inv_mass, self.p)), sp.Integer(0)) / 2
        return T + self.V

    @property
    def field(self) -> tuple[sp.Expr, ...]:
        """Hamilton's equations ``(∂H/∂p, -∂H/∂q)``."""
        H = self.H
        return tuple(sp.diff(H, pk) for pk in self.p) + tuple(-sp.diff(H, qk) for qk in self.q)

    def as_system(self) -> System:
        """The (q, p) flow as a plain :class:`System` (U is None: the flow is conservative)."""
        return System(self.name, self.variables, self.field, self.box, self.params, None, self.description)

    def __repr__(self) -> str:
        return f"HamiltonianSystem({self.name}: H = {self.H}, mass = {self.mass.tolist()})"


def harmonic_oscillator() -> HamiltonianSystem:
    """Simple harmonic oscillator ``H = p²/2 + q²/2``; box [-1, 1]².

    Examples
    --------
    >>> harmonic_oscillator().V
    q**2/2
    """
    q, p = sp.symbols("q p")
    return HamiltonianSystem(
        "harmonic_oscillator", (q,), (p,), [1.0], q**2 / 2, [[-1.0, 1.0], [-1.0, 1.0]], {},
        "simple harmonic oscillator H = p^2/2 + q^2/2",
    )


def double_well() -> HamiltonianSystem:
    """Particle in the double well ``V = -1 + 2q + 3q² - 4q³ + q⁴`` (``= q²(q-2)² - (q-1)²``).

    Box [-1, 1]² for (q, p), as in the first training set of the reference study.

    Examples
    --------
    >>> double_well().V
    q**4 - 4*q**3 + 3*q**2 + 2*q - 1
    """
    q, p = sp.symbols("q p")
    return HamiltonianSystem(
        "double_well", (q,), (p,), [1.0], -1 + 2 * q + 3 * q**2 - 4 * q**3 + q**4,
        [[-1.0, 1.0], [-1.0, 1.0]], {}, "particle in a quartic double-well potential",
    )


def central_force(dim: int = 2) -> HamiltonianSystem:
    """Central force ``H = |p|²/2 + |q|⁻¹ + (10 - |q|)⁻¹`` in ``dim`` (2 or 3) dimensions.

    The particle is confined to the shell ``0 < |q| < 10``. Box: ``q`` in [0.5, 2] per
    coordinate (away from the singular origin), ``p`` in [-1, 1].

    Examples
    --------
    >>> central_force().V
    1/sqrt(q1**2 + q2**2) + 1/(10 - sqrt(q1**2 + q2**2))
    """
    if dim not in (2, 3) or isinstance(dim, bool):
        raise DataError(f"central_force: dim must be 2 or 3, got {dim!r}")
    dim = int(dim)
    q = sp.symbols(f"q1:{dim + 1}")
    p = sp.symbols(f"p1:{dim + 1}")
    r = sp.sqrt(sum(s**2 for s in q))
    return HamiltonianSystem(
        "central_force", q, p, np.ones(dim), 1 / r + 1 / (10 - r),
        [[0.5, 2.0]] * dim + [[-1.0, 1.0]] * dim, {"dim": dim},
        "particle in a central force confined to 0 < |q| < 10",
    )


def coulomb() -> HamiltonianSystem:
    """Two opposite charges in 3-D, ``V = -1/(4π |q₁ - q₂|)``, masses 1 and 1/2.

    ``q = (x1, y1, z1, x2, y2, z2)``, ``M = diag(1, 1, 1, 1/2, 1/2, 1/2)``. Box: the
    particles start apart (``x1`` in [-2, -1], ``x2`` in [1, 2], other coordinates and all
    momenta in [-1, 1]).

    Examples
    --------
    >>> s = coulomb()
    >>> s.mass.tolist()
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    >>> s.V
    -1/(4*pi*sqrt((x1 - x2)**2 + (y1 - y2)**2 + (z1 - z2)**2))
    """
    q = sp.symbols("x1 y1 z1 x2 y2 z2")
    p = sp.symbols("px1 py1 pz1 px2 py2 pz2")
    r = sp.sqrt(sum((a - b) ** 2 for a, b in zip(q[:3], q[3:])))
    box = [[-2.0, -1.0], [-1.0, 1.0], [-1.0, 1.0], [1.0, 2.0], [-1.0, 1.0], [-1.0, 1.0]] + [[-1.0, 1.0]] * 6
    return HamiltonianSystem(
        "coulomb", q, p, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5], -1 / (4 * sp.pi * r), box, {},
        "two opposite charges in a Coulomb potential (masses 1 and 1/2)",
    )
