"""Constrained sparse relaxed regularized regression (paper eq. 14–16, App. A).

The solver works on the scaled library ``Θ̃ = Θ S⁻¹`` (columns of unit RMS, ``S = diag(s)``)
because the Gram matrix of a raw polynomial library is badly conditioned; the scaled
problem is the same optimisation problem (the relaxation term and the thresholds are
rescaled with ``S``) unless ``normalize_columns=True``, where the penalty applies to the
coefficients of the unit-RMS columns as in pysindy.

Per SR3 iteration the Ξ-update is the equality-constrained least-squares problem

    min ½‖G − Θ̃Ξ̃‖² + 1/(2ν)‖R^{1/2}(Ξ̃ − W̃)‖²  subject to  C̃ vec(Ξ̃) = 0,

whose solution is linear in W̃. With a basis N of the null space of C̃ and
``K = (Θ̃ᵀΘ̃ + R/ν) ⊗ I`` it is ``vec(Ξ̃) = N (NᵀKN)⁻¹ Nᵀ vec(Θ̃ᵀG + RW̃/ν)`` (the
null-space form of the KKT system); that matrix is formed once per problem from one
Cholesky factorisation, so an iteration is one matrix–vector product and a prox. The
null space needs no factorisation of C: the decomposition's constraints
``Ξ_{f_k} = −D_k Ξ_v + Ξ_{g_k}`` say that the free parameters are the V and g
coefficients (:func:`structural_basis`); only extra user constraints are handled by an
SVD, of the small matrix ``C_user P``. After the iterations, the support of W is refitted
by equality-constrained least squares in the same basis, so the returned Ξ satisfies
CΞ = 0 to round-off. pysindy's ``ConstrainedSR3`` instead inverts the full Kronecker
system and its Schur complement at every iteration (compared in
``benchmarks/sr3_solve.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from symqp._errors import BackendError
from symqp._estimator import check_bool, check_choice, check_float, check_int, check_seed

from ._base import Backend, Search
from ._problem import Candidate, Problem, coef_candidate
from ._sr3_blocks import BlockKKT

__all__ = ["SR3", "ConstrainedSR3Solver"]

_REGULARIZERS = ("l0", "l1")


def _prox(x: np.ndarray, t: np.ndarray, kind: str) -> np.ndarray:
    if kind == "l0":
        return np.where(np.abs(x) > t, x, 0.0)
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


@dataclass
class _Run:
    coef: np.ndarray  # refitted Ξ (q, p), original units
    support: np.ndarray  # bool (q, p) nonzeros of W in the V and g columns
    iterations: int
    converged: bool


class ConstrainedSR3Solver:
    """Precomputed constrained-SR3 solver for one design matrix Θ and target matrix G.

    The feasible set ``{vec(Ξ) : C vec(Ξ) = 0}`` is described by a basis ``P`` of
    parameters (``vec(Ξ) = P z``, row-major ``vec``) plus optional further constraints
    ``C``; with ``P = None`` every coefficient is a parameter and the null space of ``C``
    is computed by an SVD. The SR3 backend passes the structural basis of the
    decomposition (free V and g coefficients, f following from them), which needs no
    factorisation of C at all.

    Parameters
    ----------
    Theta : array (n, q)
        Library evaluated on the points.
    G : array (n, p)
        Target matrix.
    C : array (m, q*p) or None
        Equality constraints ``C vec(Ξ) = 0`` (row-major ``vec``; may have 0 rows).
    nu : float
        Relaxation parameter ν.
    regularizer : {"l0", "l1"}
        Hard (l0) or soft (l1) thresholding of W.
    normalize_columns : bool
        Threshold the coefficients of unit-RMS columns instead of raw coefficients.
    P : array (q*p, k) or None
        Parameter basis: ``vec(Ξ) = P z`` satisfies the structural constraints.
    owner : int array (k,) or None
        For each column of ``P``, the flat index ``i*p + t`` of the coefficient that the
        parameter is (used to restrict a refit to a support).
    gram : array (q, q) or None
        ``ΘᵀΘ`` if already computed.
    structure : (D, v_mask, g_mask) or None
        The decomposition's gradient maps and masks. Without further constraints ``C`` the
        solves then go by block elimination (:class:`~symqp.backends._sr3_blocks.BlockKKT`):
        q × q factors instead of the null-space basis ``P`` of q(2d+1) rows, which is what
        lets a poly(4) library in 10 variables fit in memory (``P`` and the Ξ-update
        matrix alone would take 1.8 GB and 3.5 GB).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Theta = rng.normal(size=(200, 4))
    >>> G = Theta @ np.array([[1.0], [0.0], [-2.0], [0.0]])
    >>> s = ConstrainedSR3Solver(Theta, G, None, nu=1e-3)
    >>> run = s.solve(0.1, s.least_squares())
    >>> np.round(run.coef.ravel(), 12)
    array([ 1.,  0., -2.,  0.])
    """

    def __init__(
        self,
        Theta: np.ndarray,
        G: np.ndarray,
        C: np.ndarray | None = None,
        *,
        nu: float,
        regularizer: str = "l0",
        normalize_columns: bool = False,
        P: np.ndarray | None = None,
        owner: np.ndarray | None = None,
        gram: np.ndarray | None = None,
        structure: tuple | None = None,
    ) -> None:
        n, q = Theta.shape
        p = G.shape[1]
        self.Theta, self.G, self.q, self.p, self.nu = Theta, G, q, p, float(nu)
        self.kind = regularizer
        gram = Theta.T @ Theta if gram is None else gram
        # unit-RMS column scaling, read off the Gram diagonal (no extra pass over Θ)
        s = np.sqrt(np.diag(gram) / n)
        s[s == 0] = 1.0
        self.s = s
        self.A = gram / np.outer(s, s)
        # (Gᵀ Θ)ᵀ: measured 3x faster than Θᵀ G for a C-ordered Θ with few target columns
        self.B = (G.T @ Theta).T / s[:, None]
        # relaxation weights: 1/s² keeps the problem identical to the unscaled one
        self.r = np.ones(q) if normalize_columns else 1.0 / s**2
        self.tscale = np.ones(q) if normalize_columns else s
        sp_ = np.repeat(s, p)  # scale of each flat coefficient
        self.C = np.zeros((0, q * p)) if C is None else np.asarray(C, dtype=float)
        self.blocks = None
        if structure is not None and self.C.shape[0] == 0:
            self.blocks = BlockKKT(structure[0], s, structure[1], structure[2])
            if self.blocks.n_params == 0:
                raise BackendError("the constraints leave no free coefficient (null space is empty)")
            self._fac = self.blocks.factor(self.A + np.diag(self.r / self.nu))
            self.null_dim = self.blocks.n_params
            return
        if P is None:
            P = np.eye(q * p)
            owner = np.arange(q * p)
        self.P = np.asarray(P, dtype=float)
        self.owner = np.asarray(owner if owner is not None else np.arange(self.P.shape[1]))
        # scaled parameter basis: vec(Ξ̃) = S P z
        self.Ps = sp_[:, None] * self.P
        self.Cs = self.C / sp_[None, :] if self.C.shape[0] else self.C
        N = self._null(np.ones(self.P.shape[1], bool))
        if N.shape[1] == 0:
            raise BackendError("the constraints leave no free coefficient (null space is empty)")
        H = self.A + np.diag(self.r / self.nu)
        red = sla.cho_factor(N.T @ self._kron(H, N))
        # the Ξ-update is linear in W: ξ = c0 + Mw w, formed once per problem
        M = N @ sla.cho_solve(red, N.T)
        self.c0 = M @ self.B.ravel()
        self.Mw = M * np.repeat(self.r / self.nu, p)[None, :]
        self.null_dim = N.shape[1]

    def _kron(self, H: np.ndarray, N: np.ndarray) -> np.ndarray:
        """``(H ⊗ I_p) N`` for a row-major flattened basis N (q*p, k)."""
        q, p = self.q, self.p
        # N reshaped to (q, p*k) makes this one GEMM (measured ~5x faster than einsum)
        return (H @ N.reshape(q, -1)).reshape(q * p, -1)

    def _null(self, sel: np.ndarray) -> np.ndarray:
        """Scaled basis of the feasible coefficients using the parameters ``sel``."""
        Ps = self.Ps[:, sel]
        if self.Cs.shape[0] == 0 or Ps.shape[1] == 0:
            return Ps
        K = sla.null_space(self.Cs @ Ps)
        return Ps @ K

    # -- App. A ---------------------------------------------------------------------
    def least_squares(self, cols: np.ndarray | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Unconstrained least-squares coefficients (original units) of some target columns.

        Solved on the Jacobi-scaled Gram matrix; used only to start the SR3 iterations.
        """
        cols = np.arange(self.p) if cols is None else np.asarray(cols)
        m = np.ones(self.q, bool) if mask is None else np.asarray(mask, bool)
        out = np.zeros((self.q, len(cols)))
        if m.any():
            sol = sla.lstsq(self.A[np.ix_(m, m)], self.B[np.ix_(m, cols)], cond=1e-13)[0]
            out[m] = sol / self.s[m, None]
        return out

    def unconstrained_sr3(
        self, cols, threshold: float, *, mask=None, max_iter: int = 100, tol: float = 1e-10
    ) -> np.ndarray:
        """SR3 without constraints on some target columns (App. A.1/A.2); original units."""
        cols = np.asarray(cols)
        m = np.ones(self.q, bool) if mask is None else np.asarray(mask, bool)
        out = np.zeros((self.q, len(cols)))
        if not m.any():
            return out
        r = self.r[m]
        cho = sla.cho_factor(self.A[np.ix_(m, m)] + np.diag(r / self.nu))
        B = self.B[np.ix_(m, cols)]
        t = (threshold * self.tscale[m])[:, None]
        W = self.least_squares(cols, m)[m] * self.s[m, None]
        for _ in range(max_iter):
            Xi = sla.cho_solve(cho, B + r[:, None] * W / self.nu)
            W_new = _prox(Xi, t, self.kind)
            done = np.max(np.abs(W_new - W), initial=0.0) <= tol * max(1.0, np.max(np.abs(W_new), initial=0.0))
            W = W_new
            if done:
                break
        out[m] = W / self.s[m, None]
        return out

    # -- eq. 14 with CΞ = 0 ---------------------------------------------------------
    def iterate(
        self, threshold: float, Xi0: np.ndarray, *, max_iter: int = 200, tol: float = 1e-10
    ) -> tuple[np.ndarray, int, bool]:
        """Run the SR3 iterations from ``Xi0`` (original units); return W (original units)."""
        p = self.p
        t = np.repeat(threshold * self.tscale, p)
        w = (Xi0 * self.s[:, None]).ravel()
        converged = False
        it = 0
        relax = (self.r / self.nu)[:, None]
        for it in range(1, max_iter + 1):
            if self.blocks is not None:
                xi = self.blocks.solve(self._fac, self.B + relax * w.reshape(self.q, p)).ravel()
            else:
                xi = self.c0 + self.Mw @ w
            w_new = _prox(xi, t, self.kind)
            delta = np.max(np.abs(w_new - w), initial=0.0)
            w = w_new
            if delta <= tol * max(1.0, np.max(np.abs(w), initial=0.0)):
                converged = True
                break
        return (w.reshape(self.q, p) / self.s[:, None]), it, converged

    def refit(self, support: np.ndarray, *, refine: int = 0) -> np.ndarray:
        """Equality-constrained least squares using only the parameters in ``support``.

        ``support`` (bool (q, p)) marks the coefficients allowed to be nonzero; a parameter
        of the basis is kept when the coefficient it owns is in the support (with the
        structural basis, f coefficients follow from V and g). Solved by the normal
        equations of the small reduced problem (Jacobi-scaled Gram matrix): a sparse
        support keeps them well conditioned (Example 1, poly(5): coefficient error
        2e-14). ``refine`` steps of iterative refinement on the true residual (one pass
        over Θ each) restore QR accuracy for ill-conditioned supports. The result
        satisfies the constraints to round-off.
        """
        q, p = self.q, self.p
        if self.blocks is not None:
            fac = self.blocks.factor(self.A, support)
            Xi = self.blocks.solve(fac, self.B)
            for _ in range(refine):
                rows = np.flatnonzero(np.any(Xi != 0, axis=1))
                R = self.G - (self.Theta[:, rows] / self.s[rows]) @ Xi[rows]
                Xi = Xi + self.blocks.solve(fac, (self.Theta.T @ R) / self.s[:, None])
            return Xi / self.s[:, None]
        sel = support.ravel()[self.owner]
        N = self._null(sel)
        if N.shape[1] == 0:
            return np.zeros((q, p))
        K = N.T @ self._kron(self.A, N)
        scale = np.sqrt(np.abs(np.diag(K)))
        scale[scale == 0] = 1.0
        Kn = K / np.outer(scale, scale)
        try:
            fac = sla.cho_factor(Kn)
            solve = lambda rhs: sla.cho_solve(fac, rhs / scale) / scale
        except np.linalg.LinAlgError:  # rank deficient support: minimum-norm solution
            pinv = np.linalg.pinv(Kn, rcond=1e-13)
            solve = lambda rhs: (pinv @ (rhs / scale)) / scale
        y = solve(N.T @ self.B.ravel())
        Xi = (N @ y).reshape(q, p)
        for _ in range(refine):
            rows = np.flatnonzero(np.any(Xi != 0, axis=1))
            R = self.G - (self.Theta[:, rows] / self.s[rows]) @ Xi[rows]
            dB = (self.Theta.T @ R) / self.s[:, None]
            y = y + solve(N.T @ dB.ravel())
            Xi = (N @ y).reshape(q, p)
        return Xi / self.s[:, None]

    def solve(
        self,
        threshold: float,
        Xi0: np.ndarray,
        *,
        free_cols=(),
        max_iter: int = 200,
        tol: float = 1e-10,
    ) -> _Run:
        """SR3 iterations from ``Xi0`` then the refit on the support of W.

        Columns in ``free_cols`` are not restricted by the support (with the structural
        basis the f columns are determined by the constraints anyway).
        """
        W, it, conv = self.iterate(threshold, Xi0, max_iter=max_iter, tol=tol)
        support = W != 0
        refit_support = support.copy()
        refit_support[:, list(free_cols)] = True
        support[:, list(free_cols)] = False
        coef = self.refit(refit_support)
        return _Run(coef, support, it, conv)


