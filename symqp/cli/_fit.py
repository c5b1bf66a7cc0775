"""``symqp fit DATA.npz --library SPEC ...``: snapshot pairs to RESULT.json.

Contract (held fixed)::

    symqp fit DATA.npz --library SPEC [--v-library SPEC] [--g-library SPEC] [--backend NAME]
        [--out RESULT.json] [--seed N] [--device cpu|cuda] [--steps N] [--tau T]
        [--model {orthogonal,hamiltonian,epr}] [--method auto|neural|symbolic]
        [--checkpoint PATH [--checkpoint-every N] [--resume]]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._errors import BackendError, DataError, SymqpError, TrainingError, first_line
from .._estimator import check_seed
from .._io import check_writable
from ._argtypes import integer, positive_float, positive_int

#: Training steps between checkpoints when only --checkpoint is given.
CHECKPOINT_EVERY = 1000

__all__ = ["register", "run", "translate_errors"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fit",
        help="fit an exact symbolic quasipotential to snapshot pairs",
        description="Neural orthogonal decomposition + constrained regression: DATA.npz "
        "(x0, xh, h, optional names) -> RESULT.json with U = 2V, grad V, g, f.",
    )
    p.add_argument(
        "data", metavar="DATA.npz",
        help="snapshot pairs (x0, xh, h, optional names, traj); for --model hamiltonian: q, p "
        "(R, N, d), h, optional mass, names; for --model epr: stationary samples x, drift f, D",
    )
    p.add_argument("--library", required=True, metavar="SPEC", help="library spec, e.g. 'poly(4)'")
    p.add_argument("--v-library", metavar="SPEC", default=None, help="hypothesis space of V")
    p.add_argument("--g-library", metavar="SPEC", default=None, help="hypothesis space of g")
    p.add_argument(
        "--backend", metavar="NAME", default=None,
        help="regression backend (default sr3; stlsq for --model hamiltonian/epr, which then "
        "regresses the data on the gradient library directly, without a network)",
    )
    p.add_argument("--out", metavar="RESULT.json", default=None, help="output file (default DATA.result.json)")
    p.add_argument("--seed", type=integer, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N", help="training steps")
    p.add_argument(
        "--tau", type=positive_float, default=None, metavar="T",
        help="sublevel threshold above min V_theta (default: automatic)",
    )
    p.add_argument(
        "--method", choices=("auto", "neural", "symbolic"), default="auto",
        help="identification route of --model orthogonal: symbolic (network-free: f from the pairs, "
        "V from the Hamilton-Jacobi equation), neural (network decomposition + regression), or auto "
        "(default: symbolic, falling back to neural when the symbolic result is not credible)",
    )
    p.add_argument(
        "--stochastic", action="store_true",
        help="the pairs are increments of an SDE dx = f dt + sqrt(eps) dW: f is its drift and eps is "
        "estimated (metrics eps, eps_std)",
    )
    p.add_argument(
        "--bootstrap", type=integer, default=None, metavar="N",
        help="replicates of the constrained bootstrap behind the coefficient intervals on noisy pairs "
        "(default: 64 when the pairs are noisy and numerous enough; 0: none)",
    )
    p.add_argument(
        "--model", choices=("orthogonal", "hamiltonian", "epr"), default="orthogonal",
        help="orthogonal decomposition (default), Hamiltonian potential or EPR landscape",
    )
    p.add_argument(
        "--checkpoint", metavar="PATH", default=None,
        help="write checkpoints of the neural decomposition's training to PATH (selects the "
        "neural route under --method auto)",
    )
    p.add_argument(
        "--checkpoint-every", type=positive_int, default=None, metavar="N",
        help=f"training steps between checkpoints (default {CHECKPOINT_EVERY})",
    )
    p.add_argument("--resume", action="store_true", help="resume the training from --checkpoint PATH")
    p.set_defaults(func=run)


def translate_errors(exc: BaseException, stage: str) -> SymqpError:
    """One-line SymqpError for an exception raised by numpy/torch/scipy internals."""
    first = first_line(exc)
    msg = f"{stage} failed: {type(exc).__name__}: {first}"
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return DataError(f"{stage} failed: cannot read {getattr(exc, 'filename', '') or first}")
    if isinstance(exc, (RuntimeError, FloatingPointError, MemoryError)):
        return TrainingError(msg)
    return BackendError(msg)


def default_out(data: str | Path) -> Path:
    """``data.npz`` -> ``data.result.json`` beside it."""
    p = Path(data)
    return p.with_name(p.stem + ".result.json")


def _check_data_path(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {path}")
    if p.is_dir():
        raise DataError(f"data path is a folder, expected an .npz file: {path}")


def _checkpoint_options(args: argparse.Namespace) -> dict[str, Any]:
    """``decomposition_options`` of --checkpoint, --checkpoint-every and --resume."""
    path = getattr(args, "checkpoint", None)
    if path is None:
        if args.resume or args.checkpoint_every is not None:
            raise DataError("--resume and --checkpoint-every need --checkpoint PATH")
        return {}
    if args.model != "orthogonal" or args.method == "symbolic":
        raise DataError("--checkpoint applies to the neural route (--model orthogonal, --method neural or auto)")
    if args.resume and not Path(path).is_file():
        raise DataError(f"--resume: no checkpoint at {path}")
    every = args.checkpoint_every or CHECKPOINT_EVERY
    return {"checkpoint_path": path, "checkpoint_every": every, "resume": bool(args.resume)}


def run(args: argparse.Namespace) -> int:
    check_seed("", "--seed", args.seed)
    _check_data_path(args.data)
    out = Path(args.out) if args.out else default_out(args.data)
    if out.exists() and out.is_dir():
        raise DataError(f"--out is a folder, expected a file name: {out}")
    options = _checkpoint_options(args)
    note = check_writable(out, "--out")
    if note and not args.quiet:
        print(note, file=sys.stderr)
    if args.model != "orthogonal" and (args.v_library or args.g_library or args.tau is not None):
        raise DataError("--v-library, --g-library and --tau apply to --model orthogonal only")
    if args.model != "orthogonal" and args.method != "auto":
        raise DataError("--method applies to --model orthogonal only")
    if args.model != "orthogonal" and (args.stochastic or args.bootstrap is not None):
        raise DataError("--stochastic and --bootstrap apply to --model orthogonal only")
    try:
        if args.model == "orthogonal":
            import symqp

            result = symqp.fit(
                args.data,
                library=args.library,
                v_library=args.v_library,
                g_library=args.g_library,
                backend=args.backend or "sr3",
                method=args.method,
                tau=args.tau,
                decomposition_options=options or None,
                seed=args.seed,
                device=args.device,
                steps=args.steps,
                stochastic=args.stochastic,
                bootstrap=args.bootstrap,
            )
        else:
            from .. import identify

            fn = identify.fit_hamiltonian if args.model == "hamiltonian" else identify.fit_epr
            backend = args.backend or "stlsq"
            result = fn(args.data, library=args.library, backend=backend, seed=args.seed, steps=args.steps,
                        device=args.device)
    except SymqpError:
        raise
    except Exception as exc:  # noqa: BLE001 - third-party internals -> one line, exit 2
        raise translate_errors(exc, "fit") from exc
    if args.device != "cpu" and result.metrics.get("route") in ("direct", "symbolic"):
        print(f"note: --device {args.device} unused: the {result.metrics['route']} route trains no network",
              file=sys.stderr)
    import shlex

    result.metrics["command"] = "symqp " + shlex.join(getattr(args, "argv", None) or ["fit", args.data])
    print(result.pretty())
    if getattr(result, "uncertainty", None):
        print(result.coefficient_table())
    try:
        result.save(out)
    except SymqpError:
        raise
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}")
    return 0
