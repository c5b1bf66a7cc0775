"""The training state of a neural decomposition, which is also its checkpoint.

:class:`TrainingState` holds everything the training loop changes: parameters of both
networks, step counters, random-generator state, history, the best parameters so far and
the optimiser states at the last checkpoint. A checkpoint is this value written to disk
(tensors, numbers and strings only, read back with ``torch.load(weights_only=True)``), so a
resumed run continues exactly where the interrupted one stopped. Reading validates every
field: a damaged or edited file gives a one-line error, never a ``KeyError`` deep inside
training.

torch is imported inside the functions (``symqp._optional.require``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .._errors import ResultFormatError, TrainingError
from .._io import atomic_write
from .._optional import require

__all__ = ["HISTORY_KEYS", "Expected", "TrainingState", "read_torch_file", "require_keys"]

CHECKPOINT_FORMAT = "symqp.neural-checkpoint/2"
HISTORY_KEYS = ("step", "loss", "val_loss", "orth", "lr")


@dataclass
class TrainingState:
    """Mutable state of one training run (see the module docstring).

    ``adam_end`` is the step where the Adam phase ends (``steps``, or earlier when early
    stopping ended it; L-BFGS runs after it); ``stopped_early`` records that early stopping
    ended the L-BFGS phase, ``user_stop`` that the callback asked to stop. ``best_*`` track
    the parameters with the lowest validation loss seen at a check, ``bad_checks`` the checks
    since it last improved. ``adam``, ``scheduler`` and ``lbfgs`` hold optimiser states at
    the last checkpoint (None while the optimiser is not running). ``generator`` is the
    state tensor of the torch generator that draws the Adam batches; ``run_*`` are the sums
    of loss and orthogonality since the last check (the logged loss is their mean).
    """

    fingerprint: str
    settings: str
    step: int
    adam_end: int
    stopped_early: bool
    user_stop: bool
    generator: Any
    v_params: list[Any]
    g_params: list[Any]
    history: dict[str, list[float]]
    best_val: float = math.inf
    best_step: int = 0
    bad_checks: int = 0
    best_params: tuple[list[Any], list[Any]] | None = None
    run_loss: float = 0.0
    run_orth: float = 0.0
    run_count: int = 0
    adam: dict | None = None
    scheduler: dict | None = None
    lbfgs: dict | None = None

    @property
    def stopped(self) -> bool:
        """Whether training must not continue (early stopping in L-BFGS, or the callback)."""
        return self.user_stop or self.stopped_early

    def capture(self, adam: Any = None, scheduler: Any = None, lbfgs: Any = None) -> None:
        """Record the running optimisers' states (None for those not running)."""
        self.adam = None if adam is None else adam.state_dict()
        self.scheduler = None if scheduler is None else scheduler.state_dict()
        self.lbfgs = None if lbfgs is None else lbfgs.state_dict()

    def to_dict(self) -> dict[str, Any]:
        """The state as a dict of tensors, numbers and strings (what ``save`` writes)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["v_params"] = [p.detach().cpu() for p in self.v_params]
        out["g_params"] = [p.detach().cpu() for p in self.g_params]
        if self.best_params is not None:
            out["best_params"] = [list(self.best_params[0]), list(self.best_params[1])]
        return {"format": CHECKPOINT_FORMAT, **out}

    def save(self, path: Path) -> None:
        """Write the state atomically to ``path``."""
        torch = require("torch")
        with atomic_write(path, "wb") as fh:
            torch.save(self.to_dict(), fh)

    @classmethod
    def load(cls, path: Path, *, fingerprint: str, settings: str, expected: Expected) -> TrainingState:
        """Read a checkpoint written by :meth:`save` for the same data and settings."""
        if not path.is_file():
            raise TrainingError(f"checkpoint {str(path)!r} does not exist")
        raw = read_torch_file(path, CHECKPOINT_FORMAT, "checkpoint ", "a symqp neural checkpoint")
        require_keys(raw, [f.name for f in fields(cls)], f"checkpoint {path.name}")
        if raw["fingerprint"] != fingerprint:
            raise TrainingError(f"checkpoint {path.name} was written for different data; cannot resume")
        if raw["settings"] != settings:
            raise TrainingError(f"checkpoint {path.name} was written with different settings; cannot resume")
        try:
            return _from_raw(raw, expected)
        except _Bad as exc:
            raise ResultFormatError(f"checkpoint {path.name} is damaged: {exc}") from None


@dataclass(frozen=True)
class Expected:
    """What a checkpoint must match: parameter shapes and step bounds of the run."""

    v_shapes: tuple[tuple[int, ...], ...]
    g_shapes: tuple[tuple[int, ...], ...]
    steps: int
    lbfgs_steps: int


class _Bad(Exception):
    """A field of a checkpoint that does not fit (message: which and why)."""


def _from_raw(raw: dict, exp: Expected) -> TrainingState:
    torch = require("torch")
    adam_end = _int(raw, "adam_end", 0, exp.steps)
    step = _int(raw, "step", 0, adam_end + exp.lbfgs_steps)
    v_params = _tensors(torch, raw["v_params"], exp.v_shapes, "v_params")
    g_params = _tensors(torch, raw["g_params"], exp.g_shapes, "g_params")
    if len({p.dtype for p in v_params + g_params}) != 1 or v_params[0].dtype not in (torch.float32, torch.float64):
        raise _Bad("parameters must all be float32 or all float64")
    best = raw["best_params"]
    if best is not None:
        if not isinstance(best, (list, tuple)) or len(best) != 2:
            raise _Bad("best_params must be a pair of tensor lists")
        best = (_tensors(torch, best[0], exp.v_shapes, "best_params"), _tensors(torch, best[1], exp.g_shapes, "best_params"))
    gen = raw["generator"]
    if not isinstance(gen, torch.Tensor) or gen.dtype != torch.uint8:
        raise _Bad("generator must be a uint8 tensor")
    for name in ("fingerprint", "settings"):
        if not isinstance(raw[name], str):
            raise _Bad(f"{name} must be a string")
    for name in ("stopped_early", "user_stop"):
        if not isinstance(raw[name], bool):
            raise _Bad(f"{name} must be True or False")
    for name in ("adam", "scheduler", "lbfgs"):
        if raw[name] is not None and not isinstance(raw[name], dict):
            raise _Bad(f"{name} must be an optimiser state dict or None")
    return TrainingState(
        fingerprint=raw["fingerprint"], settings=raw["settings"], step=step, adam_end=adam_end,
        stopped_early=raw["stopped_early"], user_stop=raw["user_stop"], generator=gen,
        v_params=v_params, g_params=g_params, history=_history(raw["history"], step),
        best_val=_float(raw, "best_val"), best_step=_int(raw, "best_step", 0, step),
        bad_checks=_int(raw, "bad_checks", 0, None), best_params=best, run_loss=_float(raw, "run_loss"),
        run_orth=_float(raw, "run_orth"), run_count=_int(raw, "run_count", 0, raw["step"]),
        adam=raw["adam"], scheduler=raw["scheduler"], lbfgs=raw["lbfgs"],
    )  # fmt: skip


def _int(raw: dict, name: str, low: int, high: int | None) -> int:
    v = raw[name]
    if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise _Bad(f"{name} must be an integer {bound}, got {v!r}")
    return v


def _float(raw: dict, name: str) -> float:
    v = raw[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise _Bad(f"{name} must be a number, got {v!r}")
    return float(v)


def _tensors(torch: Any, value: Any, shapes: tuple[tuple[int, ...], ...], name: str) -> list[Any]:
    if not isinstance(value, (list, tuple)) or len(value) != len(shapes):
        raise _Bad(f"{name} must be a list of {len(shapes)} tensors")
    for p, shape in zip(value, shapes):
        if not isinstance(p, torch.Tensor) or tuple(p.shape) != shape:
            got = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
            raise _Bad(f"{name} has a tensor of shape {got} where {shape} is expected")
        if not bool(torch.isfinite(p).all()):
            raise _Bad(f"{name} has non-finite values")
    return list(value)


def _history(value: Any, step: int) -> dict[str, list[float]]:
    if not isinstance(value, dict) or set(value) != set(HISTORY_KEYS):
        raise _Bad(f"history must be a dict with keys {list(HISTORY_KEYS)}")
    lists = {k: value[k] for k in HISTORY_KEYS}
    if any(not isinstance(v, list) for v in lists.values()) or len({len(v) for v in lists.values()}) != 1:
        raise _Bad("history entries must be lists of one length")
    if any(not isinstance(s, int) or not 0 < s <= step for s in lists["step"]):
        raise _Bad(f"history steps must be integers in (0, {step}]")
    return {k: list(v) for k, v in lists.items()}


def read_torch_file(path: Path, fmt: str, label: str, kind: str) -> dict:
    """A dict written by ``torch.save`` with ``"format": fmt`` (weights only, no code run)."""
    torch = require("torch")
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a format error
        raise ResultFormatError(f"cannot read {label}{path.name}: {type(exc).__name__}") from None
    if not isinstance(st, dict) or st.get("format") != fmt:
        raise ResultFormatError(f"{path.name} is not {kind}")
    return st


def require_keys(st: dict, keys: list[str], what: str) -> None:
    """Refuse a file dict that lacks any of ``keys`` (one line naming them)."""
    missing = [k for k in keys if k not in st]
    if missing:
        raise ResultFormatError(f"{what} is missing key(s) {missing}")
