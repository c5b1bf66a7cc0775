"""Sweep specifications: a grid or list of points over systems, data, libraries, routes and seeds.

A specification is a mapping (read from TOML, YAML or JSON by :func:`load_spec`)::

    name = "graphene-beta"          # optional, recorded in the table folder
    [base]                          # settings shared by every point
    system = "graphene"
    library = "poly(4)"
    method = "symbolic"
    n_traj = 400
    [grid]                          # axes: every combination is one point
    "params.beta" = [1.0e-5, 1.4e-5, 1.8e-5]
    seed = [0, 1]
    [analysis]                      # what is measured on every fitted point
    eps = [0.1]

``points = [{...}, ...]`` lists points explicitly (each over ``base``); with a ``grid`` too,
every listed point is combined with every grid combination. A point's settings are the keys
of :data:`POINT_KEYS` plus ``params.<name>`` for the system's parameters. Each point has an
id (a hash of its settings), so a restarted sweep knows which points it already has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._errors import DataError, ParameterError

__all__ = ["ANALYSIS_KEYS", "POINT_KEYS", "Analysis", "Point", "SweepSpec", "expand", "load_spec", "parse_spec"]

# point setting -> (accepted types, what it is); ``params.<name>`` is added for system parameters
POINT_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "system": ((str, Mapping), "a built-in system name, or {field, variables, box, U} given as text"),
    "data": ((str,), "an .npz file of snapshot pairs to load instead of simulating"),
    "n_traj": ((int,), "trajectories simulated"),
    "n_pairs": ((int,), "pairs per trajectory"),
    "h": ((int, float), "time between the two states of a pair"),
    "dt": ((int, float), "time between pairs"),
    "noise": ((int, float), "measurement noise (standard deviation)"),
    "data_seed": ((int,), "seed of the simulation (default: seed)"),
    "library": ((str,), "library spec, e.g. 'poly(4)'"),
    "v_library": ((str,), "hypothesis space of V"),
    "g_library": ((str,), "hypothesis space of g"),
    "backend": ((str,), "regression backend name"),
    "backend_options": ((Mapping,), "keyword arguments of the backend"),
    "method": ((str,), "identification route: auto, symbolic or neural"),
    "seed": ((int,), "seed of the fit (and of the simulation unless data_seed is given)"),
    "steps": ((int,), "training steps of the neural route"),
    "device": ((str,), "torch device of the neural route"),
    "stochastic": ((bool,), "the pairs are SDE increments"),
    "val_frac": ((int, float), "held-out fraction of trajectories"),
    "max_points": ((int,), "bound on the regression points"),
}
_FIT_KEYS = ("library", "v_library", "g_library", "backend", "backend_options", "method", "seed", "steps",
             "device", "stochastic", "val_frac", "max_points")  # fmt: skip

ANALYSIS_KEYS = ("eps", "barriers", "partition", "exit_time", "coefficients")
_TOP_KEYS = ("name", "base", "grid", "points", "analysis")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What is measured on every fitted point.

    ``eps``: the noise strengths of Z_ε and of the exit time; ``barriers``: stationary points
    and barrier heights ΔU; ``partition``: Z_ε over the system's box; ``exit_time``:
    Eyring–Kramers mean exit time over the lowest barrier; ``coefficients``: largest
    coefficient error of U against the system's exact U, when it has one.
    """

    eps: tuple[float, ...] = (0.1,)
    barriers: bool = True
    partition: bool = True
    exit_time: bool = True
    coefficients: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Analysis:
        """Validated analysis settings (``ParameterError`` naming a bad key)."""
        data = dict(data or {})
        for key in data:
            if key not in ANALYSIS_KEYS:
                raise ParameterError(f"sweep analysis has no setting {key!r} (known: {', '.join(ANALYSIS_KEYS)})")
        eps = data.pop("eps", cls.eps)
        eps = [eps] if isinstance(eps, (int, float)) and not isinstance(eps, bool) else eps
        ok = isinstance(eps, Sequence) and not isinstance(eps, str) and all(
            isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e) and e > 0 for e in eps)
        if not ok:
            raise ParameterError(f"sweep analysis.eps must be positive numbers, got {eps!r}")
        for key, value in data.items():
            if not isinstance(value, bool):
                raise ParameterError(f"sweep analysis.{key} must be true or false, got {value!r}")
        return cls(eps=tuple(float(e) for e in eps), **data)


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: its settings (JSON-ready) and its id (a hash of them).

    Examples
    --------
    >>> p = Point.make({"system": "maier_stein", "seed": 1})
    >>> p.id, p.fit_options()
    ('p0ea9aa1a03aa', {'seed': 1})
    """

    id: str
    settings: Mapping[str, Any]

    @classmethod
    def make(cls, settings: Mapping[str, Any]) -> Point:
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return cls("p" + hashlib.sha1(text.encode()).hexdigest()[:12], dict(settings))

    def fit_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`symqp.fit` this point sets."""
        return {k: self.settings[k] for k in _FIT_KEYS if k in self.settings}

    def columns(self) -> dict[str, Any]:
        """The settings as flat table columns (``params.beta``; mappings as JSON text)."""
        out: dict[str, Any] = {}
        for key, value in self.settings.items():
            if key == "params":
                out.update({f"params.{k}": v for k, v in value.items()})
            elif isinstance(value, Mapping):
                out[key] = json.dumps(value, sort_keys=True)
            else:
                out[key] = value
        return out


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its name, points and analysis (see the module docstring)."""

    name: str
    points: tuple[Point, ...]
    analysis: Analysis
    source: Mapping[str, Any]

    @property
    def axes(self) -> tuple[str, ...]:
        """The table columns that vary between points."""
        cols = [p.columns() for p in self.points]
        keys = sorted({k for c in cols for k in c})
        return tuple(k for k in keys if len({json.dumps(c.get(k)) for c in cols}) > 1)


def _check_value(key: str, value: Any, where: str) -> Any:
    """One point setting, checked for its type (numbers must be finite)."""
    if key.startswith("params."):
        name = key[len("params."):]
        if not name.isidentifier():
            raise ParameterError(f"sweep {where}: {key!r} is not a parameter name")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ParameterError(f"sweep {where}: {key} must be a number or text, got {value!r}")
        return value
    if key not in POINT_KEYS:
        raise ParameterError(f"sweep {where}: unknown setting {key!r} (known: {', '.join(POINT_KEYS)}, params.NAME)")
    types, what = POINT_KEYS[key]
    bad = isinstance(value, bool) and bool not in types
    if bad or not isinstance(value, types):
        raise ParameterError(f"sweep {where}: {key} must be {what}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"sweep {where}: {key} must be finite, got {value!r}")
    return json.loads(json.dumps(value)) if isinstance(value, Mapping) else value


def _settings(flat: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Flat settings (``params.x`` keys) -> point settings with a ``params`` mapping."""
    out: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key, value in flat.items():
        if not isinstance(key, str):
            raise ParameterError(f"sweep {where}: setting names must be text, got {key!r}")
        if key == "params" and isinstance(value, Mapping):
            for k, v in value.items():
                params[str(k)] = _check_value(f"params.{k}", v, where)
            continue
        value = _check_value(key, value, where)
        if key.startswith("params."):
            params[key[len("params."):]] = value
        else:
            out[key] = value
    if params:
        out["params"] = dict(sorted(params.items()))
    if "system" not in out and "data" not in out:
        raise ParameterError(f"sweep {where}: every point needs a system or a data file")
    if "system" in out and "data" in out:
        raise ParameterError(f"sweep {where}: give a system or a data file, not both")
    if "params" in out and not isinstance(out.get("system"), str):
        raise ParameterError(f"sweep {where}: params.* apply to a built-in system given by name")
    return out


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParameterError(f"sweep {what} must be a table of settings, got {type(value).__name__}")
    return dict(value)


