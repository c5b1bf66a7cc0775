"""The validated settings of a :class:`~symqp.decompose.NeuralDecomposition` fit.

:class:`DecompositionSettings` is built once, in ``fit``, from the estimator's parameters;
every check raises :class:`~symqp._errors.ParameterError` naming the parameter. The training
code reads only this value, never the estimator's raw attributes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .._errors import DataError, ParameterError
from .._estimator import check_bool, check_choice, check_float, check_int, check_seed
from .._io import check_writable
from ._potential_utils import check_hidden

__all__ = ["RUNTIME_PARAMS", "DecompositionSettings"]

# Parameters of NeuralDecomposition that do not change the trained model (where and how
# fast it runs, what it shows, where checkpoints go). Every other parameter does: those are
# compared when a checkpoint is resumed and stored by ``save``.
RUNTIME_PARAMS = ("device", "threads", "verbose", "checkpoint_every", "checkpoint_path", "resume", "callback")
_RUNTIME_FIELDS = frozenset(RUNTIME_PARAMS) - {"resume"} | {"resume_path"}


@dataclass(frozen=True)
class DecompositionSettings:
    """Checked training settings (the fields mirror the estimator's parameters).

    ``lam`` is resolved (None → 1.0), ``adam_dtype`` too (None → ``dtype``), and ``resume``
    becomes the path of the checkpoint to read (or None).

    Examples
    --------
    >>> from symqp.decompose import NeuralDecomposition
    >>> s = DecompositionSettings.from_estimator(NeuralDecomposition(steps=10, lam=None))
    >>> s.steps, s.lam, s.adam_dtype
    (10, 1.0, 'float32')
    >>> DecompositionSettings.from_estimator(NeuralDecomposition(lr=-1.0))
    Traceback (most recent call last):
    ...
    symqp._errors.ParameterError: NeuralDecomposition.lr must be a finite number > 0, got -1.0
    """

    hidden: tuple[int, ...]
    steps: int
    batch_size: int
    lr: float
    lr_final: float
    warmup: int
    lbfgs_steps: int
    lbfgs_points: int
    lam: float
    delta: float
    r: float | None
    subset_size: int
    subset_batch: int
    val_frac: float
    patience: int | None
    log_every: int
    dtype: str
    adam_dtype: str
    seed: int
    device: str
    threads: int | None
    verbose: bool
    checkpoint_every: int | None
    checkpoint_path: Path | None
    resume_path: Path | None
    callback: Callable[[int, dict], Any] | None

    @classmethod
    def from_estimator(cls, est: Any) -> DecompositionSettings:
        """Validate the parameters of ``est`` (a NeuralDecomposition)."""
        name = type(est).__name__
        steps = check_int(est, "steps", est.steps, minimum=0)
        lbfgs_steps = check_int(est, "lbfgs_steps", est.lbfgs_steps, minimum=0)
        if steps + lbfgs_steps == 0:
            raise ParameterError(f"{name}.steps and {name}.lbfgs_steps are both 0; nothing to train")
        dtype = check_choice(est, "dtype", est.dtype, ("float32", "float64"))
        adam_dtype = check_choice(est, "adam_dtype", est.adam_dtype, ("float32", "float64", None))
        lam = 1.0 if est.lam is None else check_float(est, "lam", est.lam, low=0)
        ckpt = _path(est, "checkpoint_path", est.checkpoint_path)
        every = check_int(est, "checkpoint_every", est.checkpoint_every, minimum=1, allow_none=True)
        if every is not None and ckpt is None:
            raise ParameterError(f"{name}.checkpoint_every is set but {name}.checkpoint_path is None")
        if every is not None:
            _check_writable(est, ckpt)
        if est.callback is not None and not callable(est.callback):
            raise ParameterError(f"{name}.callback must be callable or None, got {est.callback!r}")
        return cls(
            hidden=check_hidden(est, est.hidden),
            steps=steps,
            batch_size=check_int(est, "batch_size", est.batch_size, minimum=1),
            lr=check_float(est, "lr", est.lr, low=0, low_open=True),
            lr_final=check_float(est, "lr_final", est.lr_final, low=0, low_open=True),
            warmup=check_int(est, "warmup", est.warmup, minimum=0),
            lbfgs_steps=lbfgs_steps,
            lbfgs_points=check_int(est, "lbfgs_points", est.lbfgs_points, minimum=1),
            lam=lam,
            delta=check_float(est, "delta", est.delta, low=0),
            r=check_float(est, "r", est.r, low=0, low_open=True, allow_none=True),
            subset_size=check_int(est, "subset_size", est.subset_size, minimum=1),
            subset_batch=check_int(est, "subset_batch", est.subset_batch, minimum=1),
            val_frac=check_float(est, "val_frac", est.val_frac, low=0, high=1, low_open=True),
            patience=check_int(est, "patience", est.patience, minimum=1, allow_none=True),
            log_every=check_int(est, "log_every", est.log_every, minimum=1),
            dtype=dtype,
            adam_dtype=adam_dtype or dtype,
            seed=check_seed(est, "seed", est.seed),
            device=_device(est, est.device),
            threads=check_int(est, "threads", est.threads, minimum=1, allow_none=True),
            verbose=check_bool(est, "verbose", est.verbose),
            checkpoint_every=every,
            checkpoint_path=ckpt,
            resume_path=_resume_path(est, ckpt),
            callback=est.callback,
        )

    @property
    def key(self) -> str:
        """The settings that change the trained model, as text (compared on resume)."""
        return repr(tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name not in _RUNTIME_FIELDS))

    @property
    def total_steps(self) -> int:
        """Adam steps plus L-BFGS iterations."""
        return self.steps + self.lbfgs_steps


def _path(est: Any, name: str, value: Any) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ParameterError(f"{type(est).__name__}.{name} must be a file path or None, got {value!r}")
    return Path(value)


def _device(est: Any, value: Any) -> str:
    dev = str(value) if isinstance(value, str) else ""
    kind, _, index = dev.partition(":")
    if dev == "cpu" or (kind == "cuda" and (not index or index.isdigit())):
        return dev
    raise ParameterError(f"{type(est).__name__}.device must be 'cpu' or 'cuda[:N]', got {value!r}")


def _resume_path(est: Any, ckpt: Path | None) -> Path | None:
    resume = est.resume
    if resume is False or resume is None:
        return None
    if resume is True:
        if ckpt is None:
            raise ParameterError(
                f"{type(est).__name__}.resume=True needs checkpoint_path (or pass resume=PATH)"
            )
        return ckpt
    return _path(est, "resume", resume)


def _check_writable(est: Any, path: Path) -> None:
    """Refuse, before any training, a checkpoint path where no file can be written."""
    try:
        check_writable(path, f"{type(est).__name__}.checkpoint_path")
    except DataError as exc:
        raise ParameterError(str(exc)) from None
