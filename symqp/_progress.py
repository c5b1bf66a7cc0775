"""Progress and log lines: always on stderr, a live bar only on a terminal, silent when quiet.

Standard output carries results only (formulas, tables, file names), so that
``symqp fit ... | tee`` or a notebook cell's result is never interleaved with progress.
Progress goes to standard error:

* on a terminal: a live rich bar (redrawn in place);
* to a pipe, a file or a CI log: a plain line every :data:`INTERVAL` seconds or every 10 %
  of the work, whichever comes first, and a last line at the end (no control characters,
  nothing lost when the output is read later);
* nothing at all when quiet: ``symqp --quiet`` / ``-q`` on any command, ``SYMQP_QUIET=1``,
  or :func:`set_quiet`.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

__all__ = ["INTERVAL", "ProgressReporter", "is_quiet", "note", "set_quiet"]

#: Seconds between two plain progress lines when standard error is not a terminal.
INTERVAL = 10.0
_STEP = 0.1  # ... or every 10 % of the work
_quiet = False


def set_quiet(flag: bool = True) -> None:
    """Silence (or restore) every progress and log line of this process.

    Examples
    --------
    >>> set_quiet(True); is_quiet()
    True
    >>> set_quiet(False)
    """
    global _quiet
    _quiet = bool(flag)


def is_quiet() -> bool:
    """Whether progress and log lines are silenced (:func:`set_quiet` or ``SYMQP_QUIET=1``)."""
    return _quiet or os.environ.get("SYMQP_QUIET", "").strip().lower() in ("1", "true", "yes")


def note(message: str, *, stream: TextIO | None = None) -> None:
    """Print a log line to standard error unless quiet.

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO(); note("training ...", stream=buf); buf.getvalue()
    'training ...\\n'
    """
    if not is_quiet():
        print(message, file=stream or sys.stderr, flush=True)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty()) and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


class ProgressReporter:
    """Progress of ``total`` units of work on standard error (see the module docstring).

    Parameters
    ----------
    label : str
        What is running (``"decompose"``, ``"simulate"``).
    total : int
        Units of work.
    start : int
        Units already done (a resumed run).
    enabled : bool
        False (or quiet): report nothing.
    stream : file or None
        Where to report (standard error by default).

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()
    >>> p = ProgressReporter("simulate", 50, stream=buf)
    >>> for k in range(1, 51):
    ...     p.update(k)
    >>> p.close()
    >>> buf.getvalue().splitlines()[:2]  # doctest: +ELLIPSIS
    ['simulate: 5/50 (10%) elapsed ...', 'simulate: 10/50 (20%) elapsed ...']
    >>> len(buf.getvalue().splitlines())
    10
    """

    def __init__(self, label: str, total: int, *, start: int = 0, enabled: bool = True,
                 stream: TextIO | None = None) -> None:  # fmt: skip
        self.label = label
        self.total = max(int(total), 1)
        self.done = int(start)
        self.info = ""
        self._stream = stream or sys.stderr
        self._on = bool(enabled) and not is_quiet()
        self._t0 = self._last_t = time.monotonic()
        self._last_done = self.done
        self._bar: Any = None
        self._closed = False
        if self._on and _is_terminal(self._stream):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(), console=Console(file=self._stream), transient=False,
            )  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(label, total=self.total, completed=self.done, info="")

    def update(self, done: int, info: str | None = None) -> None:
        """``done`` units are finished; ``info`` is shown beside the count (loss values, ...)."""
        self.done = int(done)
        if info is not None:
            self.info = info
        if not self._on:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, info=self.info)
            return
        now = time.monotonic()
        if now - self._last_t >= INTERVAL or self.done - self._last_done >= _STEP * self.total:
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self._t0
        frac = self.done / self.total
        eta = ""
        moved = self.done - self._last_done if self._last_done < self.done else 0
        if 0 < frac < 1 and moved > 0:
            eta = f", about {elapsed * (1 - frac) / frac:.0f} s left"
        info = f"  {self.info}" if self.info else ""
        print(f"{self.label}: {self.done}/{self.total} ({100 * frac:.0f}%) elapsed {elapsed:.0f} s{eta}{info}",
              file=self._stream, flush=True)  # fmt: skip
        self._last_t, self._last_done = now, self.done

    def close(self) -> None:
        """Finish: stop the live bar, or print the last plain line if the work moved since."""
        if self._closed or not self._on:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
        elif self.done != self._last_done:
            self._line(time.monotonic())

    def __enter__(self) -> ProgressReporter:  # noqa: PYI034 - not subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