def structural_basis(D: list, v_mask=None, g_mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Parameter basis of ``Ξ_{f_k} = −D_k Ξ_v + Ξ_{g_k}`` with masked-out entries at zero.

    Returns ``P`` (q*p, k) with ``vec(Ξ) = P z`` (row-major, ``p = 2d+1``) for the free
    coefficients ``z`` of V and g, and ``owner`` (k,), the flat index of the coefficient
    each parameter is. Its columns span the null space of
    :func:`symqp.library.constraint_matrix` exactly, so no factorisation of C is needed.
    """
    d = len(D)
    q = D[0].shape[0]
    p = 2 * d + 1
    vm = np.ones(q, bool) if v_mask is None else np.asarray(v_mask, bool)
    gm = np.ones(q, bool) if g_mask is None else np.asarray(g_mask, bool)
    iv, ig = np.flatnonzero(vm), np.flatnonzero(gm)
    k = iv.size + d * ig.size
    P = np.zeros((q, p, k))
    owner = np.empty(k, dtype=np.int64)
    c = 0
    for i in iv:
        P[i, d, c] = 1.0
        for kk in range(d):
            P[:, kk, c] = -np.asarray(D[kk][:, i]).ravel()
        owner[c] = i * p + d
        c += 1
    for kk in range(d):
        for i in ig:
            P[i, d + 1 + kk, c] = 1.0
            P[i, kk, c] += 1.0
            owner[c] = i * p + d + 1 + kk
            c += 1
    return P.reshape(q * p, k), owner


class SR3(Backend):
    """Constrained sparse relaxed regularized regression of ``[f, V, g]`` (paper eq. 14–16).

    Parameters
    ----------
    threshold : float or None
        Hard threshold t on the coefficients of W (l0; pysindy's
        ``reg_weight_lam = t²/(2ν)``) or soft-threshold size (l1, ``λν = t``). ``None``:
        sweep ``n_thresholds`` values on a geometric grid and select on held-out points.
    nu : float
        Relaxation parameter ν.
    regularizer : {"l0", "l1"}
    normalize_columns : bool
        Apply the threshold to coefficients of unit-RMS library columns.
    max_iter, tol : int, float
        SR3 iterations per threshold and the relative change of W that stops them.
    n_thresholds : int
        Grid size of the sweep.
    val_frac : float
        Share of the points held out for selection when the problem has no validation set.
    selection_rule, rel_tol, abs_tol
        How the sweep's model is picked on the front (see :class:`Backend`).
    seed : int
        Seed of the hold-out split.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from symqp.library import poly
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    >>> V = (X[:, 0]**2 + X[:, 1]**2) / 2
    >>> g = np.column_stack([-X[:, 1], X[:, 0]])
    >>> f = -X + g
    >>> fit = SR3(threshold=0.05).fit(Problem(X, f, V, g, poly((x, y), 2))).fit_
    >>> fit.U.xreplace({c: round(c, 9) for c in fit.U.atoms(sp.Float)})
    1.0*x**2 + 1.0*y**2
    >>> fit.diagnostics["constraint_residual"] < 1e-12
    True
    """

    name = "sr3"
    blas_threads = 1

    def __init__(
        self,
        *,
        threshold: float | None = None,
        nu: float = 1e-5,
        regularizer: str = "l0",
        normalize_columns: bool = False,
        max_iter: int = 200,
        tol: float = 1e-10,
        n_thresholds: int = 24,
        val_frac: float = 0.25,
        selection_rule: str = "tolerance",
        rel_tol: float = 0.05,
        abs_tol: float = 1e-9,
        seed: int = 0,
    ) -> None:
        self.threshold = threshold
        self.nu = nu
        self.regularizer = regularizer
        self.normalize_columns = normalize_columns
        self.max_iter = max_iter
        self.tol = tol
        self.n_thresholds = n_thresholds
        self.val_frac = val_frac
        self.selection_rule = selection_rule
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol
        self.seed = seed

    def _check_params(self) -> None:
        check_float(self, "threshold", self.threshold, low=0.0, allow_none=True)
        check_float(self, "nu", self.nu, low=0.0, low_open=True)
        check_choice(self, "regularizer", self.regularizer, _REGULARIZERS)
        check_bool(self, "normalize_columns", self.normalize_columns)
        check_int(self, "max_iter", self.max_iter, minimum=1)
        check_float(self, "tol", self.tol, low=0.0)
        check_int(self, "n_thresholds", self.n_thresholds, minimum=2)
        check_float(self, "val_frac", self.val_frac, low=0.0, high=1.0, low_open=True, high_open=True)
        check_seed(self, "seed", self.seed)

    # ------------------------------------------------------------------------------
    def _solver(self, problem: Problem, D: list, Theta, G, gram=None) -> ConstrainedSR3Solver:
        common = {"nu": self.nu, "regularizer": self.regularizer, "normalize_columns": self.normalize_columns,
                  "gram": gram}  # fmt: skip
        if problem.constraints is None:  # the decomposition's constraints only: block elimination
            return ConstrainedSR3Solver(Theta, G, None, structure=(D, problem.v_mask, problem.g_mask), **common)
        P, owner = structural_basis(D, problem.v_mask, problem.g_mask)
        return ConstrainedSR3Solver(Theta, G, problem.constraints, P=P, owner=owner, **common)

    def _start(self, solver: ConstrainedSR3Solver, problem: Problem, D: list, t: float) -> np.ndarray:
        """App. A: separate SR3 fits of V and g, then Ξ⁰ = [−T(Ξ_v⁰) + Ξ_g⁰, Ξ_v⁰, Ξ_g⁰]."""
        d = problem.d
        xv = solver.unconstrained_sr3([d], t, mask=problem.v_mask, max_iter=self.max_iter, tol=self.tol)[:, 0]
        xg = solver.unconstrained_sr3(range(d + 1, 2 * d + 1), t, mask=problem.g_mask, max_iter=self.max_iter, tol=self.tol)
        xf = np.column_stack([-(D[k] @ xv) + xg[:, k] for k in range(d)])
        return np.column_stack([xf, xv, xg])

    def _one(self, solver, problem, D, t) -> tuple[_Run, np.ndarray]:
        Xi0 = self._start(solver, problem, D, t)
        run = solver.solve(t, Xi0, free_cols=range(problem.d), max_iter=self.max_iter, tol=self.tol)
        return run, Xi0

    def _scored(self, solver, problem, D, t, train, held, seen: set | None = None) -> Candidate | None:
        """The model of threshold ``t`` (solver's points), scored on ``train`` and ``held``.

        With ``seen`` (supports already on the front), a repeated support gives None before
        its expressions are built (a dense 1001-term candidate costs seconds of SymPy).
        """
        run, _ = self._one(solver, problem, D, float(t))
        if seen is not None:
            key = np.packbits(run.coef != 0).tobytes()
            if key in seen:
                return None
            seen.add(key)
        params = {"threshold": float(t), "iterations": run.iterations, "converged": run.converged}
        return coef_candidate(problem, run.coef, train, held, params)

    def _candidates(self, problem: Problem) -> Search:
        t0 = time.perf_counter()
        lib = problem.library
        D = [Dk.toarray() for Dk in lib.gradient_maps(columns=problem.v_mask)]
        train = (np.asarray(lib.evaluate(problem.X), dtype=float), problem.targets("train"))
        val = (np.asarray(lib.evaluate(problem.X_val), dtype=float), problem.targets("val")) \
            if problem.has_validation else None
        timings = {"setup": time.perf_counter() - t0}
        diagnostics = {"nu": self.nu, "regularizer": self.regularizer}
        if self.threshold is not None:
            t1 = time.perf_counter()
            solver = self._solver(problem, D, *train)
            final = self._scored(solver, problem, D, float(self.threshold), train, val)
            timings["solve"] = time.perf_counter() - t1
            diagnostics["null_space_dim"] = solver.null_dim
            return Search([], chosen=final, selection=f"fixed threshold {float(self.threshold):g}",
                          diagnostics=diagnostics, timings=timings)

        t1 = time.perf_counter()
        if val is not None:
            sweep_train, held = train, val
        else:
            perm = np.random.default_rng(self.seed).permutation(problem.n)
            n_va = max(1, round(self.val_frac * problem.n))
            if problem.n - n_va < 1:
                raise BackendError("too few points to hold some out for threshold selection")
            va_idx, tr_idx = perm[:n_va], perm[n_va:]
            sweep_train, held = (train[0][tr_idx], train[1][tr_idx]), (train[0][va_idx], train[1][va_idx])
        solver = self._solver(problem, D, *sweep_train)
        cands = []
        seen: set[bytes] = set()
        for t in self._grid(solver, problem.d):  # largest first: a repeated support keeps the largest
            c = self._scored(solver, problem, D, t, sweep_train, held, seen)
            if c is not None:
                cands.append(c)
        front, chosen, rule = self._select(cands)
        t_star = chosen.params["threshold"]
        timings["sweep"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        if val is None:  # refit the chosen threshold on every training point
            solver = self._solver(problem, D, *train)
        final = self._scored(solver, problem, D, t_star, train, val)
        if val is None:  # its held-out error is the one from the sweep's split
            final.val_error = chosen.val_error
            final.params["val_error_from"] = "held-out split of the sweep"
        timings["solve"] = time.perf_counter() - t2
        diagnostics["null_space_dim"] = solver.null_dim
        selection = f"threshold sweep ({self.n_thresholds} values, geometric): {rule}; threshold = {t_star:.4g}"
        return Search([final if c is chosen else c for c in front], chosen=final, selection=selection,
                      diagnostics=diagnostics, timings=timings)

    def _grid(self, solver: ConstrainedSR3Solver, d: int) -> np.ndarray:
        """Thresholds from the largest least-squares coefficient of V and g down (geometric)."""
        ls = solver.least_squares(range(d, 2 * d + 1)) * (solver.s / solver.tscale)[:, None]
        top = float(np.max(np.abs(ls), initial=0.0))
        if top <= 0:
            top = 1.0
        return np.geomspace(top * 1e-8, top, self.n_thresholds)[::-1]
