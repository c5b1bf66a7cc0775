"""The abstract backend: one ``fit`` for every regression method, and Pareto-front selection.

:meth:`Backend.fit` does the work that all backends share: it checks the selection
settings, the backend's own parameters (:meth:`Backend._check_params`) and the problem,
imports the optional modules the backend needs, limits the BLAS threads where asked, asks
the backend for its candidate models (:meth:`Backend._candidates`), builds the Pareto front,
selects a model with the shared settings (``selection_rule``, ``rel_tol``, ``abs_tol``),
derives ``∇V`` and ``f = −∇V + g`` exactly, measures the diagnostics every fit reports and
stores the :class:`Fit` as ``fit_``.
"""

from __future__ import annotations

import abc
import math
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from symqp._errors import BackendError, SymqpError, first_line
from symqp._estimator import Estimator, check_choice, check_float
from symqp._optional import require

from ._blas import limit_blas
from ._problem import (
    Candidate,
    Fit,
    Problem,
    constraint_residual,
    exact_field,
    expression_errors,
    f_residual,
    orthogonality_residual,
)

__all__ = ["Backend", "Search", "fit_problem", "pareto_front", "select_candidate"]

SELECTION_RULES = ("tolerance", "knee")
_CHECK_POINTS = 5000  # points on which orthogonality and the f residual are measured


@dataclass
class Search:
    """What a backend's :meth:`~Backend._candidates` hands back to :meth:`Backend.fit`.

    Parameters
    ----------
    candidates : list of Candidate
        The models found (any order; dominated ones are dropped from the front).
    chosen : Candidate or None
        The backend's own choice (fixed threshold, Bhat's rule, a refit after
        :meth:`Backend._select`); None lets :meth:`Backend.fit` select on the front.
    selection : str
        How the candidates were made, or how ``chosen`` was picked; the selection rule's
        description is appended when ``Backend.fit`` selects.
    diagnostics, timings : dict
        Backend-specific diagnostics and timings (seconds) of the search.
    """

    candidates: list[Candidate]
    chosen: Candidate | None = None
    selection: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class Backend(Estimator, abc.ABC):
    """A regression method turning a :class:`Problem` into a symbolic :class:`Fit`.

    Subclasses write an ``__init__`` that stores its keyword arguments (scikit-learn
    style: ``get_params``, ``set_params`` and ``sklearn.base.clone`` then work), including
    the three selection settings every backend takes:

    - ``selection_rule`` : {"tolerance", "knee"}, how the model is picked on the front
      (:func:`select_candidate`);
    - ``rel_tol``, ``abs_tol`` : float >= 0, the tolerance rule's "simplest model with
      error <= (1 + rel_tol) * best + abs_tol".

    and implement two methods: :meth:`_check_params` (validate their own parameters with
    the ``symqp._estimator.check_*`` helpers) and :meth:`_candidates` (the search). Class
    attributes: ``name`` (registry name), ``requires`` (optional modules imported before
    the search) and ``blas_threads`` (BLAS threads during the search; None leaves them).
    :meth:`fit` returns the backend with the result in ``fit_``;
    :func:`fit_problem` returns the :class:`Fit` itself.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from symqp.library import poly
    >>> class Zero(Backend):
    ...     name = "zero"
    ...     def __init__(self, *, selection_rule="tolerance", rel_tol=0.05, abs_tol=1e-9):
    ...         self.selection_rule = selection_rule
    ...         self.rel_tol = rel_tol
    ...         self.abs_tol = abs_tol
    ...     def _check_params(self):
    ...         pass
    ...     def _candidates(self, problem):
    ...         g0 = (sp.S(0),) * problem.d
    ...         return Search([self._candidate(problem, sp.S(0), g0, 1)], selection="V = 0")
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    >>> pb = Problem(X, -X, (X**2).sum(1) / 2, np.zeros_like(X), poly((x, y), 2))
    >>> Zero().fit(pb).fit_.V
    0
    >>> Zero(rel_tol=-1).fit(pb)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: Zero.rel_tol must be a finite number >= 0, got -1
    """

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    blas_threads: ClassVar[int | None] = None

    # the selection settings; each subclass's __init__ takes and stores them
    selection_rule: str
    rel_tol: float
    abs_tol: float

    @typing.final
    def fit(self, problem: Problem) -> Backend:
        """Fit V and g to the problem's targets; the result is stored as ``fit_``.

        Returns
        -------
        Backend
            ``self``.

        Raises
        ------
        ParameterError
            For an invalid parameter (the message names it).
        BackendError
            For something that is not a :class:`Problem` or a search that finds nothing.
        MissingDependencyError
            When an optional module the backend needs cannot be imported.
        """
        self.check()
        if not isinstance(problem, Problem):
            raise BackendError(f"expected a Problem, got {type(problem).__name__}")
        t0 = time.perf_counter()
        with limit_blas(self.blas_threads):
            search = self._candidates(problem)
            t1 = time.perf_counter()
            if search.chosen is None:
                front, chosen, rule = self._select(search.candidates)
                selection = f"{search.selection}: {rule}" if search.selection else rule
            else:
                chosen, selection = search.chosen, search.selection
                front = pareto_front([*search.candidates, chosen])
                if all(c is not chosen for c in front):
                    front = sorted([*front, chosen], key=lambda c: c.complexity)
            self.fit_ = _build_fit(problem, chosen, front, selection, search, self.name)
        self.fit_.timings["selection"] = time.perf_counter() - t1
        self.fit_.timings["total"] = time.perf_counter() - t0
        return self

    def check(self) -> Backend:
        """Check every parameter and import the optional modules, without fitting anything.

        Pipelines call it before any expensive step (training a network), so that a bad
        setting or a missing extra is reported at once; :meth:`fit` calls it too.

        Returns
        -------
        Backend
            ``self``.

        Raises
        ------
        ParameterError
            For an invalid parameter (the message names it).
        MissingDependencyError
            When an optional module the backend needs cannot be imported.
        """
        check_choice(self, "selection_rule", self.selection_rule, SELECTION_RULES)
        check_float(self, "rel_tol", self.rel_tol, low=0.0)
        check_float(self, "abs_tol", self.abs_tol, low=0.0)
        self._check_params()
        for module in self.requires:
            require(module)
        return self

    def _select(self, candidates: Sequence[Candidate]) -> tuple[list[Candidate], Candidate, str]:
        """Pareto front of ``candidates``, the model the selection settings pick, and how."""
        front = pareto_front(candidates)
        rule = self.selection_rule
        chosen, how = select_candidate(front, rel_tol=self.rel_tol, abs_tol=self.abs_tol, rule=rule)
        return front, chosen, how

    @staticmethod
    def _candidate(
        problem: Problem, V: Any, g: Sequence[Any], complexity: int, params: dict | None = None
    ) -> Candidate:
        """A candidate from expressions of V and g, scored on the problem's points."""
        g = tuple(g)
        tr, va = expression_errors(problem, V, g)
        return Candidate(int(complexity), tr, va, V, g, dict(params or {}))

    @abc.abstractmethod
    def _check_params(self) -> None:
        """Validate the backend's own parameters (raise ``ParameterError`` naming one)."""

    @abc.abstractmethod
    def _candidates(self, problem: Problem) -> Search:
        """Search the problem's models: candidates, optionally the backend's own choice."""


