"""The interface every identification route implements, and the registry of routes.

A route is one module with one :class:`Route` subclass: ``run(pairs, settings)`` turns
snapshot pairs into a :class:`~symqp.result.Result`. :func:`symqp.fit` picks the route from
``method`` (``"neural"``, ``"symbolic"``, or ``"auto"``, which tries the symbolic route
first and falls back to the neural one when the result is not credible).
"""

from __future__ import annotations

import abc
import importlib
from typing import Any, ClassVar

from .._errors import ParameterError

__all__ = ["Route", "get_route", "register_route", "route_names"]


class Route(abc.ABC):
    """One way from snapshot pairs to a :class:`~symqp.result.Result`.

    Subclasses set ``name`` and implement :meth:`run`; the result records the route in
    ``metrics["route"]``.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def run(self, pairs: Any, settings: Any) -> Any:
        """Identify U = 2V, g and f from ``pairs`` (a :class:`~symqp.data.Pairs`) under ``settings``."""


# name -> "module:Class", imported only when the route is used
_ROUTES: dict[str, str] = {
    "neural": "symqp.identify._neural:NeuralRoute",
    "symbolic": "symqp.identify._symbolic:SymbolicRoute",
}


def register_route(name: str, target: str) -> None:
    """Register a route class under ``name`` as a lazy ``"module:Class"`` path.

    Examples
    --------
    >>> register_route("neural-copy", "symqp.identify._neural:NeuralRoute")
    >>> type(get_route("neural-copy")).__name__
    'NeuralRoute'
    """
    if not isinstance(name, str) or not name.strip() or not isinstance(target, str) or target.count(":") != 1:
        raise ParameterError(f"a route is registered as name -> 'module:Class', got {name!r} -> {target!r}")
    _ROUTES[name] = target


def route_names() -> tuple[str, ...]:
    """The registered route names."""
    return tuple(_ROUTES)


def get_route(name: str) -> Route:
    """An instance of the route registered as ``name``."""
    if name not in _ROUTES:
        raise ParameterError(f"unknown route {name!r} (known: {', '.join(_ROUTES)})")
    mod_name, _, cls_name = _ROUTES[name].partition(":")
    cls = getattr(importlib.import_module(mod_name), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, Route)):
        raise ParameterError(f"route {name!r} ({_ROUTES[name]}) is not a Route subclass")
    return cls()
