"""Parameter sweeps: many fits of a family of systems, on one machine or a Dask cluster.

- :func:`run_sweep` — run the points of a specification (grid or list over systems, system
  parameters, data sizes, noise, libraries, backends, routes and seeds); each point is
  simulated (or loaded), fitted and analysed (barrier ΔU, Z_ε, exit time) and appends one
  row to ``table.csv`` with its result JSON beside it; finished points are skipped on a
  restart. Serially, on joblib (``jobs=N``) or on Dask (``scheduler=`` / ``local_cluster=``).
- :func:`load_spec`, :func:`parse_spec`, :func:`expand` — specifications (TOML, YAML, JSON).
- :func:`run_point` — one point (what a worker runs).
- :func:`read_table`, :func:`plot_sweep` — the table as a DataFrame, a figure against a
  swept parameter.

joblib, Dask and pandas come with the ``[sweep]`` extra and are imported only when used.
"""

from ._plot import plot_sweep as plot_sweep
from ._point import METRIC_COLUMNS as METRIC_COLUMNS
from ._point import run_point as run_point
from ._run import SweepRun as SweepRun
from ._run import run_sweep as run_sweep
from ._spec import Analysis as Analysis
from ._spec import Point as Point
from ._spec import SweepSpec as SweepSpec
from ._spec import expand as expand
from ._spec import load_spec as load_spec
from ._spec import parse_spec as parse_spec
from ._table import Table as Table
from ._table import read_table as read_table

__all__ = [
    "METRIC_COLUMNS",
    "Analysis",
    "Point",
    "SweepRun",
    "SweepSpec",
    "Table",
    "expand",
    "load_spec",
    "parse_spec",
    "plot_sweep",
    "read_table",
    "run_point",
    "run_sweep",
]
