"""Any pysindy optimizer that takes equality constraints, as a symqp backend.

The decomposition ``f = −∇V + g`` is a set of linear equality constraints on the
coefficient matrix ``Ξ = [f_1..f_d | V | g_1..g_d]`` (:func:`symqp.library.constraint_matrix`).
pysindy's constrained optimizers (``ConstrainedSR3``, ``TrappingSR3``, ``StableLinearSR3``,
``MIOSR``) take such constraints as ``constraint_lhs`` / ``constraint_rhs``; this backend
hands them the structural constraints (plus the problem's own and the masks of V and g),
fits ``Θ Ξ ≈ [f, V, g]`` and returns the usual :class:`~symqp.backends.Fit`. Optimizers
without equality constraints (``STLSQ``, ``SR3``, scikit-learn's) are refused when the
backend's parameters are checked, before any work: they cannot keep f, V and g consistent.

pysindy rebuilds its constraint bookkeeping in the optimizer's constructor, so the
optimizer given is never modified: each fit builds a fresh one from its parameters
(``get_params``) with the constraints set.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from symqp._errors import BackendError, ParameterError, first_line

from ._base import Backend, Search
from ._problem import Problem, coef_candidate

__all__ = ["PySINDy", "constrained_optimizer_problem"]

#: pysindy's optimizers that take equality constraints (a hint in messages; any optimizer
#: with ``constraint_lhs`` and ``constraint_rhs`` parameters is accepted)
CONSTRAINED = ("ConstrainedSR3", "TrappingSR3", "StableLinearSR3", "MIOSR")


def constrained_optimizer_problem(optimizer: Any) -> str | None:
    """Why ``optimizer`` cannot be used by the pysindy backend, or None when it can.

    Examples
    --------
    >>> import pysindy as ps
    >>> constrained_optimizer_problem(ps.ConstrainedSR3()) is None
    True
    >>> constrained_optimizer_problem(ps.STLSQ())
    'pysindy optimizer STLSQ takes no equality constraints (no constraint_lhs/constraint_rhs); ...'
    """
    name = type(optimizer).__name__
    module = type(optimizer).__module__ or ""
    hint = f"f = -grad V + g needs them: use one of {', '.join(CONSTRAINED)}"
    if module.split(".")[0] != "pysindy" or not callable(getattr(optimizer, "fit", None)):
        return f"expected a pysindy optimizer, got {name}"
    try:
        params = optimizer.get_params(deep=False)
    except Exception as exc:  # noqa: BLE001 - a broken estimator
        return f"pysindy optimizer {name} has no readable parameters: {first_line(exc)}"
    if "constraint_lhs" not in params or "constraint_rhs" not in params:
        return f"pysindy optimizer {name} takes no equality constraints (no constraint_lhs/constraint_rhs); {hint}"
    if params.get("constraint_lhs") is not None or params.get("constraint_rhs") is not None:
        return (f"pysindy optimizer {name} already has constraints; leave constraint_lhs/constraint_rhs unset "
                "(extra constraints go in Problem.constraints)")
    if params.get("inequality_constraints"):
        return f"pysindy optimizer {name} is set for inequality constraints; the decomposition needs equalities"
    return None


class PySINDy(Backend):
    """A pysindy optimizer with equality constraints fitting ``Θ Ξ ≈ [f, V, g]``.

    Parameters
    ----------
    optimizer : pysindy optimizer or None
        An optimizer with ``constraint_lhs`` / ``constraint_rhs`` parameters
        (``ConstrainedSR3`` and friends), left unset: the backend sets them. ``None``:
        ``ConstrainedSR3(reg_weight_lam=500, relax_coeff_nu=1e-5, regularizer="l0",
        max_iter=30, tol=1e-10)``, i.e. a hard threshold of 0.1 (``t = sqrt(2 ν λ)``) on
        the problem's scaled coefficients.
    grid : dict or None
        Optimizer parameters to sweep, ``{"reg_weight_lam": [50, 500, 5000]}``; every
        combination is one candidate of the Pareto front and the selection settings pick
        one (on held-out points when the problem has them). ``None``: one fit.
    selection_rule, rel_tol, abs_tol
        How the model is picked on the front (see :class:`Backend`).

    Examples
    --------
    >>> import numpy as np, sympy as sp, pysindy as ps
    >>> from symqp.library import poly
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    >>> g = np.column_stack([-X[:, 1], X[:, 0]])
    >>> pb = Problem(X, -X + g, (X**2).sum(1) / 2, g, poly((x, y), 2))
    >>> fit = PySINDy(ps.ConstrainedSR3(reg_weight_lam=500, relax_coeff_nu=1e-5)).fit(pb).fit_
    >>> fit.U.xreplace({c: round(c, 6) for c in fit.U.atoms(sp.Float)})
    1.0*x**2 + 1.0*y**2
    >>> PySINDy(ps.STLSQ()).fit(pb)
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: PySINDy.optimizer: pysindy optimizer STLSQ takes no equality constraints ...
    """

    name = "pysindy"
    requires = ("pysindy",)
    # pysindy's dense inverses are far slower multithreaded on a busy 2-core machine
    blas_threads = 1

    def __init__(
        self,
        optimizer: Any = None,
        *,
        grid: Mapping[str, Any] | None = None,
        selection_rule: str = "tolerance",
        rel_tol: float = 0.05,
        abs_tol: float = 1e-9,
    ) -> None:
        self.optimizer = optimizer
        self.grid = grid
        self.selection_rule = selection_rule
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol

    def _check_params(self) -> None:
        if self.optimizer is not None:
            why = constrained_optimizer_problem(self.optimizer)
            if why:
                raise ParameterError(f"PySINDy.optimizer: {why}")
        if self.grid is not None:
            if not isinstance(self.grid, Mapping) or not self.grid:
                raise ParameterError("PySINDy.grid must be a non-empty dict {parameter: [values]} or None")
            valid = set(self._base().get_params(deep=False)) if self.optimizer is not None else None
            for key, values in self.grid.items():
                if valid is not None and key not in valid:
                    raise ParameterError(f"PySINDy.grid: {type(self.optimizer).__name__} has no parameter {key!r}")
                if key in ("constraint_lhs", "constraint_rhs", "constraint_order", "equality_constraints"):
                    raise ParameterError(f"PySINDy.grid: {key!r} is set by the backend")
                if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
                    raise ParameterError(f"PySINDy.grid[{key!r}] must be a non-empty list of values")

    def _base(self) -> Any:
        if self.optimizer is not None:
            return self.optimizer
        import pysindy as ps

        return ps.ConstrainedSR3(reg_weight_lam=500.0, relax_coeff_nu=1e-5, regularizer="l0", max_iter=30,
                                 tol=1e-10)  # fmt: skip

    def _optimizer(self, C: np.ndarray, changes: Mapping[str, Any]) -> Any:
        base = self._base()
        params = dict(base.get_params(deep=False))
        params.update(changes)
        params.update(constraint_lhs=C, constraint_rhs=np.zeros(C.shape[0]))
        if "constraint_order" in params:
            params["constraint_order"] = "feature"
        if "equality_constraints" in params:
            params["equality_constraints"] = True
        try:
            return type(base)(**params)
        except Exception as exc:  # pysindy validates in its constructor
            raise BackendError(f"pysindy {type(base).__name__} refused its settings: {first_line(exc)}") from exc

    def _candidates(self, problem: Problem) -> Search:
        from symqp.library import constraint_matrix

        t0 = time.perf_counter()
        lib = problem.library
        C = np.asarray(constraint_matrix(lib, problem.d, v_mask=problem.v_mask, g_mask=problem.g_mask,
                                         order="feature"), dtype=float)  # fmt: skip
        if problem.constraints is not None:
            C = np.vstack([C, problem.constraints])
        train = (np.asarray(lib.evaluate(problem.X), dtype=float), problem.targets("train"))
        held = (np.asarray(lib.evaluate(problem.X_val), dtype=float), problem.targets("val")) \
            if problem.has_validation else None
        timings = {"setup": time.perf_counter() - t0}
        keys = list(self.grid or {})
        combos = list(itertools.product(*[list(self.grid[k]) for k in keys])) if keys else [()]
        t1 = time.perf_counter()
        cands, notes = [], []
        for values in combos:
            changes = dict(zip(keys, values))
            opt = self._optimizer(C, changes)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                opt.fit(train[0], train[1])
            coef = np.asarray(opt.coef_, dtype=float).T  # pysindy: (targets, features)
            if coef.shape != (problem.q, 2 * problem.d + 1):
                raise BackendError(f"pysindy {type(opt).__name__} returned coefficients of shape {coef.T.shape}")
            params = {"optimizer": type(opt).__name__, **{k: _plain(v) for k, v in changes.items()}}
            if caught:
                params["warning"] = first_line(caught[-1].message)
                notes.append(params["warning"])
            cands.append(coef_candidate(problem, coef, train, held, params))
        timings["solve"] = time.perf_counter() - t1
        what = type(self._base()).__name__
        selection = f"pysindy {what}" + (f", sweep of {', '.join(keys)} ({len(combos)} fits)" if keys else "")
        return Search(cands, selection=selection, timings=timings,
                      diagnostics={"optimizer": what, "optimizer_warnings": len(notes)})  # fmt: skip


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
