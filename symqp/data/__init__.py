"""Snapshot pairs ``(x0, xh, h)``: sampling, files, validation, and SDE paths.

``Pairs`` is the data the decomposition learns from; :func:`sample_pairs` draws them from a
built-in or user system following the seed paper's App. B protocol; :func:`save_pairs` /
:func:`load_pairs` use the ``.npz`` format ``symqp fit`` reads; :func:`pairs_from_csv`
turns uniformly sampled CSV trajectories into pairs; :func:`simulate_sde` runs
Euler–Maruyama paths of ``dX = f dt + √ε dW``; :func:`sample_sde_pairs` records snapshot pairs
of such paths (stochastic Heun scheme) for ``symqp.fit(..., stochastic=True)``.
"""

from ._files import load_pairs as load_pairs
from ._hamiltonian import HamiltonianData as HamiltonianData
from ._hamiltonian import angular_momentum_sq as angular_momentum_sq
from ._hamiltonian import load_hamiltonian as load_hamiltonian
from ._hamiltonian import radial_reduction as radial_reduction
from ._hamiltonian import sample_hamiltonian as sample_hamiltonian
from ._hamiltonian import save_hamiltonian as save_hamiltonian
from ._stationary import StationaryData as StationaryData
from ._stationary import load_stationary as load_stationary
from ._stationary import sample_stationary as sample_stationary
from ._stationary import save_stationary as save_stationary
from ._files import pairs_from_csv as pairs_from_csv
from ._files import save_pairs as save_pairs
from ._pairs import Pairs as Pairs
from ._pairs import pairs_from_arrays as pairs_from_arrays
from ._sampling import sample_pairs as sample_pairs
from ._sde import sample_sde_pairs as sample_sde_pairs
from ._sde import simulate_sde as simulate_sde

__all__ = [
    "Pairs",
    "pairs_from_arrays",
    "sample_pairs",
    "save_pairs",
    "load_pairs",
    "pairs_from_csv",
    "simulate_sde",
    "sample_sde_pairs",
    "HamiltonianData",
    "sample_hamiltonian",
    "save_hamiltonian",
    "load_hamiltonian",
    "radial_reduction",
    "angular_momentum_sq",
    "StationaryData",
    "sample_stationary",
    "save_stationary",
    "load_stationary",
]
