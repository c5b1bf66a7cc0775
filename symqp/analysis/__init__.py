"""What the exact U is for: analysis on a fitted result or on any SymPy U and f.

Every function takes a result-like object (a :class:`symqp.result.Result` or a
:class:`symqp.systems.System`) or plain SymPy inputs ``(U, f, variables)``.

- :func:`stationary_points`, :func:`barriers` — zeros of f, classified, and barrier heights.
- :func:`partition_function`, :func:`invariant_density`, :func:`density_check` — Z_eps
  (closed form when U separates, App. C) and a check against the histogram of stochastic
  data (or of a simulation); :func:`exit_time_check` — Eyring-Kramers exit times against
  the transitions measured on the paths.
- :func:`prediction_error` — long-term trajectory error (paper eq. 18).
- :func:`minimum_action_path`, :func:`geometric_action` — minimum action paths.
- :func:`exit_time_estimate`, :func:`exit_times_mc`, :func:`arrhenius_rate` — mean
  transition times, Eyring-Kramers-type and Monte Carlo.
- :func:`mesh_quasipotential` — 2D mesh reference (ordered line integral method, Numba).
- :func:`summarize`, :func:`write_report` and the ``plot_*`` functions — the command-line
  summary, the figures and the HTML report.
"""

from ._common import Model as Model
from ._common import as_model as as_model
from ._density import PartitionFunction as PartitionFunction
from ._density_check import density_check as density_check
from ._density_check import exit_time_check as exit_time_check
from ._density import euler_maruyama as euler_maruyama
from ._density import invariant_density as invariant_density
from ._density import partition_function as partition_function
from ._density import separate as separate
from ._exit import ExitTimeEstimate as ExitTimeEstimate
from ._exit import arrhenius_rate as arrhenius_rate
from ._exit import exit_time_estimate as exit_time_estimate
from ._exit import exit_times_mc as exit_times_mc
from ._figures import plot_densities as plot_densities
from ._figures import plot_fields as plot_fields
from ._figures import plot_pareto as plot_pareto
from ._figures import plot_potentials as plot_potentials
from ._figures import plot_trajectories as plot_trajectories
from ._figures import render_formula as render_formula
from ._mesh import MeshQuasipotential as MeshQuasipotential
from ._mesh import linear_quasipotential as linear_quasipotential
from ._mesh import mesh_quasipotential as mesh_quasipotential
from ._paths import MinimumActionPath as MinimumActionPath
from ._paths import geometric_action as geometric_action
from ._paths import minimum_action_path as minimum_action_path
from ._predict import PredictionError as PredictionError
from ._predict import prediction_error as prediction_error
from ._predict import rk4_trajectories as rk4_trajectories
from ._report import format_summary as format_summary
from ._report import summarize as summarize
from ._report import write_report as write_report
from ._stationary import Barrier as Barrier
from ._stationary import StationaryPoint as StationaryPoint
from ._stationary import barriers as barriers
from ._stationary import stationary_points as stationary_points
from ._stationary import time_scales as time_scales

__all__ = [
    "Barrier",
    "ExitTimeEstimate",
    "MeshQuasipotential",
    "MinimumActionPath",
    "Model",
    "PartitionFunction",
    "PredictionError",
    "StationaryPoint",
    "arrhenius_rate",
    "as_model",
    "barriers",
    "density_check",
    "euler_maruyama",
    "exit_time_check",
    "exit_time_estimate",
    "exit_times_mc",
    "format_summary",
    "geometric_action",
    "invariant_density",
    "linear_quasipotential",
    "mesh_quasipotential",
    "minimum_action_path",
    "partition_function",
    "plot_densities",
    "plot_fields",
    "plot_pareto",
    "plot_potentials",
    "plot_trajectories",
    "prediction_error",
    "render_formula",
    "rk4_trajectories",
    "separate",
    "stationary_points",
    "summarize",
    "time_scales",
    "write_report",
]
