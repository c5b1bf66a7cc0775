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

torch is imported inside the methods only, so ``import symqp.decompose`` stays light.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DataError, ResultFormatError, TrainingError
from .._io import atomic_write
from .._optional import require

__all__ = ["NeuralDecomposition", "representative_subset"]

_FORMAT = "symqp.neural/1"
_CHECKPOINT_FORMAT = "symqp.neural-checkpoint/1"


# ----------------------------------------------------------------------------------------
# data handling
# ----------------------------------------------------------------------------------------
def _as_array(a: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} is not a numeric array ({exc})") from None
    if not arr.flags.writeable:  # torch refuses to wrap read-only memory
        arr = arr.copy()
    return arr


def _unpack_pairs(pairs: Any, what: str = "pairs") -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """Return ``(x0, xh, h, traj)`` from a :class:`symqp.data.Pairs` or a tuple ``(x0, xh, h[, traj])``."""
    if hasattr(pairs, "x0") and hasattr(pairs, "xh") and hasattr(pairs, "h"):
        x0, xh, h, traj = pairs.x0, pairs.xh, pairs.h, getattr(pairs, "traj", None)
    elif isinstance(pairs, (tuple, list)) and len(pairs) in (3, 4):
        x0, xh, h = pairs[:3]
        traj = pairs[3] if len(pairs) == 4 else None
    else:
        raise DataError(
            f"{what} must be a symqp.data.Pairs or a tuple (x0, xh, h[, traj]); got {type(pairs).__name__}"
        )
    x0 = _as_array(x0, f"{what}.x0")
    xh = _as_array(xh, f"{what}.xh")
    if x0.ndim != 2 or x0.shape[0] == 0 or x0.shape[1] == 0:
        raise DataError(f"{what}.x0 must be a non-empty (n, d) array; got shape {x0.shape}")
    if xh.shape != x0.shape:
        raise DataError(f"{what}.xh has shape {xh.shape} but x0 has shape {x0.shape}; they must match")
    if not np.isfinite(x0).all():
        raise DataError(f"{what}.x0 contains NaN or infinite values ({int((~np.isfinite(x0)).sum())} entries)")
    if not np.isfinite(xh).all():
        raise DataError(f"{what}.xh contains NaN or infinite values ({int((~np.isfinite(xh)).sum())} entries)")
    try:
        h = float(h)
    except (TypeError, ValueError):
        raise DataError(f"{what}.h must be a positive number; got {h!r}") from None
    if not (math.isfinite(h) and h > 0):
        raise DataError(f"{what}.h must be a positive finite time step; got {h}")
    if traj is not None:
        traj = np.asarray(traj)
        if traj.shape != (x0.shape[0],):
            raise DataError(f"{what}.traj must have shape ({x0.shape[0]},); got {traj.shape}")
    return x0, xh, h, traj