def expand(spec: Mapping[str, Any]) -> list[Point]:
    """The points of a specification, in order (grid axes vary last-fastest).

    Examples
    --------
    >>> pts = expand({"base": {"system": "maier_stein"}, "grid": {"seed": [0, 1], "params.beta": [1, 2]}})
    >>> [(p.settings["seed"], p.settings["params"]["beta"]) for p in pts]
    [(0, 1), (0, 2), (1, 1), (1, 2)]
    """
    base = _mapping(spec.get("base"), "base")
    grid = _mapping(spec.get("grid"), "grid")
    listed = spec.get("points")
    if listed is None:
        listed = [{}]
    elif isinstance(listed, (str, Mapping)) or not isinstance(listed, Sequence) or not listed:
        raise ParameterError("sweep points must be a non-empty list of tables")
    for key, values in grid.items():
        if isinstance(values, (str, Mapping)) or not isinstance(values, Sequence) or not values:
            raise ParameterError(f"sweep grid.{key} must be a non-empty list of values, got {values!r}")
    points, seen = [], set()
    for i, extra in enumerate(listed):
        extra = _mapping(extra, f"points[{i}]")
        for combo in itertools.product(*grid.values()):
            flat = {**base, **extra, **dict(zip(grid, combo))}
            p = Point.make(_settings(flat, f"point {len(points) + 1}"))
            if p.id in seen:
                raise ParameterError(f"sweep: point {len(points) + 1} repeats an earlier point ({p.settings})")
            seen.add(p.id)
            points.append(p)
    return points


