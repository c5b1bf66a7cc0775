"""``symqp simulate SYSTEM --out DATA.npz``: sample snapshot pairs of a built-in system.

Contract::

    symqp simulate SYSTEM --out DATA.npz [--n-traj N] [--n-pairs M] [--h H] [--dt DT]
        [--seed S] [--noise SIGMA] [--param KEY=VALUE ...] [--force]
        [--sde-eps EPS [--substeps K] [--t-burn T] [--diffusion B]]

Defaults for the counts and steps come from the system (the seed paper's App. B values for
``archetypal3d`` and ``graphene``). A run is refused before it starts when it would need
more than :data:`MAX_BYTES` of memory, more than :data:`MAX_STEPS` RK4 steps per trajectory
or more than :data:`MAX_WORK` trajectory-steps in all (``--force`` lifts these limits).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from .._errors import DataError
from .._estimator import check_seed
from .._io import check_writable
from ._argtypes import integer

__all__ = ["MAX_BYTES", "MAX_STEPS", "MAX_WORK", "check_limits", "register", "run", "sampling_cost"]

# total RK4 trajectory-steps above which a progress bar is shown
_PROGRESS_WORK = 2_000_000
#: Most memory a run may need (8 GiB): the pairs, their copies and the file being written.
MAX_BYTES = 8 * 2**30
#: Most RK4 steps per trajectory (about half an hour of stepping on one core).
MAX_STEPS = 10**7
#: Most trajectory-steps in all (RK4 steps times trajectories; about an hour on one core).
MAX_WORK = 10**10


def sampling_cost(n_traj: int, n_pairs: int, h: float, dt: float, d: int) -> tuple[float, float, float]:
    """(RK4 steps per trajectory, trajectory-steps, bytes of memory) of :func:`sample_pairs`.

    Floats, so that absurd requests (h = 1e-300) give large numbers instead of overflowing.

    Examples
    --------
    >>> sampling_cost(5000, 50, 0.01, 0.1, 3)
    (2750.0, 13750000.0, 38000000.0)
    """
    per_snapshot = max(1.0, math.ceil(min(dt / (h / 5), 1e300) - 1e-9)) + 5.0
    steps = float(n_pairs) * per_snapshot
    return steps, steps * n_traj, 8.0 * n_traj * n_pairs * (6 * d + 1)


def check_limits(n_traj: int, n_pairs: int, h: float, dt: float, d: int) -> float:
    """The trajectory-steps of a run, or :class:`DataError` with the numbers when it is too large."""
    steps, work, nbytes = sampling_cost(n_traj, n_pairs, h, dt, d)
    hint = "; pass --force to run it anyway"
    if nbytes > MAX_BYTES:
        raise DataError(
            f"{n_traj} trajectories x {n_pairs} snapshots would need about {nbytes / 2**30:.3g} GiB "
            f"of memory (limit {MAX_BYTES / 2**30:g} GiB){hint}"
        )
    if steps > MAX_STEPS:
        raise DataError(
            f"about {steps:.3g} RK4 steps of h/5 = {h / 5:.3g} per trajectory to cover "
            f"{n_pairs} snapshots dt = {dt:g} apart (limit {MAX_STEPS:.0e}); raise h or lower dt or "
            f"--n-pairs{hint}"
        )
    if work > MAX_WORK:
        raise DataError(
            f"about {work:.3g} trajectory-steps ({n_traj} trajectories x {steps:.3g} RK4 steps; "
            f"limit {MAX_WORK:.0e}){hint}"
        )
    return work


def _count(text: str) -> int:
    """A whole number, also written ``1e4`` (the range is checked with the other inputs)."""
    try:
        value = float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not (math.isfinite(value) and value == int(value)):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)


def _matrix(text: str) -> list[list[float]]:
    """A small matrix written ``'1,0;0.5,1'`` (rows separated by ';')."""
    try:
        rows = [[float(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like '1,0;0.5,1', got {text!r}") from None
    if len({len(r) for r in rows}) != 1:
        raise argparse.ArgumentTypeError(f"the rows of {text!r} have different lengths")
    return rows


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    value = value.strip()
    try:
        num = float(value)
    except ValueError:
        return key, value  # e.g. a formula for rotated_gradient's V (parsed safely there)
    if num.is_integer() and "." not in value and "e" not in value.lower():
        return key, int(num)
    return key, num


def _sde_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """Keyword arguments of sample_sde_pairs from --sde-eps and its companions (None: the ODE)."""
    if args.sde_eps is None:
        if args.diffusion is not None or args.t_burn or args.substeps != 5:
            raise DataError("--diffusion, --t-burn and --substeps apply with --sde-eps only")
        return None
    if not (math.isfinite(args.sde_eps) and args.sde_eps > 0):
        raise DataError(f"--sde-eps must be a positive number (the noise level), got {args.sde_eps:g}")
    if not (math.isfinite(args.t_burn) and args.t_burn >= 0):
        raise DataError(f"--t-burn must be a non-negative number, got {args.t_burn:g}")
    return {"eps": args.sde_eps, "substeps": args.substeps, "t_burn": args.t_burn, "diffusion": args.diffusion}


def register(subparsers: Any) -> None:
    from ..systems import list_systems

    names = list_systems()
    p = subparsers.add_parser(
        "simulate",
        help="sample snapshot pairs of a built-in system to .npz",
        description="Sample snapshot pairs (x0, xh, h) of a built-in system following the seed "
        "paper's App. B protocol (uniform initial states in the box, RK4 with step h/5, "
        "snapshots at t_j = j*dt paired with t_j + h). Systems: " + ", ".join(names) + ".",
    )
    p.add_argument("system", metavar="SYSTEM", help="built-in system name")
    p.add_argument("--out", required=True, metavar="DATA.npz", help="output file (.npz)")
    p.add_argument("--n-traj", type=_count, default=None, metavar="N", help="number of trajectories")
    p.add_argument("--n-pairs", type=_count, default=None, metavar="M", help="snapshots per trajectory")
    p.add_argument("--h", type=float, default=None, metavar="H", help="time between the states of a pair")
    p.add_argument("--dt", type=float, default=None, metavar="DT", help="time between snapshots")
    p.add_argument("--seed", type=integer, default=0, help="random seed (default 0)")
    p.add_argument("--noise", type=float, default=0.0, metavar="SIGMA",
                   help="std of additive Gaussian measurement noise (default 0)")
    p.add_argument("--sde-eps", type=float, default=None, metavar="EPS",
                   help="simulate dx = f dt + sqrt(EPS) B dW instead of the ODE (stochastic Heun scheme); "
                        "the pairs are its increments, for 'symqp fit --stochastic'")
    p.add_argument("--substeps", type=_count, default=5, metavar="K",
                   help="with --sde-eps: Heun steps per interval h (default 5)")
    p.add_argument("--t-burn", type=float, default=0.0, metavar="T",
                   help="with --sde-eps: time run before the first snapshot (default 0)")
    p.add_argument("--diffusion", type=_matrix, default=None, metavar="B",
                   help="with --sde-eps: constant noise matrix B, rows separated by ';' (e.g. '1,0;0.5,1'; "
                        "default the identity)")
    p.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE",
                   help="system parameter, repeatable (e.g. --param alpha=2)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--force", action="store_true",
                   help=f"run even beyond the limits ({MAX_BYTES // 2**30} GiB of memory, {MAX_STEPS:.0e} RK4 "
                        f"steps per trajectory, {MAX_WORK:.0e} trajectory-steps)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import sample_pairs, sample_sde_pairs, save_pairs
    from ..data._sampling import check_sampling_args
    from ..systems import get_system, sampling_defaults

    seed = check_seed("", "--seed", args.seed)
    params = dict(args.param)
    if len(params) != len(args.param):
        raise DataError("a --param key is given more than once")
    system = get_system(args.system, **params)
    cfg = sampling_defaults(args.system)
    for key in ("n_traj", "n_pairs", "h", "dt"):
        value = getattr(args, key)
        if value is not None:
            cfg[key] = value
    if not str(args.out).endswith(".npz"):
        raise DataError(f"--out must name a .npz file, got {args.out!r}")
    if Path(args.out).is_dir():
        raise DataError(f"cannot write pairs to {args.out}: it is a folder")
    # every input is checked before any output (the progress bar) appears
    n_traj, n_pairs, h, dt, noise = check_sampling_args(
        cfg["n_traj"], cfg["n_pairs"], cfg["h"], cfg["dt"], args.noise
    )
    d = len(system.names)
    sde = _sde_options(args)
    # the cost model counts steps of h/5; an SDE run takes steps of h/substeps
    h_cost = h if sde is None else 5.0 * h / sde["substeps"]
    work = (sampling_cost(n_traj, n_pairs, h_cost, dt, d)[1] if args.force
            else check_limits(n_traj, n_pairs, h_cost, dt, d))  # fmt: skip
    sampler = sample_pairs if sde is None else sample_sde_pairs
    note = check_writable(args.out, "--out")
    if note and not args.quiet:
        print(note, file=sys.stderr)
    t0 = time.perf_counter()
    if work >= _PROGRESS_WORK and not args.quiet:
        from .._progress import ProgressReporter

        with ProgressReporter(f"simulating {system.name}", n_pairs) as bar:
            pairs = sampler(
                system, n_traj=n_traj, n_pairs=n_pairs, h=h, dt=dt, seed=seed,
                noise=noise, progress=lambda done, total: bar.update(done), **(sde or {}),
            )
    else:
        pairs = sampler(
            system, n_traj=n_traj, n_pairs=n_pairs, h=h, dt=dt, seed=seed,
            noise=noise, **(sde or {}),
        )
    elapsed = time.perf_counter() - t0
    save_pairs(pairs, args.out)
    if not args.quiet:
        out = sys.stdout
        sde_text = "" if sde is None else f"SDE eps = {sde['eps']:g}, "
        print(f"{system!r}", file=out)
        print(
            f"sampled {pairs.n} pairs ({n_traj} trajectories x {n_pairs} snapshots), "
            f"h = {h:g}, dt = {dt:g}, noise = {noise:g}, {sde_text}seed = {seed} in {elapsed:.2f} s",
            file=out,
        )
        for k, name in enumerate(pairs.names or ()):
            col = pairs.x0[:, k]
            print(f"  {name}: min {col.min():.4g}  max {col.max():.4g}  mean {col.mean():.4g}", file=out)
        print(f"wrote {args.out}", file=out)
    return 0
