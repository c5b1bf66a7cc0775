"""Coefficient uncertainty of a symbolic fit from noisy pairs: a constrained cluster bootstrap.

The pairs are split into groups (whole trajectories where there are enough of them, else
consecutive blocks of pairs, which keeps the dependence along a path inside a group). A
replicate draws the groups with replacement; its normal equations are the weighted sums of
the per-group ones kept by the last pass of :func:`~symqp.identify._noise.fit_noisy`, so a
replicate of f costs a few small matrix sums and its own backward elimination (the choice of
the support is resampled too, which is what gives inclusion probabilities). Each replicate
of f then goes through the same *constrained* estimator of V as the fit: its stable states
(Newton from the fit's), their Lyapunov normalisation as equality constraints, and the
Hamilton–Jacobi least squares on the fit's support of V, warm-started from the fit's V.

From the replicates: percentile intervals of every coefficient of U and f, and inclusion
probabilities — the share of replicates whose own elimination keeps the term. The support
of V is pruned by the same spread: the HJ residual of a noisy f is not zero, and a
least-squares V absorbs part of the noise in small extra terms; those whose bootstrap
t-statistic is below the extended-BIC threshold are dropped (:func:`prune_v`), and V is
solved again on the terms kept.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import DataError, IdentificationError
from ._noise import ebic_threshold, eliminate
from ._onestep import FieldMap

__all__ = ["DEFAULT_REPLICATES", "MIN_GROUPS", "HJBootstrap", "bootstrap_groups", "bootstrap_v", "f_replicates",
           "relaxed"]

DEFAULT_REPLICATES = 64
MIN_GROUPS = 20  # fewer independent groups than this give no usable spread
_MAX_GROUPS = 100
_REP_POINTS = 2000  # region points of a replicate's HJ solve
_HJ_TOL = 10.0  # a pruned V may raise the HJ residual of the dense one by this factor at most
LEVEL = 0.95


def bootstrap_groups(traj: np.ndarray | None, n: int, *, p: int = 1) -> tuple[np.ndarray, int]:
    """Group id of every pair for the cluster bootstrap, and the number of groups.

    Whole trajectories when there are at least :data:`MIN_GROUPS` of them (at most 100
    groups, trajectories dealt round-robin), else consecutive blocks. Raises DataError when
    the pairs cannot make :data:`MIN_GROUPS` groups of at least ``p`` pairs each.

    Examples
    --------
    >>> g, k = bootstrap_groups(np.repeat(np.arange(50), 4), 200)
    >>> k, g[:6].tolist()
    (50, [0, 0, 0, 0, 1, 1])
    >>> bootstrap_groups(None, 10, p=3)
    Traceback (most recent call last):
    ...
    symqp._errors.DataError: too few pairs for the bootstrap: 10 pairs cannot make 20 groups of at least 3 pairs
    """
    if traj is not None:
        ids, inv = np.unique(np.asarray(traj), return_inverse=True)
        if ids.size >= MIN_GROUPS and n >= MIN_GROUPS * p:
            k = min(_MAX_GROUPS, ids.size)
            return (inv % k).astype(np.int64), k
    k = min(_MAX_GROUPS, n // max(p, 1))
    if k < MIN_GROUPS:
        raise DataError(
            f"too few pairs for the bootstrap: {n} pairs cannot make {MIN_GROUPS} groups of at least {p} pairs"
        )
    return (np.arange(n) * k // n).astype(np.int64), k


def f_replicates(ne: dict[str, np.ndarray], allowed: np.ndarray, crit: float, n_rep: int,
                 rng: np.random.Generator) -> list[np.ndarray]:  # fmt: skip
    """Coefficients of f (p, d) for ``n_rep`` cluster-bootstrap replicates of the normal equations."""
    Gg, Bg, yyg, ng = ne["G_g"], ne["B_g"], ne["yy_g"], ne["n_g"]
    k = Gg.shape[0]
    out = []
    for _ in range(n_rep):
        w = rng.multinomial(k, np.full(k, 1.0 / k)).astype(float)
        G = np.tensordot(w, Gg, axes=1)
        B = np.tensordot(w, Bg, axes=1)
        yy = w @ yyg
        n = int(round(float(w @ ng)))
        C, _, _ = eliminate(G, B, yy, n, allowed, crit)
        out.append(C)
    return out


def gradient_start(problem: Any, G: np.ndarray, F: np.ndarray, w: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Coefficients (over vcols) of the weighted least squares of ∇V = −f on ``support`` under
    the normalisation: the convex start of the HJ least squares."""
    from ._hj import _gradient_start

    sub = copy.copy(problem)
    sub.C = problem.C[:, support]
    out = np.zeros(problem.vcols.size)
    out[support] = _gradient_start(sub, G[:, :, support], F, w)
    return out