def _build_fit(problem: Problem, chosen: Candidate, front: list[Candidate], selection: str, search: Search,
               backend: str) -> Fit:
    variables = problem.variables
    V, g = chosen.V, tuple(chosen.g)
    grad, f = exact_field(V, g, variables)
    m = min(problem.n, _CHECK_POINTS)
    diagnostics = {
        **chosen.params,
        **search.diagnostics,
        "train_error": chosen.train_error,
        "val_error": chosen.val_error,
        "orthogonality": orthogonality_residual(V, g, variables, problem.X[:m]),
        "f_residual": f_residual(f, variables, problem.X[:m], problem.f[:m]),
        # without a coefficient matrix, f = −∇V + g is built symbolically: it holds exactly
        "constraint_residual": 0.0 if chosen.coef is None else constraint_residual(problem, chosen.coef),
    }
    coef = None if chosen.coef is None else np.array(chosen.coef, dtype=float)
    return Fit(V=V, grad_V=grad, g=g, f=f, coef=coef, front=list(front), selection=selection,
               timings=dict(search.timings), diagnostics=diagnostics, backend=backend)


def fit_problem(backend: Backend | str, problem: Problem) -> Fit:
    """Fit ``problem`` with a backend (or a registered name) and return the :class:`Fit`.

    Errors of third-party solvers become a one-line :class:`~symqp.BackendError`.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from symqp.library import poly
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    >>> pb = Problem(X, -X, (X**2).sum(1) / 2, np.zeros_like(X), poly((x, y), 2))
    >>> fit_problem("stlsq", pb).U
    1.0*x**2 + 1.0*y**2
    """
    if isinstance(backend, str):
        from ._registry import get_backend

        backend = get_backend(backend)
    if not isinstance(backend, Backend):
        raise BackendError(f"backend must be a Backend or a registered name, got {type(backend).__name__}")
    try:
        return backend.fit(problem).fit_
    except SymqpError:
        raise
    except Exception as exc:  # solver internals -> one-line message
        label = backend.name or type(backend).__name__
        raise BackendError(f"regression backend {label} failed: {type(exc).__name__}: {first_line(exc)}") from exc


def pareto_front(candidates: Sequence[Candidate], *, key: Callable[[Candidate], float] | None = None) -> list[Candidate]:
    """Candidates not dominated in (complexity, error), sorted by complexity.

    ``key`` gives the error (default: validation error, or training error where it is NaN).

    Examples
    --------
    >>> import sympy as sp
    >>> cs = [Candidate(1, 0.5, 0.5, sp.S(0), ()), Candidate(2, 0.7, 0.7, sp.S(0), ()),
    ...       Candidate(3, 0.1, 0.1, sp.S(0), ())]
    >>> [c.complexity for c in pareto_front(cs)]
    [1, 3]
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
    if rule not in SELECTION_RULES:
        raise BackendError(f"unknown selection rule {rule!r} (use one of {', '.join(SELECTION_RULES)})")
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
