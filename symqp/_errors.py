"""Exception types raised by symqp.

Every error a user can provoke with bad input is a :class:`SymqpError`, so the command
line can print a one-line message instead of a traceback. The subclasses also derive from
the matching built-in type (``ValueError``, ``ImportError``, ...) so that ordinary
``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = [
    "first_line",
    "SymqpError",
    "DataError",
    "ParseError",
    "LibraryError",
    "BackendError",
    "MissingDependencyError",
    "ResultFormatError",
    "TrainingError",
    "AnalysisError",
    "ParameterError",
    "IdentificationError",
]


class SymqpError(Exception):
    """Base class of all errors symqp raises on purpose."""


class DataError(SymqpError, ValueError):
    """Trajectory / snapshot data that is malformed (shape, NaN, step, names, ...)."""


class ParseError(SymqpError, ValueError):
    """A user string (formula, library spec, model string) that the safe parser refuses."""


class LibraryError(SymqpError, ValueError):
    """A function library that cannot be built or used as asked."""


class BackendError(SymqpError, ValueError):
    """A regression backend that is unknown, misconfigured or fed an inconsistent problem."""


class MissingDependencyError(SymqpError, ImportError):
    """An optional dependency (extra) that is not installed or cannot start."""


class ResultFormatError(SymqpError, ValueError):
    """A saved result file with the wrong schema or content."""


class TrainingError(SymqpError, RuntimeError):
    """Neural training that diverged or produced non-finite values."""


class AnalysisError(SymqpError, ValueError):
    """An analysis request that cannot be carried out (bad epsilon, empty box, ...)."""


class IdentificationError(SymqpError, ValueError):
    """A route that cannot identify a credible model from these data (no stable equilibrium,
    a singular Lyapunov equation, f not in the library, ...); ``method="auto"`` falls back."""


class ParameterError(SymqpError, ValueError, TypeError):
    """An unknown or invalid estimator parameter (the message names it).

    A ``ValueError`` as in scikit-learn's ``set_params``; also a ``TypeError`` so that code
    written for Python's own "unexpected keyword argument" error keeps working.
    """


def first_line(exc: BaseException) -> str:
    """First line of an exception's message (its type name when the message is empty).

    Used to turn third-party errors into the project's one-line messages.

    Examples
    --------
    >>> first_line(ValueError("bad shape\\n  details"))
    'bad shape'
    >>> first_line(KeyError())
    'KeyError'
    """
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
