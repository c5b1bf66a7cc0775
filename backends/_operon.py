"""Offline evolutionary regression with pyoperon's ``SymbolicRegressor`` (C++ GP).

V and every component g_k are fitted separately (multi-objective: R² and length, so each
run leaves a Pareto front). The model strings are read back through the allow-list
parser, expanded and pruned of negligible terms; ∇V is derived exactly and
``f = −∇V + g``. Nothing constrains the pieces, so the orthogonality residual of (∇V, g)
and the f residual are reported in the diagnostics.
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy as sp

from symqp._errors import BackendError, ParseError
from symqp._optional import require
from symqp._parse import parse_expr_safe

from ._base import Backend, _check_rule, pareto_front, select_candidate
from ._problem import (
    Candidate,
    Fit,
    Problem,
    exact_field,
    expression_errors,
    f_residual,
    orthogonality_residual,
)

__all__ = ["Operon", "prune_expression", "term_count"]

_SYMBOLS = ("add", "sub", "mul", "div", "square", "exp", "log", "sin", "cos", "tanh", "sqrt", "constant", "variable")


def term_count(expr: sp.Expr) -> int:
    """Number of additive terms of an expanded expression (0 for zero).

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> term_count(x**2 - 2*x + y), term_count(sp.S(0))
    (3, 0)
    """
    expr = sp.expand(expr)
    if expr == 0:
        return 0
    return len(sp.Add.make_args(expr))


def prune_expression(expr: sp.Expr, variables, X: np.ndarray, *, rel_tol: float = 1e-6) -> sp.Expr:
    """Expand ``expr`` and drop additive terms whose RMS on the points ``X`` is below
    ``rel_tol`` times the RMS of the whole expression.

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> X = np.linspace(-1, 1, 11)[:, None]
    >>> prune_expression(1.0000001*x**2 + 3e-9*x - 1e-10, (x,), X)
    1.0000001*x**2
    """
    expr = sp.expand(expr)
    terms = sp.Add.make_args(expr)
    if len(terms) <= 1:
        return expr
    funcs = sp.lambdify(tuple(variables), list(terms), modules="numpy")
    vals = funcs(*np.asarray(X, dtype=float).T)
    n = X.shape[0]
    cols = np.column_stack([np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in vals])
    rms_terms = np.sqrt(np.mean(cols**2, axis=0))
    total = float(np.sqrt(np.mean(cols.sum(axis=1) ** 2)))
    ref = max(total, float(np.max(rms_terms)))
    if not math.isfinite(ref) or ref == 0:
        return expr
    keep = [t for t, r in zip(terms, rms_terms) if r >= rel_tol * ref]
    return sp.Add(*keep)


class Operon(Backend):
    """Genetic-programming fit of V and each g_k with pyoperon (offline, seeded).

    Parameters
    ----------
    generations, population_size, max_evaluations : int
        Evolution budget per target.
    optimizer_iterations : int
        Levenberg–Marquardt steps on the constants of every offspring; > 0 is needed to
        recover exact polynomial coefficients.
    max_length : int
        Maximal tree length.
    allowed_symbols : str
        Operon primitives (comma-separated), e.g. ``"add,sub,mul,constant,variable"``.
    max_points : int
        Training points used by the search (random subset; all points score the result).
    prune_tol : float
        Relative RMS below which an expanded term is dropped (:func:`prune_expression`).
    rel_tol, abs_tol : float
        Selection rule on the combined front (see :func:`select_candidate`).
    selection_rule : {"tolerance", "knee"}
        How the model is picked on the front (:func:`~symqp.backends.select_candidate`).
    n_threads : int
        Operon worker threads.
    seed : int
        Seed of the search and of the point subset.

    Examples
    --------
    >>> Operon(generations=20).generations
    20
    """

    name = "operon"
    requires = ("pyoperon",)

    def __init__(
        self,
        *,
        generations: int = 100,
        population_size: int = 500,
        max_evaluations: int = 100_000,
        optimizer_iterations: int = 10,
        max_length: int = 40,
        allowed_symbols: str = "add,sub,mul,constant,variable",
        max_points: int = 2000,
        prune_tol: float = 1e-6,
        rel_tol: float = 0.05,
        abs_tol: float = 1e-9,
        selection_rule: str = "tolerance",
        n_threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.generations = generations
        self.population_size = population_size
        self.max_evaluations = max_evaluations
        self.optimizer_iterations = optimizer_iterations
        self.max_length = max_length
        self.allowed_symbols = allowed_symbols
        self.max_points = max_points
        self.prune_tol = prune_tol
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.selection_rule = selection_rule
        self.n_threads = n_threads
        self.seed = seed

    def _check(self) -> None:
        for name in ("generations", "population_size", "max_evaluations", "max_length", "max_points", "n_threads"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise BackendError(f"{name} must be a positive integer, got {val!r}")
        if isinstance(self.optimizer_iterations, bool) or not isinstance(self.optimizer_iterations, int) \
                or self.optimizer_iterations < 0:
            raise BackendError(f"optimizer_iterations must be an integer >= 0, got {self.optimizer_iterations!r}")
        if not isinstance(self.allowed_symbols, str):
            raise BackendError(f"allowed_symbols must be a string, got {type(self.allowed_symbols).__name__}")
        unknown = [s for s in self.allowed_symbols.split(",") if s.strip() not in _SYMBOLS]
        if unknown:
            raise BackendError(f"unknown operon symbol(s) {', '.join(unknown)} (known: {', '.join(_SYMBOLS)})")
        if not (isinstance(self.prune_tol, (int, float)) and 0 <= self.prune_tol < 1):
            raise BackendError(f"prune_tol must lie in [0, 1), got {self.prune_tol!r}")
        _check_rule(self.selection_rule)

    def _search(self, X: np.ndarray, y: np.ndarray, names: list[str], variables, X_score: np.ndarray):
        """One operon run: [(expression, operon length)] on its front and the MDL choice."""
        sk = require("pyoperon.sklearn")
        reg = sk.SymbolicRegressor(
            allowed_symbols=self.allowed_symbols,
            objectives=["r2", "length"],
            optimizer_iterations=self.optimizer_iterations,
            generations=self.generations,
            population_size=self.population_size,
            max_evaluations=self.max_evaluations,
            max_length=self.max_length,
            n_threads=self.n_threads,
            random_state=self.seed,
        )
        try:
            reg.fit(X, y)
        except Exception as exc:
            raise BackendError(f"operon search failed: {type(exc).__name__}: {exc}") from exc
        out = []
        chosen = None
        sym = {n: v for n, v in zip(names, variables)}
        for m in reg.pareto_front_:
            text = reg.get_model_string(m["tree"], 15, names=names)
            try:
                expr = parse_expr_safe(text, sym, xor_is_pow=True)
            except ParseError as exc:
                raise BackendError(f"cannot read operon model {text[:80]!r}: {exc}") from exc
            expr = prune_expression(expr, variables, X_score, rel_tol=self.prune_tol)
            out.append((expr, int(m["length"])))
            if m["tree"] is reg.model_:
                chosen = len(out) - 1
        if not out:
            raise BackendError("operon returned an empty Pareto front")
        if chosen is None:  # MDL choice not found by identity: the most accurate model
            chosen = len(out) - 1
        return out, chosen

    def fit(self, problem: Problem) -> Fit:
        """Fit the problem; see the class docstring."""
        self._check()
        if not isinstance(problem, Problem):
            raise BackendError(f"expected a Problem, got {type(problem).__name__}")
        require("pyoperon")
        t0 = time.perf_counter()
        variables = problem.variables
        d = problem.d
        # operon sees neutral names; the parser maps them back to the problem's symbols
        names = [f"v{i}" for i in range(d)]
        rng = np.random.default_rng(self.seed)
        idx = np.sort(rng.permutation(problem.n)[: self.max_points])
        X = np.asfortranarray(problem.X[idx])
        X_score = problem.X[idx]
        timings: dict[str, float] = {}
        fronts = []
        picks = []
        for j, target in enumerate([problem.V] + [problem.g[:, k] for k in range(d)]):
            t1 = time.perf_counter()
            y = np.ascontiguousarray(target[idx])
            if np.ptp(y) == 0:  # constant target: nothing to search
                fr, ch = [(prune_expression(sp.Float(float(y[0])), variables, X_score), 1)], 0
            else:
                fr, ch = self._search(X, y, names, variables, X_score)
            fronts.append(fr)
            picks.append(ch)
            timings["search_V" if j == 0 else f"search_g{j}"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        base = [fronts[j][picks[j]][0] for j in range(d + 1)]
        combos = {tuple(picks)}
        cands = [self._candidate(problem, base, tuple(picks), fronts)]
        for j in range(d + 1):  # vary one piece at a time along its own front
            for i in range(len(fronts[j])):
                key = tuple(picks[:j]) + (i,) + tuple(picks[j + 1:])
                if key in combos:
                    continue
                combos.add(key)
                exprs = list(base)
                exprs[j] = fronts[j][i][0]
                cands.append(self._candidate(problem, exprs, key, fronts))
        front = pareto_front(cands)
        chosen, rule = select_candidate(front, rel_tol=self.rel_tol, abs_tol=self.abs_tol,
                                       rule=self.selection_rule)
        timings["selection"] = time.perf_counter() - t2

        V, g = chosen.V, chosen.g
        grad, f = exact_field(V, g, variables)
        Xd = problem.X[: min(problem.n, 5000)]
        diagnostics = {
            "orthogonality": orthogonality_residual(V, g, variables, Xd),
            "f_residual": f_residual(f, variables, Xd, problem.f[: Xd.shape[0]]),
            "train_error": chosen.train_error,
            "val_error": chosen.val_error,
            "front_sizes": [len(fr) for fr in fronts],
            "operon_length": chosen.params["operon_length"],
            # f = −∇V + g is built symbolically, so it holds exactly
            "constraint_residual": 0.0,
        }
        timings["total"] = time.perf_counter() - t0
        selection = f"per-target operon fronts, one piece varied at a time: {rule}"
        return Fit(V=V, grad_V=grad, g=g, f=f, coef=None, front=front, selection=selection,
                   timings=timings, diagnostics=diagnostics, backend=self.name)

    @staticmethod
    def _candidate(problem: Problem, exprs, key, fronts) -> Candidate:
        V, g = exprs[0], tuple(exprs[1:])
        tr, va = expression_errors(problem, V, g)
        cx = sum(term_count(e) for e in exprs)
        length = sum(fronts[j][i][1] for j, i in enumerate(key))
        return Candidate(cx, tr, va, V, g, {"front_index": list(key), "operon_length": length})