def relaxed(problem: Any, support: np.ndarray, sd: np.ndarray) -> Any:
    """``problem`` with its normalisation targets replaced by what ``support`` can meet.

    On noisy data the Lyapunov equations at the stable states are noisy too, and a sparse V
    cannot meet all of them exactly (the exact-support V of Example 1 has 4 coefficients
    for 18 equations). The targets become C a* with a* the least-squares solution of the
    equations on the support, each weighted by its bootstrap spread ``sd``; the HJ least
    squares then works in the remaining freedom, as it does on exact data.
    """
    C = problem.C[:, support] / sd[:, None]
    a_s, *_ = np.linalg.lstsq(C, problem.e / sd, rcond=None)
    out = copy.copy(problem)
    out.e = problem.C[:, support] @ a_s
    return out


@dataclasses.dataclass
class _Replicate:
    C: np.ndarray  # f coefficients on the field map's columns (p, d)
    states: list  # its stable states (StableState)
    problem: Any  # its HJ problem (normalisation at its own stable states)


class HJBootstrap:
    """The HJ step of the symbolic route, repeated on bootstrap replicates of f.

    ``problem`` is the fit's :class:`~symqp.identify._hj.HJProblem`, ``G`` its gradients at
    the region points ``X``, ``states`` the fit's stable states (all in scaled coordinates).
    The replicates solve on at most :data:`_REP_POINTS` of the points (their spread, not
    their centre, is used).
    """

    def __init__(self, fm: FieldMap, problem: Any, G: np.ndarray, X: np.ndarray, states: Sequence[Any],
                 Cs: Sequence[np.ndarray], rng: np.random.Generator) -> None:  # fmt: skip
        from ._hj import HJProblem

        self.fm, self.problem = fm, problem
        keep = np.sort(rng.choice(X.shape[0], _REP_POINTS, replace=False)) if X.shape[0] > _REP_POINTS else slice(None)
        self.G = np.ascontiguousarray(G[:, keep])
        self.T = fm.theta(X[keep])
        self.reps: list[_Replicate] = []
        for C in Cs:
            st = self._states(C, states)
            if st is not None:
                self.reps.append(_Replicate(C, st, HJProblem(problem.lib, problem.vcols, st)))

    def _states(self, C: np.ndarray, states: Sequence[Any]) -> list | None:
        """Newton from each of the fit's stable states on the replicate's f; None if one is lost."""
        from ._hj import StableState, lyapunov_hessian

        fm = self.fm
        out = []
        for s in states:
            x = np.array(s.x, dtype=float)
            for _ in range(30):
                F = (fm.theta(x[None, :]) @ C)[0]
                J = np.column_stack([np.asarray(fm.lib.evaluate_derivative(x[None, :], l_), float)[0, fm.cols] @ C
                                     for l_ in range(fm.d)])  # fmt: skip
                try:
                    dx = np.linalg.solve(J, F)
                except np.linalg.LinAlgError:
                    return None
                x = x - dx
                if not np.all(np.isfinite(x)):
                    return None
                if np.linalg.norm(dx) <= 1e-13 * max(1.0, float(np.linalg.norm(x))):
                    break
            try:
                out.append(StableState(x, J, lyapunov_hessian(J), s.kind))
            except IdentificationError:
                return None  # the replicate's equilibrium is not stable
        return out

    def constraint_sd(self, a: np.ndarray) -> np.ndarray:
        """Bootstrap spread of every normalisation equation at the coefficients ``a`` (over vcols)."""
        R = np.array([r.problem.C @ a - r.problem.e for r in self.reps])
        sd = R.std(axis=0, ddof=1) if R.shape[0] > 1 else np.ones(self.problem.e.size)
        return np.maximum(sd, 1e-12 * max(float(sd.max()), 1e-300))

    def solve(self, support: np.ndarray, a0: np.ndarray, sd: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """V coefficients (over vcols) of every replicate on ``support``, and the replicate ids.

        ``sd``: relax the normalisation (:func:`relaxed`) with these spreads.
        """
        from ._hj import _weights

        m = self.problem.vcols.size
        rows, ids = [], []
        for i, rep in enumerate(self.reps):
            pb = rep.problem if sd is None else relaxed(rep.problem, support, sd)
            F = self.T @ rep.C
            w = _weights(F)
            # each replicate from its own convex start: a warm start from the fit's V would stay
            # put along the flat directions of the objective and understate their spread
            got = pb.solve(self.G, F, w, support, a0=gradient_start(pb, self.G, F, w, support))
            if got is None:
                continue
            a = np.zeros(m)
            a[support] = got[0]
            rows.append(a)
            ids.append(i)
        return np.array(rows).reshape(len(rows), m), np.array(ids, dtype=int)

    def noise_residual(self, support: np.ndarray, a: np.ndarray) -> float:
        """Median HJ residual of the fit's V under the replicates' fields: what noise in f explains."""
        from ._hj import hj_residual

        vals = [hj_residual(self.G, self.T @ rep.C, a[support], support) for rep in self.reps]
        return float(np.median(vals)) if vals else 0.0

    def minimum_values(self, A: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """min over its stable states of each replicate's V (the constant that makes min U = 0)."""
        out = np.empty(len(ids))
        for r, i in enumerate(ids):
            out[r] = _v_min(self.problem, self.reps[i].states, A[r])
        return out


def _v_min(problem: Any, states: Sequence[Any], a: np.ndarray) -> float:
    X = np.array([s.x for s in states])
    return float(np.min(np.asarray(problem.lib.evaluate(X), float)[:, problem.vcols] @ a))


def t_statistics(a: np.ndarray, A: np.ndarray) -> np.ndarray:
    """|a_j| over the bootstrap standard deviation of column j of ``A`` (inf where it does not vary)."""
    sd = A.std(axis=0, ddof=1) if A.shape[0] > 1 else np.zeros(a.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, np.abs(a) / sd, np.where(a != 0, math.inf, 0.0))


def prune_v(boot: HJBootstrap, support: np.ndarray, a: np.ndarray, A: np.ndarray, crit: float,
            solve_main: Any, residual: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """V without the terms whose bootstrap t-statistic is below ``crit``, solved again (relaxed).

    The t-statistics are marginal, and a term that only shares the role of a collinear
    partner (y² and x²y² in Maier–Stein's V: the normalisation at the wells fixes only their
    sum) can look weak together with it. The pruned V is therefore solved and its HJ
    residual (``residual``: (support, a) -> float) compared with the dense one's, or with the
    residual that the noise of f alone gives the dense V (its median under the replicates'
    fields; the larger of the two): while it is above ``_HJ_TOL`` times that, the weak term
    with the largest t is put back. Dropping terms that only absorb noise raises the residual
    by a small factor (1.2 to 3 measured); dropping a needed one by orders of magnitude (1150
    on Maier–Stein). (For a linear field the dense V solves the HJ equation of f̂ exactly, and
    only the noise level gives the scale.)
    ``A`` holds the replicates on ``support``. Returns (support, a over vcols, replicates on
    the final support, their ids, inclusion frequency of every vcols term over the replicates:
    the share in which it stands out of the spread by ``crit``, 1 for the terms put back).
    """
    m = a.size
    incl = np.zeros(m)
    incl[support] = 1.0
    if A.shape[0] < MIN_GROUPS:
        return support, a, A, np.arange(A.shape[0]), incl
    t = t_statistics(a[support], A[:, support])
    sd = A[:, support].std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        incl[support] = np.mean(np.abs(A[:, support]) >= crit * np.where(sd > 0, sd, np.inf), axis=0)
    incl[support[(sd == 0) & (a[support] != 0)]] = 1.0
    weak = [int(i) for i in np.argsort(-t) if t[i] < crit]  # weak terms, strongest first
    if not weak or len(weak) == support.size:
        return support, a, A, np.arange(A.shape[0]), incl
    sd_c = boot.constraint_sd(a)
    limit = _HJ_TOL * max(residual(support, a), boot.noise_residual(support, a))
    for k in range(len(weak) + 1):
        new = np.delete(support, weak[k:])
        got = solve_main(new, a, sd_c)
        if got is not None and residual(new, got) <= limit:
            A_new, ids = boot.solve(new, got, sd_c)
            incl[support[weak[:k]]] = 1.0  # put back by the residual test, which every replicate shares
            return new, got, A_new, ids, incl
    return support, a, A, np.arange(A.shape[0]), incl


def interval_rows(names: Sequence[str], est: np.ndarray, reps: np.ndarray, inclusion: np.ndarray, *,
                  recentre: bool = False, **extra: Any) -> list[dict[str, Any]]:  # fmt: skip
    """One row per coefficient: estimate, bootstrap std, percentile interval, inclusion probability.

    ``recentre`` moves the interval so that the replicates' mean sits at the estimate (for
    replicates solved on fewer points than the fit, whose centre differs slightly).
    """
    lo_q, hi_q = (1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2
    rows = []
    for j, name in enumerate(names):
        col = reps[:, j] if reps.shape[0] else np.array([est[j]])
        shift = float(est[j] - col.mean()) if recentre else 0.0
        rows.append({
            "term": str(name), "estimate": float(est[j]), "std": float(col.std(ddof=1)) if col.size > 1 else 0.0,
            "lower": float(np.quantile(col, lo_q)) + shift, "upper": float(np.quantile(col, hi_q)) + shift,
            "inclusion": float(inclusion[j]), **extra,
        })  # fmt: skip
    return rows


def _data_factors(sc: Any, lib: Any, out_exp: int) -> np.ndarray:
    """Factor from scaled to data coefficients of each library term: 2**(out_exp - s deg)."""
    deg = np.asarray(sc.degrees if sc.degrees is not None else [0] * len(lib), dtype=float)
    return np.ldexp(np.ones(len(lib)), (out_exp - sc.s_exp * deg).astype(int))


def _term_names(lib: Any, cols: np.ndarray, names: Sequence[str]) -> list[str]:
    import sympy as sp

    plain = {v: sp.Symbol(n) for v, n in zip(lib.variables, names)}
    return [str(lib.terms[c].xreplace(plain)) for c in cols]


def _f_rows(info: dict[str, Any], Cs: Sequence[np.ndarray], sc: Any) -> list[dict[str, Any]]:
    fm: FieldMap = info["fm"]
    C = info["fit"]["C"]
    fac = _data_factors(sc, fm.lib, sc.kg)[fm.cols]
    Rf = np.stack(Cs) if Cs else np.zeros((0,) + C.shape)
    names = _term_names(fm.lib, fm.cols, sc.names)
    rows: list[dict[str, Any]] = []
    for k, out in enumerate(sc.names):
        incl = np.mean(Rf[:, :, k] != 0, axis=0) if len(Cs) else (C[:, k] != 0).astype(float)
        sel = np.flatnonzero((C[:, k] != 0) | (incl > 0))
        rows += interval_rows([names[j] for j in sel], C[sel, k] * fac[sel], Rf[:, sel, k] * fac[sel], incl[sel],
                              output=str(out))  # fmt: skip
    return rows


def bootstrap_v(info: dict[str, Any], problem: Any, G: np.ndarray, F: np.ndarray, X: np.ndarray,
                states: Sequence[Any], pick: Any, sc: Any, *, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
    """The symbolic route's bootstrap step (module docstring): V over the library, and the record.

    ``info`` is the field step's summary (``fit`` with the per-group normal equations,
    ``fm``, ``n_pairs``, ``n_bootstrap``); ``problem``, ``G``, ``F``, ``X``, ``states`` and
    ``pick`` are the HJ step's problem, data, stable states and chosen solution.
    """
    from ._hj import _weights, hj_residual

    fm: FieldMap = info["fm"]
    rng = np.random.default_rng(seed)
    Cs = f_replicates(info["fit"]["ne"], np.ones((fm.cols.size, fm.d), bool), info["fit"]["crit"],
                      int(info["n_bootstrap"]), rng)  # fmt: skip
    boot = HJBootstrap(fm, problem, G, X, states, Cs, rng)
    m = problem.vcols.size
    a = np.zeros(m)
    a[pick.support] = pick.a
    w = _weights(F)

    def solve_main(support: np.ndarray, a0: np.ndarray, sd: np.ndarray) -> np.ndarray | None:
        pb = relaxed(problem, support, sd)
        best, best_r = None, math.inf
        for start in (a0, gradient_start(pb, G, F, w, support)):  # the lower residual of two starts
            got = pb.solve(G, F, w, support, a0=start)
            if got is not None and hj_residual(G, F, got[0], support) < best_r:
                best, best_r = got[0], hj_residual(G, F, got[0], support)
        if best is None:
            return None
        out = np.zeros(m)
        out[support] = best
        return out

    crit = ebic_threshold(int(info["n_pairs"]), m)
    def residual(support: np.ndarray, a_m: np.ndarray) -> float:
        return hj_residual(G, F, a_m[support], support)

    A0, _ = boot.solve(pick.support, a)
    support, a, A, ids, incl = prune_v(boot, pick.support, a, A0, crit, solve_main, residual)
    fac = 2.0 * _data_factors(sc, problem.lib, sc.kv)[problem.vcols]
    on = np.zeros(m, bool)
    on[support] = True
    keep = np.flatnonzero(on | (incl > 0) | np.isin(np.arange(m), pick.support))
    const = -2.0 * math.ldexp(1.0, sc.kv)
    est = np.r_[a[keep] * fac[keep], const * _v_min(problem, states, a)]
    reps = (np.column_stack([A[:, keep] * fac[keep], const * boot.minimum_values(A, ids)]) if len(ids)
            else np.zeros((0, keep.size + 1)))  # fmt: skip
    rows_u = interval_rows(_term_names(problem.lib, problem.vcols[keep], sc.names) + ["1"], est, reps,
                           np.r_[incl[keep], 1.0], recentre=True)  # fmt: skip
    record = {
        "method": (f"cluster bootstrap over {info['fit']['ne']['G_g'].shape[0]} groups of pairs; each replicate "
                   "re-selects f by backward elimination and solves the constrained HJ problem for V"),
        "level": LEVEL, "n_replicates": int(len(ids)), "n_requested": int(info["n_bootstrap"]),
        "threshold": crit, "U": rows_u, "f": _f_rows(info, Cs, sc),
    }  # fmt: skip
    a_q = np.zeros(len(problem.lib))
    a_q[problem.vcols] = a
    return a_q, record
