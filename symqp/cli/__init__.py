"""The ``symqp`` command line: a thin layer over the public API.

Each sub-command lives in its own private module exposing ``register(subparsers)``; the
module's ``register`` adds a parser whose ``func`` default is called with the parsed
arguments and returns an exit code. Errors derived from :class:`symqp.SymqpError` are
printed as one line (``error: ...``) with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .._errors import SymqpError

__all__ = ["main"]

# Sub-command modules, in the order they appear in --help.
_COMMANDS = (
    "_simulate",
    "_fit",
    "_compare",
    "_analyze",
    "_report",
    "_sweep",
    "_sweep_plot",
    "_doctor",
    "_demo",
)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="symqp",
        description="Exact symbolic quasipotentials from trajectory data. Results go to standard "
        "output; progress and log lines to standard error (a live bar on a terminal, a plain line "
        "every ~10 s otherwise).",
    )
    parser.add_argument("--version", action="version", version=f"symqp {__version__}")
    parser.add_argument("-q", "--quiet", dest="quiet_all", action="store_true",
                        help="no progress or log lines on standard error (any command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # command not built in this version
            raise
        mod.register(sub)
    for p in sub.choices.values():  # --quiet after the command name too, on every command
        if not any("--quiet" in a.option_strings for a in p._actions):
            p.add_argument("-q", "--quiet", action="store_true", help="no progress or log lines on standard error")
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings from the libraries underneath as one line each (no source lines)."""
    text = (str(message).strip().splitlines() or [category.__name__])[0]
    print(f"warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from .._progress import set_quiet

    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = bool(getattr(args, "quiet_all", False) or getattr(args, "quiet", False))
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by commands that write results
    set_quiet(args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return int(args.func(args) or 0)
    except SymqpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print("error: the input is nested too deeply to process", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory (the input asks for more memory than this machine has)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (symqp ... | head): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
