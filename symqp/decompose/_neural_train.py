"""Training of the neural decomposition: data preparation, Adam phase, L-BFGS phase, checks.

:func:`train` prepares the normalised data and the frozen output scales, builds or resumes
a :class:`~symqp.decompose._neural_state.TrainingState`, then a :class:`Trainer` runs the
float32 Adam phase and the float64 full-batch L-BFGS phase on it, checking the validation
loss, writing checkpoints and calling the user's callback every ``log_every`` steps.

This module imports torch at the top: it is imported only inside ``fit``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._errors import DataError, ResultFormatError, TrainingError
from . import _torch_utils as tu
from ._neural_settings import DecompositionSettings
from ._neural_state import HISTORY_KEYS, Expected, TrainingState
from ._subset import auto_radius, representative_subset

__all__ = ["Fitted", "train"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_VAL_POINTS = 20_000  # validation pairs (and pairs for the output scales) used at most
_VAL_CHUNK = 10_000


@dataclass(frozen=True)
class Fitted:
    """What training produces, besides the final state: the module and its fixed scales."""

    module: Any
    mu: np.ndarray
    sigma: np.ndarray
    eta_v: float
    eta_g: float
    y2: float
    r: float
    subset: np.ndarray
    wall_s: float


@dataclass(frozen=True)
class TrainingData:
    """Normalised training tensors and the constants of the loss (all float64, on the device)."""

    x: torch.Tensor  # (n, d) normalised x0
    y: torch.Tensor  # (n, d) (xh − x0) / h
    subset: torch.Tensor  # (S, d) normalised representative subset
    lbfgs_idx: torch.Tensor  # fixed rows of the L-BFGS phase
    val: tuple[torch.Tensor, torch.Tensor] | None  # normalised x0 and Y of validation pairs
    sigma: torch.Tensor
    h: float
    y2: float
    eta_v: float
    eta_g: float
    lam: float
    delta: float

    def loss_parts(self, vp: list, gp: list, xb: torch.Tensor, yb: torch.Tensor, xs: torch.Tensor | None, dt: Any):
        """Prediction term (scale-free) for batch ``xb`` and mean w(cos) over subset ``xs``.

        The prediction is one midpoint-RK2 step of the learned field in normalised
        coordinates; the orthogonality term is None when ``xs`` is None.
        """
        sig = self.sigma.to(dt)
        ev = self.eta_v / sig
        eg = self.eta_g
        nb = xb.shape[0]
        xa = torch.cat([xb, xs]) if xs is not None else xb
        gva = ev * (tu.mlp_input_grad(vp, xa) + 2 * xa)
        gga = eg * tu.mlp_forward(gp, xa)
        f0 = gga[:nb] - gva[:nb]
        xm = xb + (0.5 * self.h) * f0 / sig
        f1 = eg * tu.mlp_forward(gp, xm) - ev * (tu.mlp_input_grad(vp, xm) + 2 * xm)
        pred = ((f1 - yb) ** 2).sum(1).mean() / self.y2
        if xs is None:
            return pred, None
        a, b = gva[nb:], gga[nb:]
        # a small floor on |∇V||g| (relative to the data scale |Y|²) keeps the cosine smooth
        # where g or ∇V vanish (at fixed points); without it L-BFGS stalls there
        cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-3 * self.y2)
        orth = torch.where(cos >= 0, cos * cos, self.delta * cos * cos).mean()
        return pred, orth

    def val_loss(self, vp: list, gp: list) -> float:
        """Mean prediction term over the validation pairs (NaN without validation data)."""
        if self.val is None:
            return math.nan
        dt = vp[0].dtype
        xv, yv = self.val
        tot = 0.0
        with torch.no_grad():
            for i in range(0, xv.shape[0], _VAL_CHUNK):
                p, _ = self.loss_parts(vp, gp, xv[i : i + _VAL_CHUNK].to(dt), yv[i : i + _VAL_CHUNK].to(dt), None, dt)
                tot += float(p) * min(_VAL_CHUNK, xv.shape[0] - i)
        return tot / xv.shape[0]


def train(
    s: DecompositionSettings, X0: np.ndarray, XH: np.ndarray, h: float, V0: np.ndarray | None,
    VH: np.ndarray | None, *, fingerprint: str,
) -> tuple[Fitted, TrainingState]:  # fmt: skip
    """Train on the pairs (X0, XH) with optional validation pairs (V0, VH); see the module."""
    t_start = time.perf_counter()
    if s.device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {s.device!r} requested but CUDA is not available to torch; use device='cpu'")
    dev = torch.device(s.device)
    gen_np = np.random.default_rng(s.seed)
    mu = X0.mean(0)
    sigma = X0.std(0)
    sigma = np.where(sigma > 0, sigma, 1.0)
    Y = (XH - X0) / h
    y2 = float(np.mean(np.sum(Y * Y, 1)))
    if not y2 > 0:
        raise DataError("x_h equals x_0 for every pair (zero displacement); nothing to learn")
    Xn = (X0 - mu) / sigma
    r = s.r if s.r is not None else auto_radius(Xn, s.subset_size, s.seed)
    sub_idx = representative_subset(Xn, r, seed=s.seed, normalize=False)
    # fixed L-BFGS sample and validation sample (the draws keep this order: lbfgs, val, scales)
    ntr = X0.shape[0]
    lb_idx = np.sort(gen_np.choice(ntr, size=min(ntr, s.lbfgs_points), replace=False))
    val = None
    if V0 is not None:
        vi = np.sort(gen_np.choice(V0.shape[0], size=min(V0.shape[0], _VAL_POINTS), replace=False))
        val = (torch.as_tensor((V0[vi] - mu) / sigma, device=dev), torch.as_tensor((VH[vi] - V0[vi]) / h, device=dev))
    state = _initial_state(s, X0.shape[1], dev, fingerprint)
    sig_t = torch.as_tensor(sigma, dtype=torch.float64, device=dev)
    eta_v, eta_g = _output_scales(state, Xn, Y, gen_np, sig_t, _DTYPES[s.adam_dtype])
    data = TrainingData(
        x=torch.as_tensor(Xn, device=dev), y=torch.as_tensor(Y, device=dev),
        subset=torch.as_tensor(Xn[sub_idx], device=dev), lbfgs_idx=torch.as_tensor(lb_idx, device=dev),
        val=val, sigma=sig_t, h=h, y2=y2, eta_v=eta_v, eta_g=eta_g, lam=s.lam, delta=s.delta,
    )  # fmt: skip
    if s.resume_path is not None:
        expected = Expected(
            v_shapes=tuple(tuple(p.shape) for p in state.v_params),
            g_shapes=tuple(tuple(p.shape) for p in state.g_params),
            steps=s.steps, lbfgs_steps=s.lbfgs_steps,
        )  # fmt: skip
        state = TrainingState.load(s.resume_path, fingerprint=fingerprint, settings=s.key, expected=expected)
        state.user_stop = False  # resuming after the callback stopped a run continues it
        state.v_params = [p.to(dev).requires_grad_() for p in state.v_params]
        state.g_params = [p.to(dev).requires_grad_() for p in state.g_params]
    trainer = Trainer(s, data, state)
    try:
        trainer.adam_phase()
        trainer.lbfgs_phase()
    finally:
        trainer.progress.close()
    fdt = _DTYPES[s.dtype]
    v_params, g_params = trainer.final_params()
    module = tu.DecompositionModule(
        v_params, g_params, torch.as_tensor(mu, dtype=torch.float64, device=dev).to(fdt), sig_t.to(fdt), eta_v, eta_g
    )
    module.requires_grad_(False)
    fitted = Fitted(module, mu, sigma, eta_v, eta_g, y2, float(r), X0[sub_idx], time.perf_counter() - t_start)
    return fitted, state


def _initial_state(s: DecompositionSettings, d: int, dev: Any, fingerprint: str) -> TrainingState:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(s.seed)
    adt = _DTYPES[s.adam_dtype]
    v_params = tu.init_mlp([d, *s.hidden, 1], gen, adt)
    g_params = tu.init_mlp([d, *s.hidden, d], gen, adt)
    return TrainingState(
        fingerprint=fingerprint, settings=s.key, step=0, adam_end=s.steps, stopped_early=False,
        user_stop=False, generator=gen.get_state(),
        v_params=[p.detach().to(dev).requires_grad_() for p in v_params],
        g_params=[p.detach().to(dev).requires_grad_() for p in g_params],
        history={k: [] for k in HISTORY_KEYS},
    )  # fmt: skip


def _output_scales(state: TrainingState, Xn, Y, gen_np, sig_t, adt) -> tuple[float, float]:
    """Frozen output scales η_v, η_g, eq. (9), on at most 20,000 training points."""
    ntr = Xn.shape[0]
    ei = np.sort(gen_np.choice(ntr, size=min(ntr, _VAL_POINTS), replace=False))
    with torch.no_grad():
        xe = torch.as_tensor(Xn[ei], dtype=adt, device=sig_t.device)
        ye = np.linalg.norm(Y[ei], axis=1)
        gv = (tu.mlp_input_grad(state.v_params, xe) + 2 * xe).double() / sig_t
        nv = gv.norm(dim=1).cpu().numpy()
        ng = tu.mlp_forward(state.g_params, xe).double().norm(dim=1).cpu().numpy()
    eta_v = float(np.sum(nv * ye) / max(np.sum(nv**2), 1e-300))
    eta_g = float(np.sum(ng * ye) / max(np.sum(ng**2), 1e-300))
    if not (math.isfinite(eta_v) and eta_v > 0 and math.isfinite(eta_g) and eta_g > 0):
        raise TrainingError(f"could not set the output scales (eta_v={eta_v}, eta_g={eta_g}); check the data")
    return eta_v, eta_g


class Trainer:
    """Runs the two phases on a :class:`TrainingState` (which it updates in place)."""

    def __init__(self, s: DecompositionSettings, data: TrainingData, state: TrainingState) -> None:
        self.s = s
        self.data = data
        self.state = state
        self.gen = torch.Generator(device="cpu")
        try:
            self.gen.set_state(state.generator)
        except (RuntimeError, TypeError, ValueError):
            raise ResultFormatError("checkpoint is damaged: generator state does not fit") from None
        self.progress = Progress(s.verbose, s.total_steps, state.step)

    # -- checks ---------------------------------------------------------------------------
    def check_finite(self, value: float) -> None:
        """Stop with a TrainingError when the training loss is not finite."""
        if not math.isfinite(value):
            raise TrainingError(
                f"training loss is {value} at step {self.state.step}: training diverged; lower lr, check the "
                "data for outliers, or use dtype='float64'"
            )

    def log(self, loss: float, orth: float, lr: float) -> str | None:
        """Record a check (history, progress, best-so-far, callback); "patience", "user" or None."""
        st = self.state
        vl = self.data.val_loss(st.v_params, st.g_params)
        for key, value in zip(HISTORY_KEYS, (st.step, loss, vl, orth, lr)):
            st.history[key].append(value)
        self.progress.update(st.step, loss, vl, orth)
        stop = None
        if self.data.val is not None:
            if not math.isfinite(vl):
                raise TrainingError(
                    f"validation loss is {vl} at step {st.step}: training diverged; lower lr or use dtype='float64'"
                )
            if vl < st.best_val * (1 - 1e-6):
                st.best_val, st.best_step, st.bad_checks = vl, st.step, 0
                st.best_params = (_snapshot(st.v_params), _snapshot(st.g_params))
            else:
                st.bad_checks += 1
                if self.s.patience is not None and st.bad_checks >= self.s.patience:
                    stop = "patience"
        if self.s.callback is not None and self.s.callback(st.step, {"loss": loss, "val_loss": vl, "orth": orth}):
            stop = "user"
        return stop

    def checkpoint(self, adam: Any = None, scheduler: Any = None, lbfgs: Any = None) -> None:
        """Write the state (with the running optimisers' states) to ``checkpoint_path``."""
        self.state.generator = self.gen.get_state()
        self.state.capture(adam, scheduler, lbfgs)
        self.state.save(self.s.checkpoint_path)

    def _due(self) -> bool:
        every = self.s.checkpoint_every
        return every is not None and self.state.step % every == 0

    # -- phase 1: Adam ----------------------------------------------------------------------
    def adam_phase(self) -> None:
        """Minibatch Adam with linear warm-up and exponential decay, in ``adam_dtype``."""
        s, st, data = self.s, self.state, self.data
        if st.step >= st.adam_end or st.stopped:
            return
        # the output bias of V never enters the loss (only ∇V does)
        opt = torch.optim.Adam(_trained(st.v_params, st.g_params), lr=s.lr)
        ratio = s.lr_final / s.lr

        def lr_factor(t: int) -> float:
            w = min(1.0, (t + 1) / s.warmup) if s.warmup > 0 else 1.0
            return w * ratio ** (t / max(s.steps - 1, 1))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
        if st.adam is not None:
            _load_optimizer(opt, st.adam, "adam", _trained(st.v_params, st.g_params))
            _load_optimizer(sched, st.scheduler, "scheduler", None)
        adt = _DTYPES[s.adam_dtype]
        xs_all, x_all, y_all = data.subset.to(adt), data.x.to(adt), data.y.to(adt)
        n, n_sub = x_all.shape[0], xs_all.shape[0]
        bsz, sb = min(s.batch_size, n), min(s.subset_batch, n_sub)
        while st.step < st.adam_end:
            bi = torch.randint(n, (bsz,), generator=self.gen).to(x_all.device)
            xs = xs_all[torch.randint(n_sub, (sb,), generator=self.gen).to(x_all.device)] if sb < n_sub else xs_all
            pred, orth = data.loss_parts(st.v_params, st.g_params, x_all[bi], y_all[bi], xs, adt)
            loss = pred + data.lam * orth
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lv = loss.item()
            self.check_finite(lv)
            opt.step()
            sched.step()
            st.step += 1
            st.run_loss += lv
            st.run_orth += orth.item()
            st.run_count += 1
            stop = None
            if st.step % s.log_every == 0 or st.step == s.steps:
                stop = self.log(st.run_loss / st.run_count, st.run_orth / st.run_count, sched.get_last_lr()[0])
                st.run_loss = st.run_orth = 0.0
                st.run_count = 0
            elif st.step % 10 == 0:
                self.progress.advance(st.step)
            if self._due():
                self.checkpoint(adam=opt, scheduler=sched)
            if stop == "user":
                st.user_stop = True
            elif stop == "patience":  # early stopping ends Adam; L-BFGS still runs
                st.adam_end = st.step
                st.bad_checks = 0
            if stop:
                if s.checkpoint_every is not None:
                    self.checkpoint(adam=opt, scheduler=sched)
                break
        st.adam = st.scheduler = None

    # -- phase 2: full-batch L-BFGS in the final dtype -----------------------------------------
    def lbfgs_phase(self) -> None:
        """Full-batch L-BFGS (strong Wolfe) on the fixed subsample, in ``dtype``."""
        s, st, data = self.s, self.state, self.data
        fdt = _DTYPES[s.dtype]
        st.v_params = [p.detach().to(fdt).requires_grad_() for p in st.v_params]
        st.g_params = [p.detach().to(fdt).requires_grad_() for p in st.g_params]
        end = st.adam_end + s.lbfgs_steps
        if st.step >= end or st.stopped:
            return
        params = _trained(st.v_params, st.g_params)
        lbfgs = torch.optim.LBFGS(
            params, lr=1.0, max_iter=1, max_eval=26, history_size=50, line_search_fn="strong_wolfe",
            tolerance_grad=0.0, tolerance_change=0.0,
        )  # fmt: skip
        if st.lbfgs is not None:
            _load_optimizer(lbfgs, st.lbfgs, "lbfgs", params)
            st.lbfgs = None
        xb, yb, xs = data.x[data.lbfgs_idx].to(fdt), data.y[data.lbfgs_idx].to(fdt), data.subset.to(fdt)
        last: dict[str, float] = {}

        def closure() -> torch.Tensor:
            lbfgs.zero_grad(set_to_none=True)
            pred, orth = data.loss_parts(st.v_params, st.g_params, xb, yb, xs, fdt)
            loss = pred + data.lam * orth
            loss.backward()
            last["loss"], last["orth"] = loss.item(), orth.item()
            self.check_finite(last["loss"])
            return loss

        while st.step < end:
            lbfgs.step(closure)
            st.step += 1
            if st.step % s.log_every == 0 or st.step == end:
                stop = self.log(last["loss"], last["orth"], 1.0)
                if stop == "patience":
                    st.stopped_early = True
                elif stop == "user":
                    st.user_stop = True
                if stop:
                    break
            elif st.step % 5 == 0:
                self.progress.advance(st.step)
            if self._due():
                self.checkpoint(lbfgs=lbfgs)

    def final_params(self) -> tuple[list, list]:
        """The parameters with the best validation loss seen at a check, or the last ones."""
        st = self.state
        fdt = _DTYPES[self.s.dtype]
        if st.best_params is not None and st.best_val < self.data.val_loss(st.v_params, st.g_params):
            dev = st.v_params[0].device
            return [p.to(dev, fdt) for p in st.best_params[0]], [p.to(dev, fdt) for p in st.best_params[1]]
        return st.v_params, st.g_params


def _trained(v_params: list, g_params: list) -> list:
    """The trained parameters: all but the output bias of V, which never enters the loss."""
    return [p for p in v_params + g_params if p is not v_params[-1]]


def _snapshot(params: list) -> list:
    return [p.detach().double().clone() for p in params]


def _load_optimizer(obj: Any, state: Any, name: str, params: list | None) -> None:
    """Load a checkpointed optimiser/scheduler state; a state that does not fit is a format error."""
    try:
        if name == "adam":
            _check_adam_state(state, params)
        elif name == "lbfgs":
            _check_lbfgs_state(state, params)
        elif not isinstance(state.get("last_epoch"), int):
            raise ValueError("scheduler state without its step")
        obj.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError):
        raise ResultFormatError(f"checkpoint is damaged: the {name} state does not fit the networks") from None