def parse_spec(spec: Mapping[str, Any]) -> SweepSpec:
    """A validated :class:`SweepSpec` from a mapping.

    Examples
    --------
    >>> s = parse_spec({"base": {"system": "maier_stein"}, "grid": {"seed": [0, 1]}})
    >>> len(s.points), s.axes, s.analysis.eps
    (2, ('seed',), (0.1,))
    """
    if not isinstance(spec, Mapping):
        raise ParameterError(f"a sweep specification is a table of settings, got {type(spec).__name__}")
    for key in spec:
        if key not in _TOP_KEYS:
            raise ParameterError(f"sweep specification has no section {key!r} (known: {', '.join(_TOP_KEYS)})")
    name = spec.get("name", "sweep")
    if not isinstance(name, str) or not name:
        raise ParameterError(f"sweep name must be text, got {name!r}")
    return SweepSpec(name, tuple(expand(spec)), Analysis.from_mapping(spec.get("analysis")), dict(spec))


def _read_text(path: Path) -> Any:
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            from .._optional import require

            tomllib = require("tomli")
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{path}: not valid TOML: {exc}") from None
    if suffix in (".yaml", ".yml"):
        from .._optional import require

        yaml = require("yaml")
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path}: not valid JSON: {exc}") from None
    raise DataError(f"{path}: a sweep specification is a .toml, .yaml or .json file")


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a sweep specification file (TOML, YAML or JSON).

    Relative ``data`` paths are taken relative to the file's folder.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"sweep specification not found: {path}")
    try:
        raw = _read_text(p)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if isinstance(raw, Mapping):
        raw = _absolute_data(dict(raw), p.parent)
    return parse_spec(raw)


def _absolute_data(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``data`` entries made absolute against ``folder`` (base, points and grid)."""

    def fix(value: Any) -> Any:
        return str((folder / value).resolve()) if isinstance(value, str) and not Path(value).is_absolute() else value

    for section in ("base",):
        if isinstance(raw.get(section), Mapping) and "data" in raw[section]:
            raw[section] = {**raw[section], "data": fix(raw[section]["data"])}
    if isinstance(raw.get("points"), list):
        raw["points"] = [{**p, "data": fix(p["data"])} if isinstance(p, Mapping) and "data" in p else p
                         for p in raw["points"]]  # fmt: skip
    grid = raw.get("grid")
    if isinstance(grid, Mapping) and isinstance(grid.get("data"), list):
        raw["grid"] = {**grid, "data": [fix(v) for v in grid["data"]]}
    return raw
