"""Atomic file writes: a temp file in the target folder, then ``os.replace``.

Temporary files are named ``.<target>.<pid>.<random>.tmp``. One left behind by a process
that was killed mid-write is removed by the next write to the same target (when its
process no longer runs, or, for names without a process id, after an hour).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ._errors import DataError

__all__ = ["atomic_write", "check_writable"]

_STALE_SECONDS = 3600.0


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def _remove_stale(folder: Path, name: str) -> None:
    """Remove temporary files of earlier, interrupted writes to ``folder / name``."""
    prefix = f".{name}."
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        pid_text = entry.name[len(prefix):].split(".", 1)[0]
        try:
            stale = not _process_alive(int(pid_text)) if pid_text.isdigit() else (
                now - entry.stat().st_mtime > _STALE_SECONDS)
        except (OSError, ValueError, OverflowError):
            continue
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    If the body raises, the temporary file is removed and ``path`` is left untouched, so no
    half-written file is ever visible. Missing folders are created. Temporary files of
    earlier writes to ``path`` whose process was killed are removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_write(p) as fh:
    ...     _ = fh.write("hello")
    >>> p.read_text()
    'hello'
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder, target.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; give the result the usual permissions (0666 & ~umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_writable(path: str | os.PathLike[str], what: str = "output") -> str | None:
    """Check before any work that a file can be written at ``path``.

    A missing folder is created; the returned note says so (None when nothing was
    created). Refuses a path that is a folder, and a folder where no file can be created.

    Raises
    ------
    DataError
        Naming the path and the reason.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_writable(d / "r.json") is None
    True
    >>> check_writable(d / "new" / "r.json", "--out")  # doctest: +ELLIPSIS
    'created folder .../new for --out'
    """
    target = Path(path)
    if target.is_dir():
        raise DataError(f"{what} {target} is a folder, expected a file name")
    folder = target.parent if str(target.parent) else Path(".")
    note = None
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create folder {folder} for {what}: {exc.strerror or exc}") from None
        note = f"created folder {folder} for {what}"
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise DataError(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return note
