"""The estimator contract shared by every learner and backend (scikit-learn conventions).

Parameters are the keyword arguments of ``__init__``, read from its signature, so
``get_params`` / ``set_params`` / ``repr`` and ``sklearn.base.clone`` work without a
hand-kept parameter list. ``__init__`` only stores its arguments; validation happens in
``fit``, with the ``check_*`` helpers below, which raise :class:`ParameterError` naming the
estimator and the parameter.

scikit-learn's own ``BaseEstimator`` would do the same, but ``import sklearn.base`` costs
about 2 s here (measured with ``python -X importtime``), and ``import symqp`` must stay
light; this module is the part of it that symqp needs.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Iterable
from typing import Any, Literal, overload

import numpy as np

from ._errors import ParameterError

__all__ = [
    "Estimator",
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_seed",
]

_MISSING = object()


class Estimator:
    """Base class: parameters from the ``__init__`` signature.

    Subclasses write an ``__init__`` with keyword arguments that stores each of them
    unchanged under its own name. Calling the constructor with an unknown keyword raises
    :class:`ParameterError` (a ``ValueError``), as does ``set_params``.

    Examples
    --------
    >>> class Ridge(Estimator):
    ...     def __init__(self, *, alpha: float = 1.0, fit_intercept: bool = True) -> None:
    ...         self.alpha = alpha
    ...         self.fit_intercept = fit_intercept
    >>> r = Ridge(alpha=0.5)
    >>> r
    Ridge(alpha=0.5)
    >>> r.set_params(fit_intercept=False).get_params()
    {'alpha': 0.5, 'fit_intercept': False}
    >>> r.set_params(beta=1)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: unknown parameter 'beta' of Ridge (valid: alpha, fit_intercept)
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_symqp_checked", False):
            return
        sig = inspect.signature(init)
        for p in list(sig.parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must list its parameters explicitly (no *args/**kwargs)")

        @functools.wraps(init)
        def checked(self: Any, *args: Any, **kw: Any) -> None:
            try:
                sig.bind(self, *args, **kw)
            except TypeError as exc:
                raise ParameterError(_binding_message(cls, kw, exc)) from None
            init(self, *args, **kw)

        checked._symqp_checked = True  # type: ignore[attr-defined]
        cls.__init__ = checked  # type: ignore[method-assign]

    @classmethod
    def _get_param_names(cls) -> tuple[str, ...]:
        init = cls.__init__
        if init is object.__init__:
            return ()
        params = list(inspect.signature(init).parameters.values())[1:]
        return tuple(p.name for p in params)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters as a dict; ``deep`` adds ``name__sub`` of nested estimators."""
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters (``name`` or ``name__sub`` for nested ones); returns self."""
        names = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in names:
                raise ParameterError(
                    f"unknown parameter {name!r} of {type(self).__name__} (valid: {', '.join(names) or 'none'})"
                )
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            inner = getattr(self, name)
            if not hasattr(inner, "set_params"):
                raise ParameterError(f"parameter {name!r} of {type(self).__name__} has no sub-parameters")
            inner.set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name in self._get_param_names():
            default = sig.parameters[name].default
            value = getattr(self, name, _MISSING)
            if value is _MISSING or _same(value, default):
                continue
            shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        eq = a == b
        return bool(eq) if not isinstance(eq, np.ndarray) else False
    except Exception:  # noqa: BLE001 - objects that cannot be compared are shown
        return False


def _binding_message(cls: type, kw: dict[str, Any], exc: TypeError) -> str:
    names = list(inspect.signature(cls).parameters)
    unknown = [k for k in kw if k not in names]
    if unknown:
        return f"unknown parameter {unknown[0]!r} of {cls.__name__} (valid: {', '.join(names) or 'none'})"
    return f"{cls.__name__}: {exc}"


# -- validation helpers (used in fit) ------------------------------------------------------------


def _where(owner: Any, name: str) -> str:
    label = owner if isinstance(owner, str) else type(owner).__name__
    return f"{label}.{name}" if label else name


@overload
def check_int(owner: Any, name: str, value: Any, *, minimum: int | None = ..., allow_none: Literal[False] = ...) -> int: ...
@overload
def check_int(owner: Any, name: str, value: Any, *, minimum: int | None = ..., allow_none: bool) -> int | None: ...
def check_int(owner: Any, name: str, value: Any, *, minimum: int | None = 0, allow_none: bool = False) -> int | None:
    """An integer parameter (bools refused) at least ``minimum``.

    Examples
    --------
    >>> check_int("SR3", "max_iter", 5, minimum=1)
    5
    >>> check_int("SR3", "max_iter", 0, minimum=1)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: SR3.max_iter must be an integer >= 1, got 0
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or (
        minimum is not None and value < minimum
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ParameterError(f"{_where(owner, name)} must be an integer{bound}, got {value!r}")
    return int(value)


@overload
def check_float(
    owner: Any, name: str, value: Any, *, low: float | None = ..., high: float | None = ..., low_open: bool = ...,
    high_open: bool = ..., allow_none: Literal[False] = ...,
) -> float: ...
@overload
def check_float(
    owner: Any, name: str, value: Any, *, low: float | None = ..., high: float | None = ..., low_open: bool = ...,
    high_open: bool = ..., allow_none: bool,
) -> float | None: ...
def check_float(
    owner: Any,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> float | None:
    """A finite real parameter in [low, high] (ends open where asked).

    Examples
    --------
    >>> check_float("SR3", "nu", 1e-5, low=0, low_open=True)
    1e-05
    >>> check_float("SR3", "nu", -1.0, low=0, low_open=True)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: SR3.nu must be a finite number > 0, got -1.0
    """
    if value is None and allow_none:
        return None
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    v = float(value) if ok else math.nan
    ok = ok and math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        rng = (" " + " and ".join(parts)) if parts else ""
        raise ParameterError(f"{_where(owner, name)} must be a finite number{rng}, got {value!r}")
    return v


def check_choice(owner: Any, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of a fixed set of values.

    Examples
    --------
    >>> check_choice("SR3", "regularizer", "l3", ("l0", "l1"))
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: SR3.regularizer must be one of 'l0', 'l1'; got 'l3'
    """
    choices = tuple(choices)
    if not any(value == c and type(value) is type(c) for c in choices):
        raise ParameterError(f"{_where(owner, name)} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(owner: Any, name: str, value: Any) -> bool:
    """A true/false parameter."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{_where(owner, name)} must be True or False, got {value!r}")
    return bool(value)


def check_seed(owner: Any, name: str, value: Any) -> int:
    """A seed for ``numpy.random.default_rng``: an integer in [0, 2**63).

    Examples
    --------
    >>> check_seed("fit", "seed", -1)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: fit.seed must be an integer in [0, 2**63), got -1
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**63:
        raise ParameterError(f"{_where(owner, name)} must be an integer in [0, 2**63), got {value!r}")
    return int(value)
