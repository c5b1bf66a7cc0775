"""Abstract backend, the lazy registry and Pareto-front helpers."""

from __future__ import annotations

import abc
import importlib
import math
from collections.abc import Callable, Sequence

import numpy as np

from symqp._errors import BackendError, MissingDependencyError
from symqp._optional import probe

from ._problem import Candidate, Fit, Problem

__all__ = [
    "Backend",
    "available_backends",
    "get_backend",
    "pareto_front",
    "register_backend",
    "select_candidate",
]


class Backend(abc.ABC):
    """A regression method turning a :class:`Problem` into a symbolic :class:`Fit`.

    Subclasses store their keyword arguments in ``__init__`` (scikit-learn style), validate
    them in :meth:`fit`, and list the optional modules they need in ``requires``.
    """

    name: str = ""
    requires: tuple[str, ...] = ()

    @abc.abstractmethod
    def fit(self, problem: Problem) -> Fit:
        """Fit V and g to the problem's targets and return the chosen model and its front."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


# name -> "module:Class" (imported only when asked for) or a Backend subclass
_REGISTRY: dict[str, str | type[Backend]] = {
    "sr3": "symqp.backends._sr3:SR3",
    "stlsq": "symqp.backends._stlsq:STLSQ",
    "operon": "symqp.backends._operon:Operon",
    "pysr": "symqp.backends._pysr:PySR",
}
_ENTRY_POINT_GROUP = "symqp.backends"
_entry_points_loaded = False


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        _REGISTRY.setdefault(ep.name, ep.value)


def register_backend(name: str, target: str | type[Backend]) -> None:
    """Register a backend class (or a lazy ``"module:Class"`` path) under ``name``.

    Third-party packages can instead declare an entry point in the ``symqp.backends`` group.

    Examples
    --------
    >>> register_backend("my-sr3", "symqp.backends._sr3:SR3")
    >>> type(get_backend("my-sr3", threshold=0.1)).__name__
    'SR3'
    """
    if not isinstance(name, str) or not name.strip():
        raise BackendError(f"backend name must be a non-empty string, got {name!r}")
    if isinstance(target, str):
        if target.count(":") != 1:
            raise BackendError(f"backend target must look like 'module:Class', got {target!r}")
    elif not (isinstance(target, type) and issubclass(target, Backend)):
        raise BackendError(f"backend {name!r} must be a Backend subclass or 'module:Class', got {target!r}")
    _REGISTRY[name] = target


def _resolve(name: str) -> type[Backend]:
    _load_entry_points()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise BackendError(f"unknown backend {name!r} (known: {known})")
    target = _REGISTRY[name]
    if isinstance(target, str):
        mod_name, _, cls_name = target.partition(":")
        try:
            mod = importlib.import_module(mod_name)
            cls = getattr(mod, cls_name)
        except (ImportError, AttributeError) as exc:
            raise BackendError(f"backend {name!r} cannot be loaded from {target!r}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise BackendError(f"backend {name!r} ({target}) is not a Backend subclass")
        return cls
    return target


def get_backend(name: str, **kwargs) -> Backend:
    """Instantiate the backend registered as ``name`` with keyword arguments.

    Raises
    ------
    BackendError
        For an unknown name, listing the known ones.

    Examples
    --------
    >>> get_backend("sr3", threshold=0.1)
    SR3(threshold=0.1, ...)
    >>> get_backend("nope")
    Traceback (most recent call last):
    ...
    symqp._errors.BackendError: unknown backend 'nope' (known: ...)
    """
    cls = _resolve(name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise BackendError(f"bad options for backend {name!r}: {exc}") from None


def available_backends() -> dict[str, tuple[bool, str]]:
    """``{name: (available, message)}`` for every registered backend, without raising.

    Examples
    --------
    >>> available_backends()["sr3"][0]
    True
    """
    _load_entry_points()
    out: dict[str, tuple[bool, str]] = {}
    for name in sorted(_REGISTRY):
        try:
            cls = _resolve(name)
        except (BackendError, MissingDependencyError) as exc:
            out[name] = (False, str(exc))
            continue
        status = [probe(mod) for mod in cls.requires]
        missing = [msg for ok, msg in status if not ok]
        if missing:
            out[name] = (False, "; ".join(missing))
        else:
            out[name] = (True, ", ".join(msg for _, msg in status) or "ready")
    return out


def pareto_front(candidates: Sequence[Candidate], *, key: Callable[[Candidate], float] | None = None) -> list[Candidate]:
    """Candidates not dominated in (complexity, error), sorted by complexity.

    ``key`` gives the error (default: validation error, or training error where it is NaN).
    """
    err = key or _err
    ordered = sorted(candidates, key=lambda c: (c.complexity, err(c)))
    front: list[Candidate] = []
    best = math.inf
    for c in ordered:
        e = err(c)
        if e < best:
            front.append(c)
            best = e
    if not front and ordered:  # every error is NaN/inf: keep the simplest
        front.append(ordered[0])
    return front


def _err(c: Candidate) -> float:
    e = c.val_error if math.isfinite(c.val_error) else c.train_error
    return e if math.isfinite(e) else math.inf


_RULES = ("tolerance", "knee")


def _check_rule(rule: object) -> None:
    if rule not in _RULES:
        raise BackendError(f"unknown selection rule {rule!r} (use one of {', '.join(_RULES)})")


def select_candidate(
    front: Sequence[Candidate], *, rel_tol: float = 0.05, abs_tol: float = 1e-10, rule: str = "tolerance"
) -> tuple[Candidate, str]:
    """Pick a model on a Pareto front; returns the candidate and a one-line description.

    The error is the validation error where known, else the training error.
    ``rule="tolerance"``: the simplest candidate whose error is within
    ``(1 + rel_tol)·best + abs_tol``. ``rule="knee"``: the point of the front (sorted by
    complexity, log10 error) farthest below the chord joining its two ends, i.e. where
    adding terms stops paying off; fronts of fewer than three points use the tolerance
    rule.

    Examples
    --------
    >>> import sympy as sp
    >>> cs = [Candidate(2, 0.5, 0.5, sp.S(0), ()), Candidate(5, 0.1, 0.1, sp.S(0), ()),
    ...       Candidate(9, 0.099, 0.099, sp.S(0), ())]
    >>> select_candidate(cs)[0].complexity
    5
    >>> cs = [Candidate(1, 1.0, 1.0, sp.S(0), ()), Candidate(4, 1e-3, 1e-3, sp.S(0), ()),
    ...       Candidate(20, 1e-4, 1e-4, sp.S(0), ())]
    >>> select_candidate(cs, rel_tol=0.0, rule="knee")[0].complexity
    4
    """
    _check_rule(rule)
    if not front:
        raise BackendError("empty Pareto front: no candidate model to select")
    ordered = sorted(front, key=lambda c: (c.complexity, _err(c)))
    if rule == "knee" and len(ordered) >= 3:
        cx = np.array([c.complexity for c in ordered], dtype=float)
        le = np.log10(np.maximum([_err(c) for c in ordered], 1e-300))
        finite = np.isfinite(le)
        if finite.sum() >= 3 and cx[-1] > cx[0] and le[finite][0] > le[finite][-1]:
            idx = np.flatnonzero(finite)
            u = (cx[idx] - cx[idx[0]]) / (cx[idx[-1]] - cx[idx[0]])
            v = (le[idx] - le[idx[-1]]) / (le[idx[0]] - le[idx[-1]])
            k = int(idx[np.argmax(1.0 - u - v)])
            which = "validation" if math.isfinite(ordered[k].val_error) else "training"
            return ordered[k], f"knee of the front (complexity vs log {which} error)"
    best = min(_err(c) for c in ordered)
    limit = (1 + rel_tol) * best + abs_tol
    for c in ordered:
        if _err(c) <= limit:
            desc = (
                f"smallest complexity with {'validation' if math.isfinite(c.val_error) else 'training'} "
                f"error <= (1 + {rel_tol:g}) * best + {abs_tol:g}"
            )
            if rule == "knee":
                desc += " (front too short for the knee rule)"
            return c, desc
    c = min(ordered, key=_err)
    return c, "lowest error"