def _split(n: int, traj: np.ndarray | None, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): by trajectory when ids are known, else by pair."""
    rng = np.random.default_rng(seed)
    if traj is not None and len(np.unique(traj)) >= 2:
        ids = np.unique(traj)
        perm = rng.permutation(len(ids))
        n_train = min(max(1, int(round(frac * len(ids)))), len(ids) - 1)
        train_ids = ids[perm[:n_train]]
        mask = np.isin(traj, train_ids)
        return np.flatnonzero(mask), np.flatnonzero(~mask)
    perm = rng.permutation(n)
    n_train = min(max(1, int(round(frac * n))), n - 1)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def _fingerprint(*arrays: np.ndarray, extra: str = "") -> str:
    hsh = hashlib.sha1()
    for a in arrays:
        hsh.update(np.ascontiguousarray(a).tobytes())
    hsh.update(extra.encode())
    return hsh.hexdigest()


# ----------------------------------------------------------------------------------------
# representative subset
# ----------------------------------------------------------------------------------------
def representative_subset(X: Any, r: float, seed: int = 0, *, normalize: bool = True) -> np.ndarray:
    """Indices of a greedy random r-net of the rows of ``X`` (Algorithm 1 of Lin et al.).

    Repeatedly pick a random remaining point, keep it, and drop every point within distance
    ``r`` of it. The kept points are ``r`` apart from each other and every point lies within
    ``r`` of a kept one, so the subset covers the data region roughly uniformly whatever
    the data density.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Points.
    r : float
        Radius, in normalised coordinates (x − mean)/std when ``normalize`` is true.
    seed : int
        Seed of the random visiting order.
    normalize : bool, keyword-only
        Measure distances after scaling each column to zero mean and unit deviation.

    Returns
    -------
    numpy.ndarray of int
        Sorted indices of the kept rows.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(size=(2000, 2))
    >>> idx = representative_subset(X, 0.2, seed=0, normalize=False)
    >>> from scipy.spatial.distance import pdist
    >>> bool(pdist(X[idx]).min() > 0.2)
    True
    """
    from scipy.spatial import cKDTree

    X = _as_array(X, "X")
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError(f"X must be a non-empty (n, d) array; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise DataError("X contains NaN or infinite values")
    try:
        r = float(r)
    except (TypeError, ValueError):
        raise DataError(f"r must be a positive number; got {r!r}") from None
    if not (math.isfinite(r) and r > 0):
        raise DataError(f"r must be a positive finite radius; got {r}")
    if normalize:
        sd = X.std(0)
        X = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    tree = cKDTree(X)
    order = np.random.default_rng(seed).permutation(X.shape[0])
    removed = np.zeros(X.shape[0], dtype=bool)
    kept = []
    # The loop visits each point once; a kept point removes its whole r-ball in one tree query.
    for i in order:
        if removed[i]:
            continue
        kept.append(i)
        removed[tree.query_ball_point(X[i], r, return_sorted=False)] = True
    return np.sort(np.asarray(kept, dtype=np.int64))


def _auto_radius(Xn: np.ndarray, target: int, seed: int) -> float:
    """Radius (normalised coordinates) whose r-net of ``Xn`` has about ``target`` points."""
    n, d = Xn.shape
    rng = np.random.default_rng(seed)
    sample = Xn[rng.choice(n, size=min(n, 50_000), replace=False)]
    span = np.prod(np.ptp(sample, axis=0) + 1e-12)
    r = 0.7 * (span / target) ** (1.0 / d)
    for _ in range(4):
        size = len(representative_subset(sample, r, seed=seed, normalize=False))
        ratio = size / target
        if 0.8 < ratio < 1.25:
            break
        r *= ratio ** (1.0 / d)
    return float(r)


# ----------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------
class NeuralDecomposition:
    """Learn f = −∇V + g with g·∇V ≈ 0 from snapshot pairs (x_0, x_h) with two tanh MLPs.

    All arguments are keyword-only and stored unchanged; validation happens in :meth:`fit`.

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
        Where checkpoints go.
    resume : bool or str or path
        Resume from a checkpoint (True: ``checkpoint_path``); gives the same final model as an
        uninterrupted run with the same data and settings.
    callback : callable or None
        ``callback(step, logs)`` after every validation check; returning True stops training.

    Attributes
    ----------
    history_ : dict of lists
        ``step``, ``loss``, ``val_loss``, ``orth`` (mean w(cos)), ``lr`` per check.
    n_steps_ : int
        Steps taken (Adam + L-BFGS).
    mu_, sigma_ : numpy.ndarray
        Input normalisation.
    eta_v_, eta_g_ : float
        Frozen output scales.
    subset_ : numpy.ndarray, shape (S, d)
        Representative subset.
    r_, lam_ : float
        Radius and orthogonality weight used.
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

    # -- sklearn-style parameter access ---------------------------------------------------
    _PARAMS = (
        "hidden", "steps", "batch_size", "lr", "lr_final", "warmup", "lbfgs_steps",
        "lbfgs_points", "lam", "delta", "r", "subset_size", "subset_batch", "val_frac",
        "patience", "log_every", "device", "dtype", "adam_dtype", "seed", "threads", "verbose",
        "checkpoint_every", "checkpoint_path", "resume", "callback",
    )  # fmt: skip
    # settings that change the trained model (checked on resume, stored by save)
    _MODEL_PARAMS = (
        "hidden", "steps", "batch_size", "lr", "lr_final", "warmup", "lbfgs_steps",
        "lbfgs_points", "lam", "delta", "r", "subset_size", "subset_batch", "val_frac",
        "patience", "log_every", "dtype", "adam_dtype", "seed",
    )  # fmt: skip

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments as a dict (scikit-learn convention)."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params: Any) -> NeuralDecomposition:
        """Set constructor arguments (scikit-learn convention); returns self."""
        for k, v in params.items():
            if k not in self._PARAMS:
                raise TrainingError(f"unknown setting {k!r} of NeuralDecomposition")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"NeuralDecomposition(hidden={self.hidden!r}, steps={self.steps}, lbfgs_steps={self.lbfgs_steps})"

    # -- validation of settings -------------------------------------------------------------
    def _check_settings(self, torch: Any) -> dict[str, Any]:
        def pos_int(name: str, allow_zero: bool = False) -> int:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if allow_zero else 1):
                raise TrainingError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer; got {v!r}")
            return int(v)

        def pos_float(name: str, allow_none: bool = False) -> float | None:
            v = getattr(self, name)
            if v is None and allow_none:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not (
                math.isfinite(v) and v > 0
            ):
                raise TrainingError(f"{name} must be a positive number; got {v!r}")
            return float(v)

        hidden = tuple(self.hidden) if isinstance(self.hidden, (tuple, list)) else None
        if not hidden or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in hidden):
            raise TrainingError(f"hidden must be a non-empty tuple of positive layer widths; got {self.hidden!r}")
        s = {"hidden": tuple(int(w) for w in hidden)}
        s["steps"] = pos_int("steps", allow_zero=True)
        s["lbfgs_steps"] = pos_int("lbfgs_steps", allow_zero=True)
        if s["steps"] + s["lbfgs_steps"] == 0:
            raise TrainingError("steps and lbfgs_steps are both 0; nothing to train")
        for name in ("batch_size", "lbfgs_points", "subset_size", "subset_batch", "log_every"):
            s[name] = pos_int(name)
        s["warmup"] = pos_int("warmup", allow_zero=True)
        for name in ("lr", "lr_final"):
            s[name] = pos_float(name)
        s["lam"] = 1.0 if self.lam is None else float(self.lam)
        if not (math.isfinite(s["lam"]) and s["lam"] >= 0):
            raise TrainingError(f"lam must be a non-negative number; got {self.lam!r}")
        if isinstance(self.delta, bool) or not isinstance(self.delta, (int, float)) or not 0 <= self.delta:
            raise TrainingError(f"delta must be a non-negative number; got {self.delta!r}")
        s["delta"] = float(self.delta)
        s["r"] = pos_float("r", allow_none=True)
        vf = self.val_frac
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 < vf <= 1:
            raise TrainingError(f"val_frac must be in (0, 1]; got {vf!r}")
        s["val_frac"] = float(vf)
        if self.patience is not None:
            s["patience"] = pos_int("patience")
        else:
            s["patience"] = None
        dtypes = {"float32": torch.float32, "float64": torch.float64}
        if self.dtype not in dtypes:
            raise TrainingError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        if self.adam_dtype is not None and self.adam_dtype not in dtypes:
            raise TrainingError(f"adam_dtype must be 'float32', 'float64' or None; got {self.adam_dtype!r}")
        s["dtype"] = dtypes[self.dtype]
        s["adam_dtype"] = dtypes[self.adam_dtype or self.dtype]
        dev = str(self.device)
        if dev.startswith("cuda"):
            if not torch.cuda.is_available():
                raise TrainingError(f"device {dev!r} requested but CUDA is not available to torch; use device='cpu'")
        elif dev != "cpu":
            raise TrainingError(f"device must be 'cpu' or 'cuda[:N]'; got {dev!r}")
        s["device"] = torch.device(dev)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise TrainingError(f"seed must be a non-negative integer; got {self.seed!r}")
        s["seed"] = int(self.seed)
        if self.threads is not None:
            s["threads"] = pos_int("threads")
        else:
            s["threads"] = None
        if self.checkpoint_every is not None:
            s["checkpoint_every"] = pos_int("checkpoint_every")
            if self.checkpoint_path is None:
                raise TrainingError("checkpoint_every is set but checkpoint_path is None")
        else:
            s["checkpoint_every"] = None
        if self.resume is True and self.checkpoint_path is None:
            raise TrainingError("resume=True needs checkpoint_path (or pass resume=PATH)")
        return s

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
        torch = require("torch")
        from . import _torch_utils as tu

        s = self._check_settings(torch)
        x0, xh, h, traj = _unpack_pairs(pairs)
        n, d = x0.shape
        if X_val is not None:
            v0, vh, vhh, _ = _unpack_pairs(X_val, "X_val")
            if v0.shape[1] != d:
                raise DataError(f"X_val has d = {v0.shape[1]} but pairs have d = {d}")
            if not math.isclose(vhh, h, rel_tol=1e-9):
                raise DataError(f"X_val.h = {vhh} differs from pairs.h = {h}")
            tr_idx = np.arange(n)
        elif s["val_frac"] < 1:
            if n < 4:
                raise DataError(f"need at least 4 pairs to hold out validation data; got {n}")
            tr_idx, va_idx = _split(n, traj, s["val_frac"], s["seed"])
            v0, vh = x0[va_idx], xh[va_idx]
        else:
            tr_idx, v0, vh = np.arange(n), None, None
        X0, XH = x0[tr_idx], xh[tr_idx]
        ntr = X0.shape[0]
        if ntr < 2:
            raise DataError(f"need at least 2 training pairs; got {ntr}")

        old_threads = torch.get_num_threads()
        if s["threads"] is not None:
            torch.set_num_threads(s["threads"])
        try:
            self._train(torch, tu, s, X0, XH, h, v0, vh, fingerprint=_fingerprint(x0, xh, extra=repr(h)))
        finally:
            if s["threads"] is not None:
                torch.set_num_threads(old_threads)
        self.n_features_in_ = d
        self.h_ = h
        names = getattr(pairs, "names", None)
        self.names_ = tuple(names) if names is not None else tuple(f"x{i}" for i in range(d))
        return self

    def _train(self, torch, tu, s, X0, XH, h, V0, VH, *, fingerprint: str) -> None:
        t_start = time.perf_counter()
        dev = s["device"]
        ntr, d = X0.shape
        gen_np = np.random.default_rng(s["seed"])
        mu = X0.mean(0)
        sigma = X0.std(0)
        sigma = np.where(sigma > 0, sigma, 1.0)
        Y = (XH - X0) / h
        y2 = float(np.mean(np.sum(Y * Y, 1)))
        if not y2 > 0:
            raise DataError("x_h equals x_0 for every pair (zero displacement); nothing to learn")

        # representative subset in normalised coordinates
        Xn = (X0 - mu) / sigma
        r = s["r"] if s["r"] is not None else _auto_radius(Xn, s["subset_size"], s["seed"])
        sub_idx = representative_subset(Xn, r, seed=s["seed"], normalize=False)

        # fixed L-BFGS sample and validation sample
        lb_idx = np.sort(gen_np.choice(ntr, size=min(ntr, s["lbfgs_points"]), replace=False))
        if V0 is not None:
            nv = V0.shape[0]
            vi = np.sort(gen_np.choice(nv, size=min(nv, 20_000), replace=False))
            V0s, VYs = V0[vi], (VH[vi] - V0[vi]) / h
        settings_key = repr({k: getattr(self, k) for k in self._MODEL_PARAMS})

        # -- state (initial or resumed) --------------------------------------------------
        gen = torch.Generator(device="cpu")
        gen.manual_seed(s["seed"])
        sizes_v = [d, *s["hidden"], 1]
        sizes_g = [d, *s["hidden"], d]
        adt = s["adam_dtype"]
        v_params = tu.init_mlp(sizes_v, gen, adt)
        g_params = tu.init_mlp(sizes_g, gen, adt)
        v_params = [p.detach().to(dev).requires_grad_() for p in v_params]
        g_params = [p.detach().to(dev).requires_grad_() for p in g_params]

        mu_t = torch.as_tensor(mu, dtype=torch.float64, device=dev)
        sig_t = torch.as_tensor(sigma, dtype=torch.float64, device=dev)

        # frozen output scales, eq. (9), on (at most) 20,000 training points
        ei = np.sort(gen_np.choice(ntr, size=min(ntr, 20_000), replace=False))
        with torch.no_grad():
            xe = torch.as_tensor(Xn[ei], dtype=adt, device=dev)
            ye = np.linalg.norm(Y[ei], axis=1)
            gv = (tu.mlp_input_grad(v_params, xe) + 2 * xe).double() / sig_t
            nv_ = gv.norm(dim=1).cpu().numpy()
            ng_ = tu.mlp_forward(g_params, xe).double().norm(dim=1).cpu().numpy()
        eta_v = float(np.sum(nv_ * ye) / max(np.sum(nv_**2), 1e-300))
        eta_g = float(np.sum(ng_ * ye) / max(np.sum(ng_**2), 1e-300))
        if not (math.isfinite(eta_v) and eta_v > 0 and math.isfinite(eta_g) and eta_g > 0):
            raise TrainingError(f"could not set the output scales (eta_v={eta_v}, eta_g={eta_g}); check the data")

        history: dict[str, list[float]] = {"step": [], "loss": [], "val_loss": [], "orth": [], "lr": []}
        step = 0
        best = {"val": math.inf, "params": None, "step": 0, "bad": 0}
        # adam_end: step where Adam stopped (early stopping ends Adam, then L-BFGS runs);
        # stopped_early: L-BFGS stopped by patience; user_stop: the callback asked to stop
        ctl = {"adam_end": s["steps"], "stopped_early": False, "user_stop": False}
        opt_state = sched_state = None
        lb_state = None

        ckpt_path = None
        if self.resume:
            ckpt_path = Path(self.checkpoint_path if self.resume is True else self.resume)
        if ckpt_path is not None:
            ck = self._read_checkpoint(torch, ckpt_path)
            if ck["fingerprint"] != fingerprint:
                raise TrainingError(f"checkpoint {ckpt_path.name} was written for different data; cannot resume")
            if ck["settings"] != settings_key:
                raise TrainingError(f"checkpoint {ckpt_path.name} was written with different settings; cannot resume")
            step = int(ck["step"])
            history = {k: list(v) for k, v in ck["history"].items()}
            best = dict(ck["best"])
            ctl = dict(ck["ctl"])
            gen.set_state(ck["generator"])
            pdt = ck["v_params"][0].dtype
            v_params = [p.to(dev, pdt).requires_grad_() for p in ck["v_params"]]
            g_params = [p.to(dev, pdt).requires_grad_() for p in ck["g_params"]]
            opt_state, sched_state, lb_state = ck["opt"], ck["sched"], ck["lbfgs"]

        consts = {
            "h": h, "y2": y2, "lam": s["lam"], "delta": s["delta"], "eta_v": eta_v, "eta_g": eta_g,
            "orth_eps": 1e-3 * y2,
        }  # fmt: skip
        sub_n = torch.as_tensor(Xn[sub_idx], device=dev)
        x0_n = torch.as_tensor(Xn, device=dev)
        y_all = torch.as_tensor(Y, device=dev)
        sig_dev = sig_t
        val_data = None
        if V0 is not None:
            val_data = (
                torch.as_tensor((V0s - mu) / sigma, device=dev),
                torch.as_tensor(VYs, device=dev),
            )

        def loss_parts(vp, gp, xb, yb, xs, dt):
            """Prediction term (scale-free) and mean w(cos) for batch xb (normalised) / subset xs."""
            sig = sig_dev.to(dt)
            ev = consts["eta_v"] / sig
            eg = consts["eta_g"]
            hh = consts["h"]
            nb = xb.shape[0]
            xa = torch.cat([xb, xs]) if xs is not None else xb
            gva = ev * (tu.mlp_input_grad(vp, xa) + 2 * xa)
            gga = eg * tu.mlp_forward(gp, xa)
            f0 = gga[:nb] - gva[:nb]
            xm = xb + (0.5 * hh) * f0 / sig
            f1 = eg * tu.mlp_forward(gp, xm) - ev * (tu.mlp_input_grad(vp, xm) + 2 * xm)
            pred = ((f1 - yb) ** 2).sum(1).mean() / consts["y2"]
            if xs is None:
                return pred, None
            a, b = gva[nb:], gga[nb:]
            # a small floor on |∇V||g| (relative to the data scale |Y|²) keeps the cosine smooth
            # where g or ∇V vanish (at fixed points); without it L-BFGS stalls there
            cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + consts["orth_eps"])
            orth = torch.where(cos >= 0, cos * cos, consts["delta"] * cos * cos).mean()
            return pred, orth

        def val_loss(vp, gp):
            if val_data is None:
                return math.nan
            dt = vp[0].dtype
            with torch.no_grad():
                xv, yv = val_data
                tot = 0.0
                for i in range(0, xv.shape[0], 10_000):
                    p, _ = loss_parts(vp, gp, xv[i : i + 10_000].to(dt), yv[i : i + 10_000].to(dt), None, dt)
                    tot += float(p) * min(10_000, xv.shape[0] - i)
                return tot / xv.shape[0]

        n_total = s["steps"] + s["lbfgs_steps"]
        progress = _Progress(self.verbose, n_total, step)

        def snapshot(vp, gp):
            return [p.detach().double().clone() for p in vp], [p.detach().double().clone() for p in gp]

        def checkpoint(vp, gp, opt, sched, lbfgs):
            if s["checkpoint_every"] is None:
                return
            state = {
                "format": _CHECKPOINT_FORMAT,
                "fingerprint": fingerprint,
                "settings": settings_key,
                "step": step,
                "history": history,
                "best": best,
                "ctl": ctl,
                "generator": gen.get_state(),
                "v_params": [p.detach().cpu() for p in vp],
                "g_params": [p.detach().cpu() for p in gp],
                "opt": opt.state_dict() if opt is not None else None,
                "sched": sched.state_dict() if sched is not None else None,
                "lbfgs": lbfgs.state_dict() if lbfgs is not None else None,
            }
            with atomic_write(self.checkpoint_path, "wb") as fh:
                torch.save(state, fh)

        def log(vp, gp, loss, orth, lr):
            """Record a check; returns "patience", "user" or None."""
            vl = val_loss(vp, gp)
            history["step"].append(step)
            history["loss"].append(loss)
            history["val_loss"].append(vl)
            history["orth"].append(orth)
            history["lr"].append(lr)
            progress.update(step, loss, vl, orth)
            stop = None
            if val_data is not None:
                if not math.isfinite(vl):
                    raise TrainingError(
                        f"validation loss is {vl} at step {step}: training diverged; lower lr or use dtype='float64'"
                    )
                if vl < best["val"] * (1 - 1e-6):
                    best.update(val=vl, params=snapshot(vp, gp), step=step, bad=0)
                else:
                    best["bad"] += 1
                    if s["patience"] is not None and best["bad"] >= s["patience"]:
                        stop = "patience"
            if self.callback is not None and self.callback(step, {"loss": loss, "val_loss": vl, "orth": orth}):
                stop = "user"
            return stop

        def check_finite(value: float, what: str) -> None:
            if not math.isfinite(value):
                raise TrainingError(
                    f"{what} is {value} at step {step}: training diverged; lower lr, check the data for "
                    "outliers, or use dtype='float64'"
                )

        try:
            # -- phase 1: Adam -----------------------------------------------------------------
            if step < ctl["adam_end"] and not (ctl["user_stop"] or ctl["stopped_early"]):
                params = v_params + g_params
                # the output bias of V never enters the loss (only ∇V does)
                train_params = [p for p in params if p is not v_params[-1]]
                opt = torch.optim.Adam(train_params, lr=s["lr"])
                warm, total = s["warmup"], s["steps"]
                ratio = s["lr_final"] / s["lr"]

                def lr_factor(t: int) -> float:
                    w = min(1.0, (t + 1) / warm) if warm > 0 else 1.0
                    return w * ratio ** (t / max(total - 1, 1))

                sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
                if opt_state is not None:
                    opt.load_state_dict(opt_state)
                    sched.load_state_dict(sched_state)
                xs_all = sub_n.to(adt)
                x_all = x0_n.to(adt)
                y_dev = y_all.to(adt)
                bsz = min(s["batch_size"], ntr)
                sb = min(s["subset_batch"], xs_all.shape[0])
                run_loss = run_orth = 0.0
                n_run = 0
                while step < ctl["adam_end"]:
                    bi = torch.randint(ntr, (bsz,), generator=gen).to(dev)
                    if sb < xs_all.shape[0]:
                        si = torch.randint(xs_all.shape[0], (sb,), generator=gen).to(dev)
                        xs = xs_all[si]
                    else:
                        xs = xs_all
                    pred, orth = loss_parts(v_params, g_params, x_all[bi], y_dev[bi], xs, adt)
                    loss = pred + s["lam"] * orth
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    lv = loss.item()
                    check_finite(lv, "training loss")
                    opt.step()
                    sched.step()
                    step += 1
                    run_loss += lv
                    run_orth += orth.item()
                    n_run += 1
                    stop = None
                    if step % s["log_every"] == 0 or step == s["steps"]:
                        stop = log(v_params, g_params, run_loss / n_run, run_orth / n_run, sched.get_last_lr()[0])
                        run_loss = run_orth = 0.0
                        n_run = 0
                    elif step % 10 == 0:
                        progress.advance(step)
                    if s["checkpoint_every"] and step % s["checkpoint_every"] == 0:
                        checkpoint(v_params, g_params, opt, sched, None)
                    if stop == "user":
                        ctl["user_stop"] = True
                    elif stop == "patience":
                        ctl["adam_end"] = step
                        best["bad"] = 0
                    if stop:
                        if s["checkpoint_every"]:
                            checkpoint(v_params, g_params, opt, sched, None)
                        break
                opt_state = None

            # -- phase 2: full-batch L-BFGS in the final dtype ---------------------------------------
            fdt = s["dtype"]
            v_params = [p.detach().to(fdt).requires_grad_() for p in v_params]
            g_params = [p.detach().to(fdt).requires_grad_() for p in g_params]
            end = ctl["adam_end"] + s["lbfgs_steps"]
            if step < end and not (ctl["user_stop"] or ctl["stopped_early"]):
                train_params = [p for p in v_params + g_params if p is not v_params[-1]]
                lbfgs = torch.optim.LBFGS(
                    train_params, lr=1.0, max_iter=1, max_eval=26, history_size=50, line_search_fn="strong_wolfe",
                    tolerance_grad=0.0, tolerance_change=0.0,
                )  # fmt: skip
                if lb_state is not None:
                    lbfgs.load_state_dict(lb_state)
                lb = torch.as_tensor(lb_idx, device=dev)
                xb, yb, xs = x0_n[lb].to(fdt), y_all[lb].to(fdt), sub_n.to(fdt)
                last = {}

                def closure():
                    lbfgs.zero_grad(set_to_none=True)
                    pred, orth = loss_parts(v_params, g_params, xb, yb, xs, fdt)
                    loss = pred + s["lam"] * orth
                    loss.backward()
                    last["loss"], last["orth"] = loss.item(), orth.item()
                    check_finite(last["loss"], "training loss")
                    return loss

                while step < end:
                    lbfgs.step(closure)
                    step += 1
                    if step % s["log_every"] == 0 or step == end:
                        stop = log(v_params, g_params, last["loss"], last["orth"], 1.0)
                        if stop:
                            ctl["stopped_early" if stop == "patience" else "user_stop"] = True
                            break
                    elif step % 5 == 0:
                        progress.advance(step)
                    if s["checkpoint_every"] and step % s["checkpoint_every"] == 0:
                        checkpoint(v_params, g_params, None, None, lbfgs)
        finally:
            progress.close()

        # keep the parameters with the best validation loss seen at a check
        if best["params"] is not None and best["val"] < val_loss(v_params, g_params):
            bv, bg = best["params"]
            v_params = [p.to(dev, fdt) for p in bv]
            g_params = [p.to(dev, fdt) for p in bg]
        self._module = tu.DecompositionModule(v_params, g_params, mu_t.to(fdt), sig_t.to(fdt), eta_v, eta_g)
        self._module.requires_grad_(False)
        self.history_ = history
        self.n_steps_ = step
        self.best_step_ = int(best["step"])
        self.stopped_early_ = bool(ctl["stopped_early"] or ctl["adam_end"] < s["steps"])
        self.mu_ = mu
        self.sigma_ = sigma
        self.eta_v_ = eta_v
        self.eta_g_ = eta_g
        self.r_ = float(r)
        self.lam_ = s["lam"]
        self.subset_ = X0[sub_idx]
        self.y2_ = y2
        self.wall_s_ = time.perf_counter() - t_start

    @staticmethod
    def _read_checkpoint(torch: Any, path: Path) -> dict:
        if not path.is_file():
            raise TrainingError(f"checkpoint {str(path)!r} does not exist")
        return _read_state(torch, path, _CHECKPOINT_FORMAT, "checkpoint ", "a symqp neural checkpoint")

    # -- prediction ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "_module"):
            raise TrainingError("this NeuralDecomposition is not fitted yet; call fit(pairs) first")

    def _eval(self, x: Any, which: str, chunk: int = 100_000) -> np.ndarray:
        self._check_fitted()
        torch = require("torch")
        from . import _torch_utils as tu

        X = _as_array(x, "x")
        if X.ndim == 1 and X.shape[0] == self.n_features_in_:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise DataError(f"x must have shape (n, {self.n_features_in_}); got {X.shape}")
        if not np.isfinite(X).all():
            raise DataError("x contains NaN or infinite values")
        m = self._module
        dt = m.mu.dtype
        vp, gp = list(m.v_params), list(m.g_params)
        out = []
        with torch.no_grad():
            for i in range(0, max(X.shape[0], 1), chunk):
                xt = (torch.as_tensor(X[i : i + chunk], dtype=dt, device=m.mu.device) - m.mu) / m.sigma
                if which == "V":
                    r = m.eta_v * (tu.mlp_value(vp, xt) + (xt * xt).sum(1))
                elif which == "grad_V":
                    r = (m.eta_v / m.sigma) * (tu.mlp_input_grad(vp, xt) + 2 * xt)
                elif which == "g":
                    r = m.eta_g * tu.mlp_forward(gp, xt)
                else:  # f
                    r = m.eta_g * tu.mlp_forward(gp, xt) - (m.eta_v / m.sigma) * (tu.mlp_input_grad(vp, xt) + 2 * xt)
                out.append(r.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0,) if which == "V" else (0, self.n_features_in_))

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
        return self._module

    # -- save / load ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the trained decomposition (tensors and metadata, no pickled code) atomically."""
        self._check_fitted()
        torch = require("torch")
        m = self._module
        params = {k: getattr(self, k) for k in self._MODEL_PARAMS}
        params["hidden"] = list(params["hidden"])
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
            "scalars": {
                "n_steps": self.n_steps_, "best_step": self.best_step_, "stopped_early": self.stopped_early_,
                "r": self.r_, "lam": self.lam_, "y2": self.y2_, "wall_s": self.wall_s_, "h": self.h_,
                "d": self.n_features_in_,
            },  # fmt: skip
            "names": list(self.names_),
        }
        with atomic_write(path, "wb") as fh:
            torch.save(state, fh)

    @classmethod
    def load(cls, path: str | Path) -> NeuralDecomposition:
        """Read a decomposition written by :meth:`save` (tensors only; nothing is executed)."""
        torch = require("torch")
        from . import _torch_utils as tu

        path = Path(path)
        if not path.is_file():
            raise ResultFormatError(f"file {str(path)!r} does not exist")
        st = _read_state(torch, path, _FORMAT, "", "a saved symqp NeuralDecomposition")
        params = dict(st["params"])
        params["hidden"] = tuple(params["hidden"])
        obj = cls(**params, verbose=False)
        sc = st["scalars"]
        dt = st["v_params"][0].dtype
        obj._module = tu.DecompositionModule(
            st["v_params"], st["g_params"], st["mu"].to(dt), st["sigma"].to(dt), st["eta_v"], st["eta_g"]
        )
        obj._module.requires_grad_(False)
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
        return obj


def _read_state(torch: Any, path: Path, fmt: str, label: str, kind: str) -> dict:
    """A dict of tensors written by torch.save with ``"format": fmt`` (weights only, no code run)."""
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a format error
        raise ResultFormatError(f"cannot read {label}{path.name}: {type(exc).__name__}") from None
    if not isinstance(st, dict) or st.get("format") != fmt:
        raise ResultFormatError(f"{path.name} is not {kind}")
    return st


class _Progress:
    """A rich progress bar showing loss, validation loss, orthogonality and ETA (or nothing)."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self._p = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(
            TextColumn("decompose"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._p.start()
        self._task = self._p.add_task("fit", total=total, completed=start, info="")

    def advance(self, step: int) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=step)

    def update(self, step: int, loss: float, val: float, orth: float) -> None:
        if self._p is not None:
            info = f"loss {loss:.3e}  val {val:.3e}  orth {orth:.2e}"
            self._p.update(self._task, completed=step, info=info)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()
