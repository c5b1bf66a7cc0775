"""Built-in vector fields as SymPy objects, with exact quasipotentials where known.

``System`` holds a field ``f`` in named variables, a sampling box Ω, its parameters and the
exact Freidlin–Wentzell quasipotential ``U = 2V`` when known (``f = -∇V + g``,
``g·∇V = 0``). ``HamiltonianSystem`` holds a separable Hamiltonian system with its exact
potential. Build your own with :func:`from_expressions`, :func:`from_strings` or
:func:`rotated_gradient`.
"""

from ._builtin import archetypal3d as archetypal3d
from ._builtin import graphene as graphene
from ._builtin import linear_nongradient as linear_nongradient
from ._builtin import maier_stein as maier_stein
from ._builtin import rotated_gradient as rotated_gradient
from ._hamiltonian import HamiltonianSystem as HamiltonianSystem
from ._hamiltonian import central_force as central_force
from ._hamiltonian import coulomb as coulomb
from ._hamiltonian import double_well as double_well
from ._hamiltonian import harmonic_oscillator as harmonic_oscillator
from ._registry import get_system as get_system
from ._registry import list_systems as list_systems
from ._registry import sampling_defaults as sampling_defaults
from ._system import System as System
from ._system import from_expressions as from_expressions
from ._system import from_strings as from_strings

__all__ = [
    "System",
    "HamiltonianSystem",
    "get_system",
    "list_systems",
    "sampling_defaults",
    "from_expressions",
    "from_strings",
    "archetypal3d",
    "graphene",
    "maier_stein",
    "rotated_gradient",
    "linear_nongradient",
    "harmonic_oscillator",
    "double_well",
    "central_force",
    "coulomb",
]
