"""Neural orthogonal decomposition f = −∇V + g (g·∇V = 0) from snapshot pairs.

Follows Lin & Belardinelli (sections 2.2, App. B) and the authors' reference recipe:
V_θ(x) = η_v (NN_V(x̃) + |x̃|²), g_θ(x) = η_g NN_g(x̃), x̃ = (x − μ)/σ, frozen output scales
η from the data; loss = one-step midpoint-RK2 prediction error + λ · mean w(cos(∇V, g)) over a
representative subset. Two things differ, both for speed and for unattended use:

- the loss is scale-free: the prediction term is divided by mean |Y|², Y = (x_h − x_0)/h, so
  the default λ works for states of size 1e−2 as well as 1 (the paper's λ = 1e−11 for its
  second example only compensates an unnormalised loss);
- training is a short Adam phase (float32 by default, warm-up and exponential decay) followed
  by full-batch L-BFGS in float64 on a fixed subsample, instead of 150,001 Adam steps: this
  reaches the accuracy the symbolic step needs in minutes instead of hours on a CPU (see
  ``benchmarks/decompose_speed.py``).

The estimator lives here; its settings in ``_neural_settings``, the training state (which is
the checkpoint) in ``_neural_state`` and the training loop in ``_neural_train``. torch is
imported inside the methods only, so ``import symqp.decompose`` stays light.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DataError, ResultFormatError, TrainingError, first_line
from .._estimator import Estimator
from .._io import atomic_write
from .._optional import require
from ..data._pairs import Pairs
from ._neural_settings import RUNTIME_PARAMS, DecompositionSettings
from ._neural_state import read_torch_file, require_keys
from ._potential_utils import torch_threads
from ._subset import representative_subset

__all__ = ["NeuralDecomposition", "representative_subset"]

_FORMAT = "symqp.neural/1"
_SAVED_KEYS = ["params", "v_params", "g_params", "mu", "sigma", "eta_v", "eta_g", "subset", "history", "scalars", "names"]
_SCALARS = ("n_steps", "best_step", "stopped_early", "r", "lam", "y2", "wall_s", "h", "d")


def _as_pairs(pairs: Any, what: str) -> Pairs:
    """A :class:`symqp.data.Pairs` as is, or one built (and so validated) from ``(x0, xh, h[, traj])``."""
    if isinstance(pairs, Pairs):
        return pairs
    if not isinstance(pairs, (tuple, list)) or len(pairs) not in (3, 4):
        raise DataError(
            f"{what} must be a symqp.data.Pairs or a tuple (x0, xh, h[, traj]); got {type(pairs).__name__}"
        )
    try:
        return Pairs(pairs[0], pairs[1], pairs[2], traj=pairs[3] if len(pairs) == 4 else None)
    except DataError as exc:
        raise DataError(f"{what}: {exc}" if what != "pairs" else str(exc)) from None


def _split(data: Pairs, frac: float, seed: int) -> tuple[Pairs, Pairs]:
    """(train, validation): by trajectory when there are several, else by pair."""
    if data.traj is not None and np.unique(data.traj).size < 2:
        data = Pairs(data.x0, data.xh, data.h, data.names)
    return data.split(frac, seed=seed)


def _fingerprint(data: Pairs) -> str:
    """Hash of the pairs and the time step (a checkpoint resumes only on the same data)."""
    hsh = hashlib.sha1()
    for a in (data.x0, data.xh):
        hsh.update(np.ascontiguousarray(a).tobytes())
    hsh.update(repr(data.h).encode())
    return hsh.hexdigest()


class NeuralDecomposition(Estimator):
    """Learn f = −∇V + g with g·∇V ≈ 0 from snapshot pairs (x_0, x_h) with two tanh MLPs.

    All arguments are keyword-only and stored unchanged; :meth:`fit` validates them once
    into a :class:`~symqp.decompose._neural_settings.DecompositionSettings` and raises
    :class:`~symqp._errors.ParameterError` (a ``ValueError``) naming a bad one.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer widths of both networks (V: d-…-1, g: d-…-d).
    steps : int
        Adam steps (first phase).
    batch_size : int
        Pairs per Adam step.
    lr, lr_final : float
        Adam learning rate after warm-up, and at the last Adam step (exponential decay).
    warmup : int
        Linear learning-rate warm-up steps.
    lbfgs_steps : int
        Full-batch L-BFGS iterations (second phase, always float64); 0 skips the phase.
    lbfgs_points : int
        Training pairs used by the L-BFGS phase (a fixed random subsample).
    lam : float or None
        Weight of the orthogonality term of the scale-free loss; None → 1.0.
    delta : float
        Weight of negative cosines in w(z) (asymmetric penalty; 0.1 as in the paper).
    r : float or None
        Radius of the representative subset in normalised coordinates; None picks the radius
        whose r-net has about ``subset_size`` points.
    subset_size : int
        Target size of the representative subset when ``r`` is None.
    subset_batch : int
        Subset points per Adam step for the orthogonality term (all of them for L-BFGS).
    val_frac : float
        Fraction of trajectories used for training when no validation data are given
        (split by trajectory when ids are known); 1.0 disables validation.
    patience : int or None
        Stop after this many validation checks without improvement (None: never).
    log_every : int
        Steps between validation checks, history entries and checkpoints-eligible points.
    device : {"cpu", "cuda"} or str
    dtype : {"float64", "float32"}
        Dtype of the final model and of the L-BFGS phase.
    adam_dtype : {"float32", "float64"} or None
        Dtype of the Adam phase (None: same as ``dtype``).
    seed : int
        Seed of initialisation, split, subset and batches; CPU runs are bitwise repeatable.
    threads : int or None
        torch intra-op threads during fit (None: leave torch's setting).
    verbose : bool
        Show a progress bar (loss, validation loss, orthogonality, ETA).
    checkpoint_every : int or None
        Write a checkpoint every this many steps (Adam steps and L-BFGS iterations count).
    checkpoint_path : str or path or None
        Where checkpoints go (checked to be writable before training starts).
    resume : bool or str or path
        Resume from a checkpoint (True: ``checkpoint_path``); gives the same final model as an
        uninterrupted run with the same data and settings (a run the callback stopped
        continues; one that early stopping ended stays ended).
    callback : callable or None
        ``callback(step, logs)`` after every validation check; returning True stops training.

    The parameters ``device``, ``threads``, ``verbose``, ``checkpoint_every``,
    ``checkpoint_path``, ``resume`` and ``callback`` do not change the trained model; all
    others do: they must match to resume a checkpoint, and :meth:`save` stores them.

    Attributes
    ----------
    history_ : dict of lists
        ``step``, ``loss``, ``val_loss``, ``orth`` (mean w(cos)), ``lr`` per check.
    n_steps_, best_step_ : int
        Steps taken (Adam + L-BFGS), and the step of the best validation loss.
    stopped_early_ : bool
        Whether early stopping ended a phase.
    mu_, sigma_ : numpy.ndarray
        Input normalisation.
    eta_v_, eta_g_ : float
        Frozen output scales.
    subset_ : numpy.ndarray, shape (S, d)
        Representative subset.
    r_, lam_, y2_ : float
        Radius, orthogonality weight and mean |Y|² used.
    module_ : torch.nn.Module
        The trained model (see :meth:`to_torch`).
    wall_s_ : float
        Training wall time of the last ``fit`` call.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x0 = rng.uniform(-1, 1, size=(2000, 2))
    >>> h = 0.01
    >>> xh = x0 + h * (-x0)             # f = -x = -grad(|x|^2 / 2)
    >>> nd = NeuralDecomposition(hidden=(8,), steps=50, lbfgs_steps=20, verbose=False)
    >>> nd = nd.fit((x0, xh, h))
    >>> nd.grad_V(x0[:3]).shape
    (3, 2)
    """

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] = (40, 40, 40),
        steps: int = 3000,
        batch_size: int = 2000,
        lr: float = 5e-3,
        lr_final: float = 2e-4,
        warmup: int = 100,
        lbfgs_steps: int = 400,
        lbfgs_points: int = 20_000,
        lam: float | None = None,
        delta: float = 0.1,
        r: float | None = None,
        subset_size: int = 3000,
        subset_batch: int = 1000,
        val_frac: float = 0.7,
        patience: int | None = 20,
        log_every: int = 100,
        device: str = "cpu",
        dtype: str = "float64",
        adam_dtype: str | None = "float32",
        seed: int = 0,
        threads: int | None = None,
        verbose: bool = True,
        checkpoint_every: int | None = None,
        checkpoint_path: str | Path | None = None,
        resume: bool | str | Path = False,
        callback: Callable[[int, dict], Any] | None = None,
    ) -> None:
        self.hidden = hidden
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.lr_final = lr_final
        self.warmup = warmup
        self.lbfgs_steps = lbfgs_steps
        self.lbfgs_points = lbfgs_points
        self.lam = lam
        self.delta = delta
        self.r = r
        self.subset_size = subset_size
        self.subset_batch = subset_batch
        self.val_frac = val_frac
        self.patience = patience
        self.log_every = log_every
        self.device = device
        self.dtype = dtype
        self.adam_dtype = adam_dtype
        self.seed = seed
        self.threads = threads
        self.verbose = verbose
        self.checkpoint_every = checkpoint_every
        self.checkpoint_path = checkpoint_path
        self.resume = resume
        self.callback = callback

    @classmethod
    def _model_param_names(cls) -> tuple[str, ...]:
        """The parameters that change the trained model (all but the runtime ones)."""
        return tuple(n for n in cls._get_param_names() if n not in RUNTIME_PARAMS)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, pairs: Any, *, X_val: Any = None) -> NeuralDecomposition:
        """Train the decomposition on snapshot pairs.

        Parameters
        ----------
        pairs : symqp.data.Pairs or tuple (x0, xh, h[, traj])
            Training pairs: x0, xh of shape (n, d), time step h > 0, optional trajectory ids.
        X_val : Pairs or tuple, optional, keyword-only
            Validation pairs with the same d and h. When omitted, a ``1 − val_frac`` share of
            the trajectories of ``pairs`` is held out (none if ``val_frac == 1``).

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> x0 = rng.uniform(-1, 1, size=(1000, 2)); h = 0.01
        >>> nd = NeuralDecomposition(hidden=(8,), steps=20, lbfgs_steps=0, verbose=False)
        >>> nd.fit((x0, x0 - h * x0, h)).n_steps_
        20
        """
        s = DecompositionSettings.from_estimator(self)
        data = _as_pairs(pairs, "pairs")
        train, val = self._train_val(s, data, X_val)
        require("torch")
        from ._neural_train import train as run_training

        with torch_threads(s.threads):
            fitted, state = run_training(
                s, train.x0, train.xh, data.h, None if val is None else val.x0, None if val is None else val.xh,
                fingerprint=_fingerprint(data),
            )  # fmt: skip
        self.module_ = fitted.module
        self.history_ = state.history
        self.n_steps_ = state.step
        self.best_step_ = state.best_step
        self.stopped_early_ = bool(state.stopped_early or state.adam_end < s.steps)
        self.mu_, self.sigma_ = fitted.mu, fitted.sigma
        self.eta_v_, self.eta_g_ = fitted.eta_v, fitted.eta_g
        self.r_, self.lam_, self.y2_ = fitted.r, s.lam, fitted.y2
        self.subset_ = fitted.subset
        self.wall_s_ = fitted.wall_s
        self.n_features_in_ = data.d
        self.h_ = data.h
        self.names_ = data.names
        return self

    @staticmethod
    def _train_val(s: DecompositionSettings, data: Pairs, X_val: Any) -> tuple[Pairs, Pairs | None]:
        """Training and validation pairs: given ones, a split by trajectory, or no validation."""
        if X_val is not None:
            val = _as_pairs(X_val, "X_val")
            if val.d != data.d:
                raise DataError(f"X_val has d = {val.d} but pairs have d = {data.d}")
            if not math.isclose(val.h, data.h, rel_tol=1e-9):
                raise DataError(f"X_val.h = {val.h} differs from pairs.h = {data.h}")
            train = data
        elif s.val_frac < 1:
            if data.n < 4:
                raise DataError(f"need at least 4 pairs to hold out validation data; got {data.n}")
            train, val = _split(data, s.val_frac, s.seed)
        else:
            train, val = data, None
        if train.n < 2:
            raise DataError(f"need at least 2 training pairs; got {train.n}")
        return train, val

    # -- prediction ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise TrainingError("this NeuralDecomposition is not fitted yet; call fit(pairs) first")

    def _eval(self, x: Any, which: str, chunk: int = 100_000) -> np.ndarray:
        self._check_fitted()
        torch = require("torch")
        from . import _torch_utils as tu

        try:
            X = np.array(x, dtype=np.float64)  # a writable copy: torch refuses read-only memory
        except (TypeError, ValueError) as exc:
            raise DataError(f"x is not a numeric array ({first_line(exc)})") from None
        d = self.n_features_in_
        if X.ndim == 1 and X.shape[0] == d:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != d:
            raise DataError(f"x must have shape (n, {d}); got {X.shape}")
        if not np.isfinite(X).all():
            raise DataError("x contains NaN or infinite values")
        m = self.module_
        vp, gp = list(m.v_params), list(m.g_params)
        out = []
        with torch.no_grad():
            for i in range(0, max(X.shape[0], 1), chunk):
                xt = (torch.as_tensor(X[i : i + chunk], dtype=m.mu.dtype, device=m.mu.device) - m.mu) / m.sigma
                if which == "V":
                    r = m.eta_v * (tu.mlp_value(vp, xt) + (xt * xt).sum(1))
                elif which == "grad_V":
                    r = (m.eta_v / m.sigma) * (tu.mlp_input_grad(vp, xt) + 2 * xt)
                elif which == "g":
                    r = m.eta_g * tu.mlp_forward(gp, xt)
                else:  # f
                    r = m.eta_g * tu.mlp_forward(gp, xt) - (m.eta_v / m.sigma) * (tu.mlp_input_grad(vp, xt) + 2 * xt)
                out.append(r.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0,) if which == "V" else (0, d))

    def V(self, x: Any) -> np.ndarray:
        """Potential V_θ at the rows of ``x`` (n, d) → (n,) float64 (defined up to a constant)."""
        return self._eval(x, "V")

    def grad_V(self, x: Any) -> np.ndarray:
        """Gradient ∇V_θ at the rows of ``x`` (n, d) → (n, d) float64."""
        return self._eval(x, "grad_V")

    def g(self, x: Any) -> np.ndarray:
        """Circulatory part g_θ at the rows of ``x`` (n, d) → (n, d) float64."""
        return self._eval(x, "g")

    def f(self, x: Any) -> np.ndarray:
        """Learned vector field f_θ = −∇V_θ + g_θ at the rows of ``x`` (n, d) → (n, d) float64."""
        return self._eval(x, "f")

    def to_torch(self) -> Any:
        """The trained model as a :class:`torch.nn.Module` mapping x (n, d) to (V, ∇V, g)."""
        self._check_fitted()
        return self.module_

    # -- save / load ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the trained decomposition (tensors and metadata, no pickled code) atomically."""
        self._check_fitted()
        torch = require("torch")
        m = self.module_
        params = {k: getattr(self, k) for k in self._model_param_names()}
        params["hidden"] = list(params["hidden"])
        scalars = (self.n_steps_, self.best_step_, self.stopped_early_, self.r_, self.lam_, self.y2_,
                   self.wall_s_, self.h_, self.n_features_in_)  # fmt: skip
        state = {
            "format": _FORMAT,
            "params": params,
            "v_params": [p.detach().cpu() for p in m.v_params],
            "g_params": [p.detach().cpu() for p in m.g_params],
            "mu": torch.as_tensor(self.mu_),
            "sigma": torch.as_tensor(self.sigma_),
            "eta_v": self.eta_v_,
            "eta_g": self.eta_g_,
            "subset": torch.as_tensor(self.subset_),
            "history": self.history_,
            "scalars": dict(zip(_SCALARS, scalars)),
            "names": list(self.names_),
        }
        with atomic_write(path, "wb") as fh:
            torch.save(state, fh)

    @classmethod
    def load(cls, path: str | Path) -> NeuralDecomposition:
        """Read a decomposition written by :meth:`save` (tensors only; nothing is executed)."""
        require("torch")
        path = Path(path)
        if not path.is_file():
            raise ResultFormatError(f"file {str(path)!r} does not exist")
        st = read_torch_file(path, _FORMAT, "", "a saved symqp NeuralDecomposition")
        require_keys(st, _SAVED_KEYS, path.name)
        try:
            return cls._from_saved(st)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            raise ResultFormatError(f"{path.name} is damaged: {first_line(exc)}") from None

    @classmethod
    def _from_saved(cls, st: dict) -> NeuralDecomposition:
        from . import _torch_utils as tu

        params = dict(st["params"])
        params["hidden"] = tuple(params["hidden"])
        obj = cls(**params, verbose=False)
        sc = st["scalars"]
        dt = st["v_params"][0].dtype
        obj.module_ = tu.DecompositionModule(
            st["v_params"], st["g_params"], st["mu"].to(dt), st["sigma"].to(dt), st["eta_v"], st["eta_g"]
        )
        obj.module_.requires_grad_(False)
        obj.history_ = {k: list(v) for k, v in st["history"].items()}
        obj.n_steps_ = int(sc["n_steps"])
        obj.best_step_ = int(sc["best_step"])
        obj.stopped_early_ = bool(sc["stopped_early"])
        obj.mu_ = st["mu"].numpy()
        obj.sigma_ = st["sigma"].numpy()
        obj.eta_v_ = float(st["eta_v"])
        obj.eta_g_ = float(st["eta_g"])
        obj.r_ = float(sc["r"])
        obj.lam_ = float(sc["lam"])
        obj.y2_ = float(sc["y2"])
        obj.wall_s_ = float(sc["wall_s"])
        obj.h_ = float(sc["h"])
        obj.n_features_in_ = int(sc["d"])
        obj.subset_ = st["subset"].numpy()
        obj.names_ = tuple(st["names"])
        obj.f(obj.subset_[:1])  # the networks and the scales must fit together
        return obj
