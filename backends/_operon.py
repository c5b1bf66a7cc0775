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

from symqp._errors import BackendError, ParameterError, ParseError
from symqp._estimator import check_float, check_int, check_seed
from symqp._numeric import numpy_function
from symqp._optional import require
from symqp._parse import parse_expr_safe

from ._base import Backend, Search
from ._problem import Problem

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
    cols = numpy_function(list(terms), variables)(X)
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
    selection_rule, rel_tol, abs_tol
        How the model is picked on the combined front (see :class:`Backend`).
    threads : int
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
        selection_rule: str = "tolerance",
        rel_tol: float = 0.05,
        abs_tol: float = 1e-9,
        threads: int = 1,
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
        self.selection_rule = selection_rule
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.threads = threads
        self.seed = seed

    def _check_params(self) -> None:
        for name in ("generations", "population_size", "max_evaluations", "max_length", "max_points", "threads"):
            check_int(self, name, getattr(self, name), minimum=1)
        check_int(self, "optimizer_iterations", self.optimizer_iterations, minimum=0)
        if not isinstance(self.allowed_symbols, str):
            raise ParameterError(f"Operon.allowed_symbols must be a string, got {type(self.allowed_symbols).__name__}")
        unknown = [s for s in self.allowed_symbols.split(",") if s.strip() not in _SYMBOLS]
        if unknown:
            raise ParameterError(
                f"Operon.allowed_symbols: unknown operon symbol(s) {', '.join(unknown)} (known: {', '.join(_SYMBOLS)})"
            )
        check_float(self, "prune_tol", self.prune_tol, low=0.0, high=1.0, high_open=True)
        check_seed(self, "seed", self.seed)

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
            n_threads=self.threads,
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

    def _candidates(self, problem: Problem) -> Search:
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

        def candidate(key: tuple[int, ...]):
            exprs = [fronts[j][i][0] for j, i in enumerate(key)]
            length = sum(fronts[j][i][1] for j, i in enumerate(key))
            return self._candidate(problem, exprs[0], exprs[1:], sum(term_count(e) for e in exprs),
                                   {"front_index": list(key), "operon_length": length})

        keys = {tuple(picks)}
        cands = [candidate(tuple(picks))]
        for j in range(d + 1):  # vary one piece at a time along its own front
            for i in range(len(fronts[j])):
                key = tuple(picks[:j]) + (i,) + tuple(picks[j + 1:])
                if key not in keys:
                    keys.add(key)
                    cands.append(candidate(key))
        return Search(cands, selection="per-target operon fronts, one piece varied at a time",
                      diagnostics={"front_sizes": [len(fr) for fr in fronts]}, timings=timings)
