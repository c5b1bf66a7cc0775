"""Reading ``.npz`` archives that may be damaged or hostile.

``numpy.load`` trusts an archive: a member's header may claim a shape of 10**12 rows (it
then allocates terabytes), a damaged header raises tokenizer errors, and members that are
not ``.npy`` files raise odd exceptions. :func:`read_npz` reads the zip directory and each
needed member's header first, checks that the claimed size is really stored, refuses
object (pickled) arrays, and only then reads the data with :func:`numpy.lib.format.read_array`.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .._errors import DataError, first_line

__all__ = ["MAX_ARRAY_BYTES", "read_npz"]

#: Largest array a data file may hold (16 GiB).
MAX_ARRAY_BYTES = 16 * 2**30


def _header(fh, label: str, key: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as exc:  # noqa: BLE001 - ValueError, SyntaxError, tokenize errors, ...
        raise DataError(f"{label}: member {key!r} has a damaged .npy header ({first_line(exc)})") from None
    return tuple(shape), np.dtype(dtype)


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, key: str) -> np.ndarray:
    with zf.open(info) as fh:
        shape, dtype = _header(fh, label, key)
    if dtype.hasobject:
        raise DataError(f"{label}: contains object (pickled) arrays, which are refused ({key!r})")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > info.file_size:
        raise DataError(
            f"{label}: member {key!r} claims shape {shape} ({nbytes} bytes) but stores only "
            f"{info.file_size} bytes; the file is damaged"
        )
    if nbytes > MAX_ARRAY_BYTES:
        raise DataError(f"{label}: member {key!r} holds {nbytes} bytes (limit {MAX_ARRAY_BYTES})")
    with zf.open(info) as fh:
        return npy_format.read_array(fh, allow_pickle=False)


def read_npz(path: object, required: Sequence[str], optional: Sequence[str] = (), *,
             kind: str = "a data file") -> dict[str, np.ndarray]:
    """The arrays ``required`` (all) and ``optional`` (those present) of an ``.npz`` archive.

    Raises
    ------
    DataError
        For a path that is not a file, a file that is not a zip archive, a missing key,
        a damaged member, an object array, or a member whose header claims more data than
        it stores; the message names the file and the member.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> np.savez(f, a=np.arange(3), b=np.ones(2))
    >>> read_npz(f, ["a"], ["c"])
    {'a': array([0, 1, 2])}
    >>> read_npz(f, ["x0"], kind="a pairs file (x0, xh, h)")
    Traceback (most recent call last):
    ...
    symqp._errors.DataError: a.npz: missing key 'x0' (found: a, b); a pairs file (x0, xh, h) needs x0
    """
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"expected the path of an .npz file, got {type(path).__name__}")
    p = Path(path)
    label = p.name or str(p)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    try:
        if not zipfile.is_zipfile(p):
            raise DataError(f"{label}: not a .npz archive ({kind} needs keys {', '.join(required)})")
        with zipfile.ZipFile(p) as zf:
            members = {
                info.filename[:-4]: info
                for info in zf.infolist()
                if info.filename.endswith(".npy") and not info.is_dir()
            }
            missing = [k for k in required if k not in members]
            if missing:
                raise DataError(
                    f"{label}: missing key {missing[0]!r} (found: {', '.join(members) or 'nothing'}); "
                    f"{kind} needs {', '.join(required)}"
                )
            return {k: _member(zf, members[k], label, k) for k in (*required, *optional) if k in members}
    except DataError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile,
            NotImplementedError, RuntimeError, zlib.error) as exc:
        # damaged compressed data, encrypted or unsupported members, short reads
        raise DataError(f"{label}: not a readable .npz file ({type(exc).__name__}: {first_line(exc)})") from None
