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

import time
from collections.abc import Sequence

import numpy as np

from .._errors import DataError, TrainingError
from .._estimator import Estimator, check_bool, check_choice, check_int
from .._optional import require
from ..data._hamiltonian import HamiltonianData, load_hamiltonian
from . import _potential_utils as pu

__all__ = ["HamiltonianPotential", "hamiltonian_loss"]

LOSSES = ("forward", "midpoint", "trapezoid")


def _as_data(data) -> HamiltonianData:
    return pu.as_dataset(data, HamiltonianData, load_hamiltonian)


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


class HamiltonianPotential(Estimator):
    """Neural potential V_θ(q) of a separable Hamiltonian system, trained on (q, p) data.

    All arguments are keyword-only and stored unchanged; :meth:`fit` validates them and
    raises :class:`~symqp._errors.ParameterError` naming a bad one.

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
    lbfgs_steps : int
        L-BFGS iterations after Adam on up to 20000 transitions (0 = none); a few hundred
        reach a far lower loss than many more Adam steps.
    max_points : int or None
        Use at most this many transitions (random subset).
    seed : int
    verbose : bool
        Print the loss ten times during training.
    threads : int or None
        torch intra-op threads during fit (None: leave torch's setting).
    device : {"cpu", "cuda"} or str
        torch device of the network and of the training data (``"cuda:1"``); evaluation
        takes and returns NumPy arrays on the host either way.

    Attributes
    ----------
    net_ : torch.nn.Sequential
        The trained network (of the scaled features).
    loss_history_, lbfgs_history_ : list of float
        Loss per Adam step and per L-BFGS evaluation.
    final_loss_, train_time_ : float

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
                 lbfgs_steps: int = 0, max_points: int | None = 200_000,
                 seed: int = 0, verbose: bool = False, threads: int | None = 1,
                 device: str = "cpu") -> None:
        self.hidden = hidden
        self.activation = activation
        self.loss = loss
        self.features = features
        self.balance = balance
        self.steps = steps
        self.lr = lr
        self.batch_size = batch_size
        self.lbfgs_steps = lbfgs_steps
        self.max_points = max_points
        self.seed = seed
        self.verbose = verbose
        self.threads = threads
        self.device = device

    # ------------------------------------------------------------------ fitting
    def fit(self, data) -> HamiltonianPotential:
        """Train on ``data`` (HamiltonianData or a path to an npz); returns ``self``."""
        torch = require("torch")
        ts = pu.TrainSettings.from_estimator(self)
        check_choice(self, "loss", self.loss, LOSSES)
        self.features_ = check_choice(self, "features", self.features, (None, *pu.FEATURES))
        balance = check_bool(self, "balance", self.balance)
        max_points = check_int(self, "max_points", self.max_points, minimum=1, allow_none=True)
        self.activation_ = ts.activation
        data = _as_data(data)
        pu.check_features(self.features_, data.d)
        qa, qb, rate = _targets(data, self.loss, max_points, ts.seed)
        z, _ = pu.feature_values(qa, self.features_)
        # Fixed affine scaling of inputs and outputs: tanh nets train far better on O(1) data.
        self.z_mean_ = z.mean(axis=0)
        self.z_scale_ = np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
        self.v_scale_ = float(np.sqrt(np.mean(np.sum(rate**2, axis=1)) + 1e-300)) * float(np.mean(self.z_scale_))
        dev = pu.torch_device(ts.device)
        self.net_ = pu.make_mlp(z.shape[1], ts.hidden, ts.activation, ts.seed).to(dev)
        self.n_features_in_ = data.d
        self.names_ = data.names
        self.h_ = data.h
        self.mass_ = data.mass

        T = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.float64, device=dev)
        qa_t, qb_t, rate_t = T(qa), T(qb), T(rate)
        n = qa.shape[0]
        w = pu.balance_weights(z) if balance else None
        w_t = T(w)
        w_host = None if w is None else torch.as_tensor(w)  # minibatches are drawn on the host
        bs = n if ts.batch_size is None else min(ts.batch_size, n)
        gen = torch.Generator().manual_seed(ts.seed)
        grad = self._grad_torch

        def loss_fn():
            if bs < n:
                # Minibatches drawn with the balancing weights estimate the weighted loss.
                idx = (torch.multinomial(w_host, bs, replacement=True, generator=gen) if w_host is not None
                       else torch.randint(0, n, (bs,), generator=gen)).to(dev)
                return hamiltonian_loss(None, qa_t[idx], None if qb_t is None else qb_t[idx], rate_t[idx],
                                        grad=grad)
            return hamiltonian_loss(None, qa_t, qb_t, rate_t, weights=w_t, grad=grad)

        # L-BFGS: full batch on (at most) 20000 transitions
        sub_np = np.sort(np.random.default_rng(ts.seed + 1).permutation(n)[:20000])
        sub = torch.as_tensor(sub_np, device=dev)
        ws = None if w is None else T(w[sub_np] / w[sub_np].sum())
        qa_s, qb_s, rate_s = qa_t[sub], None if qb_t is None else qb_t[sub], rate_t[sub]

        t0 = time.perf_counter()
        self.loss_history_, self.lbfgs_history_ = pu.train(
            self.net_.parameters(), loss_fn, lambda: hamiltonian_loss(None, qa_s, qb_s, rate_s, weights=ws, grad=grad),
            steps=ts.steps, lr=ts.lr, lbfgs_steps=ts.lbfgs_steps, verbose=ts.verbose, label="hamiltonian",
            threads=ts.threads,
        )  # fmt: skip
        self.train_time_ = time.perf_counter() - t0
        self.final_loss_ = float(hamiltonian_loss(None, qa_t[:20000], None if qb_t is None else qb_t[:20000],
                                                  rate_t[:20000], grad=grad).detach())
        return self

    def _V_torch(self, q):
        torch = require("torch")
        z = pu.feature_torch(q, self.features_)
        zs = (z - torch.as_tensor(self.z_mean_, device=q.device)) / torch.as_tensor(self.z_scale_, device=q.device)
        return self.v_scale_ * self.net_(zs)[:, 0]

    def _grad_torch(self, q):
        """∇_q V_θ (n, d), differentiable in the parameters.

        For tanh networks without features the input gradient is the closed-form reverse
        sweep of ``symqp.decompose._torch_utils.mlp_input_grad`` (one backward pass in training
        instead of autograd's double backward); otherwise autograd with ``create_graph``.
        """
        torch = require("torch")
        if self.activation_ == "tanh" and self.features_ is None:
            from ._torch_utils import mlp_input_grad

            scale = torch.as_tensor(self.z_scale_, device=q.device)
            zs = (q - torch.as_tensor(self.z_mean_, device=q.device)) / scale
            dz = mlp_input_grad(list(self.net_.parameters()), zs)
            return (self.v_scale_ / scale) * dz
        q = q.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self._V_torch(q).sum(), q, create_graph=True)
        return g

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise TrainingError("this HamiltonianPotential is not fitted yet; call fit(data) first")

    def _points(self, q) -> np.ndarray:
        self._check_fitted()
        return pu.check_points(q, self.n_features_in_)

    def _tensor(self, a: np.ndarray):
        """Host array -> float64 tensor on the network's device."""
        torch = require("torch")
        return torch.as_tensor(a, dtype=torch.float64, device=next(self.net_.parameters()).device)

    # ------------------------------------------------------------------ evaluation
    def V(self, q) -> np.ndarray:
        """V_θ at points q (n, d) -> (n,)."""
        torch = require("torch")
        q = self._points(q)
        with torch.no_grad():
            return self._V_torch(self._tensor(q)).cpu().numpy().copy()

    def V_features(self, z) -> np.ndarray:
        """V_θ as a function of the feature (r), for ``features`` not None: z (n,) or (n, 1) -> (n,)."""
        torch = require("torch")
        self._check_fitted()
        if self.features_ is None:
            return self.V(z)
        z = np.asarray(z, dtype=np.float64).reshape(-1, 1)
        with torch.no_grad():
            zt = self._tensor(z)
            zs = (zt - torch.as_tensor(self.z_mean_, device=zt.device)) / torch.as_tensor(self.z_scale_, device=zt.device)
            return (self.v_scale_ * self.net_(zs)[:, 0]).cpu().numpy().copy()

    def grad_V(self, q) -> np.ndarray:
        """∇V_θ at points q (n, d) -> (n, d)."""
        torch = require("torch")
        q = self._tensor(self._points(q)).requires_grad_(True)
        (g,) = torch.autograd.grad(self._V_torch(q).sum(), q)
        return g.cpu().numpy().copy()

    def g(self, q) -> np.ndarray:
        """The non-gradient part, zero for a Hamiltonian force (n, d)."""
        return np.zeros_like(self._points(q))

    def f(self, q) -> np.ndarray:
        """The force ṗ = −∇V_θ (n, d)."""
        return -self.grad_V(q)
