"""The lazy registry of backends by name (``sr3``, ``stlsq``, ``operon``, ``pysr``, ``pysindy``, plugins)."""

from __future__ import annotations

import importlib
from typing import Any

from symqp._errors import BackendError, MissingDependencyError
from symqp._optional import probe

from ._base import Backend

__all__ = ["available_backends", "get_backend", "register_backend"]

# name -> "module:Class" (imported only when asked for; a leading dot: relative to this
# package) or a Backend subclass
_REGISTRY: dict[str, str | type[Backend]] = {
    "sr3": "._sr3:SR3",
    "stlsq": "._stlsq:STLSQ",
    "operon": "._operon:Operon",
    "pysr": "._pysr:PySR",
    "pysindy": "._pysindy:PySINDy",
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
    >>> register_backend("least-squares", type(get_backend("stlsq")))
    >>> get_backend("least-squares", threshold=0.1)
    STLSQ(threshold=0.1)
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
            mod = importlib.import_module(mod_name, package=__package__)
            cls = getattr(mod, cls_name)
        except (ImportError, AttributeError) as exc:
            raise BackendError(f"backend {name!r} cannot be loaded from {target!r}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise BackendError(f"backend {name!r} ({target}) is not a Backend subclass")
        return cls
    return target


def get_backend(name: str, **params: Any) -> Backend:
    """Instantiate the backend registered as ``name`` with its parameters.

    Raises
    ------
    BackendError
        For an unknown name, listing the known ones.
    ParameterError
        For a parameter the backend does not have (naming it and the valid ones).

    Examples
    --------
    >>> get_backend("sr3", threshold=0.1)
    SR3(threshold=0.1)
    >>> get_backend("nope")
    Traceback (most recent call last):
    ...
    symqp._errors.BackendError: unknown backend 'nope' (known: ...)
    >>> get_backend("sr3", thresh=0.1)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: unknown parameter 'thresh' of SR3 (valid: threshold, ...)
    """
    return _resolve(name)(**params)


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
