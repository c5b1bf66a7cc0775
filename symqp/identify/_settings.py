"""Settings of an identification run, validated once, and what every route derives from them.

:class:`FitSettings` is the one value that :func:`symqp.fit`, :func:`symqp.compare` and
every route pass along (instead of a dozen keyword arguments). :func:`resolve_library`
turns its library specs into the union library with the masks of V and g, and
:func:`split_pairs` holds out whole trajectories for selection and metrics.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import DataError, LibraryError, ParameterError
from .._estimator import check_bool, check_choice, check_float, check_int, check_seed

__all__ = ["METHODS", "FitSettings", "LibrarySetup", "as_pairs", "resolve_library", "split_pairs"]

METHODS = ("auto", "neural", "symbolic")


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """Every setting of :func:`symqp.fit` (see its docstring), validated on construction.

    Examples
    --------
    >>> FitSettings(library="poly(2)", seed=3).seed
    3
    >>> FitSettings(val_frac=1.5)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: fit.val_frac must be a finite number >= 0 and < 1, got 1.5
    """

    library: Any = "poly(4)"
    v_library: Any = None
    g_library: Any = None
    backend: Any = "sr3"
    backend_options: Mapping[str, Any] | None = None
    tau: float | None = None
    decomposition: Any = None
    decomposition_options: Mapping[str, Any] | None = None
    seed: int = 0
    device: str = "cpu"
    steps: int | None = None
    val_frac: float = 0.3
    max_points: int = 20_000
    refine: bool = True
    verbose: bool = True
    method: str = "auto"
    stochastic: bool = False
    bootstrap: int | None = None

    def __post_init__(self) -> None:
        check_seed("fit", "seed", self.seed)
        check_float("fit", "val_frac", self.val_frac, low=0.0, high=1.0, high_open=True)
        check_int("fit", "max_points", self.max_points, minimum=10)
        check_float("fit", "tau", self.tau, low=0.0, low_open=True, allow_none=True)
        check_int("fit", "steps", self.steps, minimum=1, allow_none=True)
        check_bool("fit", "refine", self.refine)
        check_bool("fit", "verbose", self.verbose)
        check_bool("fit", "stochastic", self.stochastic)
        check_int("fit", "bootstrap", self.bootstrap, minimum=0, allow_none=True)
        if self.bootstrap is not None and 0 < self.bootstrap < 20:
            raise ParameterError(f"fit.bootstrap must be 0 (off) or at least 20 replicates, got {self.bootstrap}")
        check_choice("fit", "method", self.method, METHODS)
        dev = self.device
        if not isinstance(dev, str) or not (dev in ("cpu", "cuda") or dev.startswith("cuda:")):
            raise ParameterError(f"fit.device must be 'cpu' or 'cuda[:N]', got {dev!r}")
        for name in ("backend_options", "decomposition_options"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ParameterError(f"fit.{name} must be a dict of keyword arguments, got {type(value).__name__}")
        if self.decomposition is not None and self.decomposition_options:
            raise ParameterError("fit: decomposition_options given together with a fitted decomposition")

    def replace(self, **changes: Any) -> FitSettings:
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class LibrarySetup:
    """The union library (closed under differentiation) and the hypothesis spaces of V and g.

    ``v_mask`` / ``g_mask`` are boolean arrays over the union's terms (None: all terms);
    ``spec`` is the text recorded in the result.
    """

    library: Any
    v_mask: np.ndarray | None
    g_mask: np.ndarray | None
    spec: str


def as_pairs(pairs: Any) -> Any:
    """Snapshot pairs from a :class:`~symqp.data.Pairs` or the path of an ``.npz`` file."""
    if isinstance(pairs, (str, os.PathLike)):
        from ..data import load_pairs

        return load_pairs(pairs)
    for attr in ("x0", "xh", "h", "names", "split"):
        if not hasattr(pairs, attr):
            raise DataError(
                f"expected snapshot pairs (symqp.data.Pairs or a .npz path), got {type(pairs).__name__}"
            )
    return pairs


def _as_library(spec: Any, names: tuple[str, ...], what: str) -> tuple[Any, str]:
    from ..library import Library, parse_library

    if spec is None:
        return None, ""
    if isinstance(spec, Library):
        text = getattr(spec, "spec", None) or " + ".join(str(t) for t in spec.terms)
        return spec, str(text)
    if isinstance(spec, str):
        return parse_library(spec, names), spec
    if (type(spec).__module__ or "").split(".")[0] == "pysindy":  # a pysindy feature library
        lib = Library.from_pysindy(spec, names)
        return lib, ", ".join(lib.names)  # a spec parse_library reads back
    raise LibraryError(
        f"{what} must be a spec string like 'poly(4)', a Library or a pysindy feature library, got {type(spec).__name__}"
    )


def _mask(lib: Any, sub: Any) -> np.ndarray | None:
    if sub is None:
        return None
    return np.asarray(lib.mask_of(sub), dtype=bool)


def resolve_library(settings: FitSettings, names: tuple[str, ...]) -> LibrarySetup:
    """Union of ``library``, ``v_library`` and ``g_library``, closed under differentiation.

    Examples
    --------
    >>> setup = resolve_library(FitSettings(library="poly(1)", v_library="poly(2)"), ("x",))
    >>> [str(t) for t in setup.library.terms], setup.v_mask.tolist()
    (['1', 'x', 'x**2'], [True, True, True])
    """
    base, spec = _as_library(settings.library, names, "library")
    lv, spec_v = _as_library(settings.v_library, names, "v_library")
    lg, spec_g = _as_library(settings.g_library, names, "g_library")
    parts = [p for p in (base, lv, lg) if p is not None]
    if not parts:
        raise LibraryError("no library given: pass library=, v_library= or g_library=")
    lib = parts[0]
    for p in parts[1:]:
        lib = lib + p
    if not lib.is_closed():
        lib = lib.closed()
    text = "; ".join(s for s in (spec, f"V: {spec_v}" if spec_v else "", f"g: {spec_g}" if spec_g else "") if s)
    return LibrarySetup(lib, _mask(lib, lv), _mask(lib, lg), text)


def split_pairs(pairs: Any, settings: FitSettings) -> tuple[Any, Any]:
    """(train, held-out) by trajectory; held-out is None when ``val_frac`` is 0."""
    if settings.val_frac > 0:
        return pairs.split(frac=1.0 - float(settings.val_frac), seed=settings.seed)
    return pairs, None


def pow2(x: float) -> int:
    """Exponent k of the power of two nearest to x (in log scale); 0 for x <= 0 or inf.

    Examples
    --------
    >>> pow2(0.3), pow2(1e-8), pow2(0.0)
    (-2, -27, 0)
    """
    if not (x > 0.0 and math.isfinite(x)):
        return 0
    return int(round(math.log2(x)))
