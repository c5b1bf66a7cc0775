"""Potentials of separable Hamiltonian systems from (q, p) trajectories (Bhat's method).

Two routes to an exact V(q):

- ``route="neural"``: a network V_θ(q) trained with Bhat's loss (3),
  mean ‖(p_{i+1} − p_i)/h + ∇V_θ(q_i)‖², then a sparse regression of V_θ on a library;
- ``route="direct"``: no network: the momentum increments are regressed on the gradient
  library ∇Θ (exact derivatives of the terms) by STLSQ.

Both accept the evaluation point of ∇V: ``loss="forward"`` (q_i, Bhat's eq. 3, an O(h) bias),
``"midpoint"`` ((q_i + q_{i+1})/2) or ``"trapezoid"`` (mean of ∇V at q_i and q_{i+1}, exact for
Störmer–Verlet data), the latter two O(h²). Measured on Bhat's double-well set T1
(h = 0.001, direct route, ``benchmarks/hamiltonian.py``): largest coefficient error 1.7e-4
with "forward", 5.6e-6 with "midpoint"; so "midpoint" is the default.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import sympy as sp

from .._errors import BackendError, DataError, TrainingError
from .._optional import require
from ..data._hamiltonian import HamiltonianData, load_hamiltonian
from . import _potential_utils as pu

__all__ = ["HamiltonianPotential", "fit_hamiltonian", "hamiltonian_loss"]

LOSSES = ("forward", "midpoint", "trapezoid")


def _as_data(data) -> HamiltonianData:
    if isinstance(data, HamiltonianData):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_hamiltonian(data)
    raise DataError(f"expected HamiltonianData or a path to an .npz file, got {type(data).__name__}")


def _targets(data: HamiltonianData, loss: str, max_points: int | None, seed: int):
    """(q_i, q_{i+1}, dp/dt) for the chosen transitions; dp/dt = (p_{i+1} − p_i)/h."""
    if loss not in LOSSES:
        raise DataError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    q0, p0, q1, p1 = data.steps()
    rate = (p1 - p0) / data.h
    n = q0.shape[0]
    if max_points is not None and n > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=int(max_points), replace=False))
        q0, q1, rate = q0[idx], q1[idx], rate[idx]
    if loss == "midpoint":
        return 0.5 * (q0 + q1), None, rate
    if loss == "forward":
        return q0, None, rate
    return q0, q1, rate


def hamiltonian_loss(V, qa, qb, rate, *, weights=None, grad=None):
    """Bhat's loss: mean over points of ‖rate + ∇V‖², ∇V at ``qa`` or averaged over ``qa``, ``qb``.

    ``V`` maps a (n, d) tensor to (n,) or (n, 1); ``qb=None`` uses ``qa`` alone. The gradient
    is taken with ``create_graph=True`` so the loss can be differentiated in the parameters;
    ``grad`` (a callable q -> ∇V(q), differentiable in the parameters) replaces autograd.
    ``weights`` (n,) summing to one turn the mean into a weighted mean.
    """
    torch = require("torch")

    def autograd_grad(q):
        q = q.detach().requires_grad_(True)
        v = V(q).sum()
        (g,) = torch.autograd.grad(v, q, create_graph=True)
        return g

    gfun = autograd_grad if grad is None else grad
    g = gfun(qa) if qb is None else 0.5 * (gfun(qa) + gfun(qb))
    sq = ((rate + g) ** 2).sum(dim=1)
    return sq.mean() if weights is None else (weights * sq).sum()


class HamiltonianPotential:
    """Neural potential V_θ(q) of a separable Hamiltonian system, trained on (q, p) data.

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths (Bhat: two layers of 16).
    activation : {"tanh", "softplus", "elu", "silu"}
    loss : {"forward", "midpoint", "trapezoid"}
        Where ∇V is evaluated (see the module docstring); "forward" is Bhat's eq. (3).
    features : {None, "radius", "pair_distance"}
        Learn V as a function of r = |q| or of the pair distance ‖q_a − q_b‖ (first half of
        the coordinates minus the second half) instead of q.
    balance : bool
        Weight each transition by the inverse number of transitions in its histogram cell
        of the (feature) space, so that rarely visited regions count as much as crowded ones
        (the one trajectory of Bhat's set T1 that crosses into the second well). ``False``
        is the plain time average of eq. (3). Without it, Adam at lr 1e-2 stalls on the
        double well of the tests with the second well unfitted.
    steps, lr, batch_size : training schedule (Adam, cosine-decayed learning rate;
        ``batch_size=None`` = full batch).
    polish_steps : int
        L-BFGS iterations after Adam on up to 20000 transitions (0 = none); a few hundred
        reach a far lower loss than many more Adam steps.
    max_points : int or None
        Use at most this many transitions (random subset).
    seed : int
    verbose : bool
        Print the loss ten times during training.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(0, 6.3, 0.05)
    >>> q = np.stack([np.cos(t + a) * a for a in (1.0, 2.0)])[..., None]
    >>> p = np.stack([-np.sin(t + a) * a for a in (1.0, 2.0)])[..., None]
    >>> from symqp.data._hamiltonian import HamiltonianData
    >>> model = HamiltonianPotential(steps=300, hidden=(8,)).fit(HamiltonianData(q, p, 0.05))
    >>> x = np.array([[-1.0], [0.0], [1.0]])
    >>> bool(abs(model.grad_V(x)[2, 0] - 1.0) < 0.1)
    True
    """

    def __init__(self, *, hidden: Sequence[int] = (16, 16), activation: str = "tanh",
                 loss: str = "midpoint", features: str | None = None, balance: bool = True,
                 steps: int = 2000, lr: float = 1e-2, batch_size: int | None = 4096,
                 polish_steps: int = 0, max_points: int | None = 200_000,
                 seed: int = 0, verbose: bool = False,
                 n_threads: int | None = 1):
        self.hidden = hidden
        self.activation = activation
        self.loss = loss
        self.features = features
        self.balance = balance
        self.steps = steps
        self.lr = lr
        self.batch_size = batch_size
        self.polish_steps = polish_steps
        self.max_points = max_points
        self.seed = seed
        self.verbose = verbose
        self.n_threads = n_threads

    # ------------------------------------------------------------------ fitting
    def fit(self, data) -> HamiltonianPotential:
        """Train on ``data`` (HamiltonianData or a path to an npz); returns ``self``."""
        torch = require("torch")
        data = _as_data(data)
        pu.check_features(self.features, data.d)
        steps = int(self.steps)
        if steps < 1:
            raise TrainingError(f"steps must be >= 1, got {self.steps}")
        if not self.lr > 0:
            raise TrainingError(f"lr must be positive, got {self.lr}")
        if int(self.polish_steps) < 0:
            raise TrainingError(f"polish_steps must be >= 0, got {self.polish_steps}")
        qa, qb, rate = _targets(data, self.loss, self.max_points, self.seed)
        z, _ = pu.feature_values(qa, self.features)
        # Fixed affine scaling of inputs and outputs: tanh nets train far better on O(1) data.
        self.z_mean_ = z.mean(axis=0)
        self.z_scale_ = np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
        self.v_scale_ = float(np.sqrt(np.mean(np.sum(rate**2, axis=1)) + 1e-300)) * float(np.mean(self.z_scale_))
        self.net_ = pu.make_mlp(z.shape[1], self.hidden, self.activation, self.seed)
        self.n_features_in_ = data.d
        self.names_ = data.names
        self.h_ = data.h
        self.mass_ = data.mass

        T = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.float64)
        qa_t, qb_t, rate_t = T(qa), T(qb), T(rate)
        n = qa.shape[0]
        w = pu.balance_weights(z) if self.balance else None
        w_t = T(w)
        bs = n if self.batch_size is None else min(int(self.batch_size), n)
        gen = torch.Generator().manual_seed(int(self.seed))
        grad = self._grad_torch

        def loss_fn(_it):
            if bs < n:
                # Minibatches drawn with the balancing weights estimate the weighted loss.
                idx = (torch.multinomial(w_t, bs, replacement=True, generator=gen) if w_t is not None
                       else torch.randint(0, n, (bs,), generator=gen))
                return hamiltonian_loss(None, qa_t[idx], None if qb_t is None else qb_t[idx], rate_t[idx],
                                        grad=grad)
            return hamiltonian_loss(None, qa_t, qb_t, rate_t, weights=w_t, grad=grad)

        t0 = time.perf_counter()
        self.loss_history_ = pu.train_loop(self.net_.parameters(), loss_fn, steps=steps, lr=float(self.lr),
                                           verbose=self.verbose, n_threads=self.n_threads, label="hamiltonian")
        self.polish_history_ = []
        if int(self.polish_steps) > 0:
            sub = np.sort(np.random.default_rng(self.seed + 1).permutation(n)[:20000])
            ws = None if w is None else T(w[sub] / w[sub].sum())
            qa_s, qb_s, rate_s = qa_t[sub], None if qb_t is None else qb_t[sub], rate_t[sub]
            self.polish_history_ = pu.lbfgs_polish(
                self.net_.parameters(),
                lambda: hamiltonian_loss(None, qa_s, qb_s, rate_s, weights=ws, grad=grad),
                steps=int(self.polish_steps), label="hamiltonian", n_threads=self.n_threads)
        self.train_time_ = time.perf_counter() - t0
        self.final_loss_ = float(hamiltonian_loss(None, qa_t[:20000], None if qb_t is None else qb_t[:20000],
                                                  rate_t[:20000], grad=grad).detach())
        return self

    def _V_torch(self, q):
        torch = require("torch")
        z = pu.feature_torch(q, self.features)
        zs = (z - torch.as_tensor(self.z_mean_)) / torch.as_tensor(self.z_scale_)
        return self.v_scale_ * self.net_(zs)[:, 0]

    def _grad_torch(self, q):
        """∇_q V_θ (n, d), differentiable in the parameters.

        For tanh networks without features the input gradient is the closed-form reverse
        sweep of ``symqp.decompose._torch_utils.mlp_input_grad`` (one backward pass in training
        instead of autograd's double backward); otherwise autograd with ``create_graph``.
        """
        torch = require("torch")
        if self.activation == "tanh" and self.features is None:
            from ._torch_utils import mlp_input_grad

            zs = (q - torch.as_tensor(self.z_mean_)) / torch.as_tensor(self.z_scale_)
            dz = mlp_input_grad(list(self.net_.parameters()), zs)
            return (self.v_scale_ / torch.as_tensor(self.z_scale_)) * dz
        q = q.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self._V_torch(q).sum(), q, create_graph=True)
        return g

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise TrainingError("this HamiltonianPotential is not fitted yet; call fit(data) first")

    def _points(self, q) -> np.ndarray:
        self._check_fitted()
        return pu.check_points(q, self.n_features_in_)

    # ------------------------------------------------------------------ evaluation
    def V(self, q) -> np.ndarray:
        """V_θ at points q (n, d) -> (n,)."""
        torch = require("torch")
        q = self._points(q)
        with torch.no_grad():
            return self._V_torch(torch.as_tensor(q)).numpy().copy()

    def V_features(self, z) -> np.ndarray:
        """V_θ as a function of the feature (r), for ``features`` not None: z (n,) or (n, 1) -> (n,)."""
        torch = require("torch")
        self._check_fitted()
        if self.features is None:
            return self.V(z)
        z = np.asarray(z, dtype=np.float64).reshape(-1, 1)
        with torch.no_grad():
            zs = (torch.as_tensor(z) - torch.as_tensor(self.z_mean_)) / torch.as_tensor(self.z_scale_)
            return (self.v_scale_ * self.net_(zs)[:, 0]).numpy().copy()

    def grad_V(self, q) -> np.ndarray:
        """∇V_θ at points q (n, d) -> (n, d)."""
        torch = require("torch")
        q = torch.as_tensor(self._points(q)).requires_grad_(True)
        (g,) = torch.autograd.grad(self._V_torch(q).sum(), q)
        return g.numpy().copy()

    def g(self, q) -> np.ndarray:
        """The non-gradient part, zero for a Hamiltonian force (n, d)."""
        return np.zeros_like(self._points(q))

    def f(self, q) -> np.ndarray:
        """The force ṗ = −∇V_θ (n, d)."""
        return -self.grad_V(q)


# ---------------------------------------------------------------------- the pipeline
def fit_hamiltonian(
    data,
    *,
    library="poly(4)",
    backend="stlsq",
    route: str = "auto",
    loss: str = "midpoint",
    features: str | None = None,
    threshold: float | None = None,
    seed: int = 0,
    steps: int | None = None,
    hidden: Sequence[int] = (16, 16),
    lr: float = 1e-2,
    polish_steps: int = 200,
    max_points: int | None = 200_000,
    model: HamiltonianPotential | None = None,
    verbose: bool = False,
):
    """Exact potential V(q) of a separable Hamiltonian system from (q, p) trajectories.

    Parameters
    ----------
    data : HamiltonianData or path
        Trajectories (npz with ``q`` (R, N, d), ``p`` (R, N, d), ``h``, optional ``mass``, ``names``).
    library : str or Library
        Candidate terms, in the coordinate names (or in ``r`` when ``features`` is set), e.g.
        ``"poly(4)"`` or ``"1, r**-1, r**-2"``.
    backend : str or Backend
        ``"stlsq"`` (Bhat's thresholded least squares with his λ rule, or ``threshold``);
        with ``route="neural"`` any registered backend (``"sr3"``, ``"operon"``) fitting V_θ.
    route : {"auto", "direct", "neural"}
        Regress the momentum increments on ∇Θ directly, or train :class:`HamiltonianPotential`
        first and regress its values (Bhat's route). ``"auto"``: direct for ``"stlsq"``,
        neural for the other backends (they fit values of V).
    loss : {"forward", "midpoint", "trapezoid"}
        Evaluation point of ∇V in both routes ("forward" = Bhat's eq. 3).
    features : {None, "radius", "pair_distance"}
        Express V through r = |q| or the pair distance; the result is substituted back into q.
    threshold : float, optional
        STLSQ threshold; ``None`` uses Bhat's λ rule (``symqp.backends.tune_threshold``).
    seed, steps, hidden, lr, polish_steps, max_points, verbose :
        Training settings for the neural route (``steps`` Adam steps, default 1000, then
        ``polish_steps`` L-BFGS iterations, default 200; see :class:`HamiltonianPotential`).
    model : HamiltonianPotential, optional
        An already fitted network to reuse (neural route).

    Returns
    -------
    Result
        ``model="hamiltonian"``; ``V`` the potential without its constant (the regressed
        intercept is kept in ``metrics["coefficients"]``), ``U = 2V`` as in every Result,
        ``g = 0`` and ``f = −∇V`` (the force ṗ = f(q)). ``metrics["V_features"]`` holds V in
        the feature variable when ``features`` is set.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> from types import SimpleNamespace
    >>> from symqp.data._hamiltonian import sample_hamiltonian
    >>> q = sp.Symbol("q")
    >>> osc = SimpleNamespace(q=(q,), V=q**2 / 2, mass=None)
    >>> data = sample_hamiltonian(osc, 3, 200, 0.01, q0=[[0.0]] * 3, p0=[[1.0], [2.0], [3.0]])
    >>> res = fit_hamiltonian(data, library="poly(3)")
    >>> round(float(res.V.coeff(q, 2)), 4)
    0.5
    """
    t_start = time.perf_counter()
    data = _as_data(data)
    if route not in ("auto", "direct", "neural"):
        raise DataError(f"unknown route {route!r}; choose 'auto', 'direct' or 'neural'")
    if route == "auto":
        route = "direct" if pu.backend_name(backend) == "stlsq" else "neural"
    if loss not in LOSSES:
        raise DataError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    pu.check_features(features, data.d)
    syms, back = pu.feature_symbols(features, data.names)
    lib = pu.as_library(library, syms)
    timings: dict[str, float] = {}
    metrics: dict = {"route": route, "loss": loss, "features": features, "h": data.h,
                     "n_traj": data.n_traj, "n_steps": data.n_steps}
    bname = pu.backend_name(backend)

    qa, qb, rate = _targets(data, loss, max_points, seed)
    fit_obj = None
    if route == "direct":
        if bname != "stlsq":
            raise BackendError(f"route='direct' regresses on the gradient library with 'stlsq'; "
                               f"backend {bname!r} needs route='neural'")
        t0 = time.perf_counter()
        Za, Ja = pu.feature_values(qa, features)
        A = pu.gradient_design(lib, Za, Ja)
        if qb is not None:
            Zb, Jb = pu.feature_values(qb, features)
            A = 0.5 * (A + pu.gradient_design(lib, Zb, Jb))
        b = -rate.reshape(-1)
        coef, info = pu.sparse_fit(A, b, threshold=threshold)
        timings["regression"] = time.perf_counter() - t0
        metrics.update(info)
    else:
        t0 = time.perf_counter()
        if model is None:
            model = HamiltonianPotential(hidden=hidden, loss=loss, features=features,
                                         steps=1000 if steps is None else steps, lr=lr,
                                         polish_steps=polish_steps, max_points=max_points,
                                         seed=seed, verbose=verbose).fit(data)
        elif not hasattr(model, "net_"):
            raise TrainingError("the given model is not fitted")
        timings["training"] = time.perf_counter() - t0
        metrics["train_loss"] = model.final_loss_
        metrics["train_steps"] = len(model.loss_history_)
        t0 = time.perf_counter()
        pts = qa if qb is None else np.concatenate([qa, qb])
        pts = pts[np.random.default_rng(seed).permutation(len(pts))[: min(len(pts), 20000)]]
        Z, _ = pu.feature_values(pts, features)
        v = model.V(pts)
        if bname == "stlsq":
            theta = pu.library_values(lib, Z)
            coef, info = pu.sparse_fit(theta, v, threshold=threshold)
            metrics.update(info)
        else:
            coef, fit_obj = _backend_fit(backend, lib, Z, v, model, pts, features, seed)
        timings["regression"] = time.perf_counter() - t0
    V_feat, const = _drop_constant(lib, coef)
    metrics["coefficients"] = {name: float(c) for name, c in zip(lib.names, coef) if c != 0}
    metrics["intercept"] = const
    V = V_feat.subs(back) if back else sp.expand(V_feat)
    qsyms = tuple(sp.Symbol(s) for s in data.names)
    if features is not None:
        metrics["V_features"] = str(V_feat)
    grad_V = tuple(sp.diff(V, s) for s in qsyms)
    metrics["force_rmse"] = _force_rmse(grad_V, qsyms, data, loss, seed)
    timings["total"] = time.perf_counter() - t_start
    from ..result import Result

    return Result(
        variables=tuple(data.names), U=2 * V, V=V, grad_V=grad_V,
        g=tuple(sp.Integer(0) for _ in qsyms), f=tuple(-gv for gv in grad_V),
        backend=bname, library=_spec(library, lib), metrics=metrics, timings=timings,
        fit=fit_obj, model="hamiltonian",
    )


def _spec(library, lib) -> str:
    return library if isinstance(library, str) else ", ".join(lib.names)


def _drop_constant(lib, coef: np.ndarray) -> tuple[sp.Expr, float]:
    const = 0.0
    keep = np.array(coef, dtype=np.float64)
    for j, term in enumerate(lib.terms):
        if term.is_number:
            const += float(keep[j] * float(term))
            keep[j] = 0.0
    return lib.expression(keep), const


def _backend_fit(backend, lib, Z, v, model, pts, features, seed):
    """Fit V_θ's values with a registered backend through a :class:`symqp.backends.Problem`."""
    from .. import backends

    be = backends.get_backend(backend) if isinstance(backend, str) else backend
    if features is None:
        grad = model.grad_V(pts)
    else:  # dV/dr by finite differences of the scalar network (exactness not needed here)
        eps = 1e-6 * max(1.0, float(np.abs(Z).max()))
        grad = ((model.V_features(Z + eps) - model.V_features(Z - eps)) / (2 * eps))[:, None]
    n = len(v)
    k = int(0.8 * n)
    prob = backends.Problem(X=Z[:k], f=-grad[:k], V=v[:k], g=np.zeros_like(grad[:k]), library=lib,
                            X_val=Z[k:], f_val=-grad[k:], V_val=v[k:], g_val=np.zeros_like(grad[k:]))
    fit = be.fit(prob)
    coef = None
    if fit.coef is not None:
        d = Z.shape[1]
        coef = np.asarray(fit.coef)[:, d]
    else:  # evolutionary backends: read coefficients of the library terms off the expression
        expr = sp.expand(fit.V)
        coef = np.array([float(expr.coeff(t)) if not t.is_number else float(expr.as_coeff_add()[0])
                         for t in lib.terms])
    return coef, fit


def _force_rmse(grad_V, qsyms, data: HamiltonianData, loss: str, seed: int) -> float:
    """RMS of (p_{i+1} − p_i)/h + ∇V over up to 20000 transitions (∇V at the loss's point)."""
    qa, qb, rate = _targets(data, loss, 20000, seed + 1)
    fn = sp.lambdify([qsyms], list(grad_V), modules="numpy")

    def ev(q):
        cols = fn(tuple(q[:, k] for k in range(q.shape[1])))
        return np.stack([np.broadcast_to(np.asarray(c, float), (q.shape[0],)) for c in cols], 1)

    with np.errstate(all="ignore"):
        g = ev(qa) if qb is None else 0.5 * (ev(qa) + ev(qb))
    return float(np.sqrt(np.mean(np.sum((rate + g) ** 2, axis=1))))