def _check_adam_state(state: dict, params: list) -> None:
    for key, entry in state["state"].items():
        if not isinstance(key, int) or not 0 <= key < len(params):
            raise ValueError("Adam state for an unknown parameter")
        if not isinstance(entry["step"], torch.Tensor):
            raise ValueError("Adam state without its step")
        for moment in ("exp_avg", "exp_avg_sq"):
            if entry[moment].shape != params[key].shape:
                raise ValueError("Adam state of the wrong shape")


def _check_lbfgs_state(state: dict, params: list) -> None:
    n_flat = sum(p.numel() for p in params)
    for entry in state["state"].values():
        flat = [entry.get("d"), entry.get("prev_flat_grad"), *entry.get("old_dirs", []), *entry.get("old_stps", [])]
        if any(t is not None and t.numel() != n_flat for t in flat):
            raise ValueError("L-BFGS state of the wrong size")


class Progress:
    """Training progress on stderr: loss, validation loss, orthogonality and ETA (or nothing).

    A live bar on a terminal, a plain line every ~10 s or 10 % in a pipe or log
    (:class:`symqp._progress.ProgressReporter`); nothing when quiet.
    """

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        from .._progress import ProgressReporter

        self._p = ProgressReporter("decompose", total, start=start, enabled=enabled)

    def advance(self, step: int) -> None:
        self._p.update(step)

    def update(self, step: int, loss: float, val: float, orth: float) -> None:
        self._p.update(step, f"loss {loss:.3e}  val {val:.3e}  orth {orth:.2e}")

    def close(self) -> None:
        self._p.close()
