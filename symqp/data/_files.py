"""Pair files: ``.npz`` (the format ``symqp fit`` reads) and CSV trajectories."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._errors import DataError
from .._io import atomic_write
from ._npz import read_npz
from ._pairs import Pairs, as_positive, check_nan_policy, pairs_from_arrays

__all__ = ["save_pairs", "load_pairs", "pairs_from_csv"]

_REQUIRED = ("x0", "xh", "h")
_OPTIONAL = ("names", "traj")


def save_pairs(pairs: Pairs, path: str | os.PathLike[str]) -> None:
    """Write pairs to ``.npz`` (``x0``, ``xh``, ``h``, ``names``, ``traj``) atomically.

    The file is written to a temporary name and renamed, so a failed write leaves no
    half-written file. It loads with ``allow_pickle=False``.

    Raises
    ------
    DataError
        When ``pairs`` is not a :class:`Pairs` or the file cannot be written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = Pairs(np.ones((4, 3)), 2 * np.ones((4, 3)), 0.5)
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "pairs.npz"
    >>> save_pairs(p, f)
    >>> load_pairs(f)
    Pairs(n=4, d=3, h=0.5, names=('x1', 'x2', 'x3'))
    """
    if not isinstance(pairs, Pairs):
        raise DataError(f"save_pairs expects a Pairs object, got {type(pairs).__name__}")
    arrays: dict[str, np.ndarray] = {
        "x0": pairs.x0,
        "xh": pairs.xh,
        "h": np.array(pairs.h, dtype=np.float64),
        "names": np.array(pairs.names, dtype=str),
    }
    if pairs.traj is not None:
        arrays["traj"] = pairs.traj
    target = Path(path)
    if target.is_dir():
        raise DataError(f"cannot write pairs to {target}: it is a folder")
    try:
        with atomic_write(target, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    except OSError as exc:
        raise DataError(f"cannot write pairs to {target}: {exc.strerror or exc}") from None


def load_pairs(path: str | os.PathLike[str], *, nan_policy: str = "raise") -> Pairs:
    """Read pairs from a ``.npz`` file with keys ``x0``, ``xh``, ``h`` (+ ``names``, ``traj``).

    Parameters
    ----------
    path : str or path-like
    nan_policy : {"raise", "drop"}
        What to do with pairs holding NaN/Inf (``"drop"`` warns).

    Raises
    ------
    DataError
        For a missing or unreadable file, missing keys, object (pickled) arrays, wrong
        dtypes or shapes, ``h <= 0``, too few pairs or bad names.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.npz"
    >>> np.savez(f, x0=np.eye(2), xh=np.eye(2))
    >>> load_pairs(f)
    Traceback (most recent call last):
    ...
    symqp._errors.DataError: p.npz: missing key 'h' (found: x0, xh); a pairs file needs x0, xh, h
    """
    check_nan_policy(nan_policy)
    data = read_npz(path, _REQUIRED, _OPTIONAL, kind="a pairs file")
    label = Path(os.fspath(path)).name
    names = data.get("names")
    if names is not None:
        if names.dtype.kind != "U" or names.ndim != 1:
            raise DataError(f"{label}: 'names' must be a 1-D array of strings, got dtype {names.dtype}")
        names = tuple(str(n) for n in names)
    h = data["h"]
    if h.shape not in ((), (1,)):
        raise DataError(f"{label}: 'h' must be a scalar, got shape {h.shape}")
    try:
        return pairs_from_arrays(
            data["x0"], data["xh"], h, names=names, traj=data.get("traj"), nan_policy=nan_policy
        )
    except DataError as exc:
        raise DataError(f"{label}: {exc}") from None


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        # utf-8-sig: spreadsheet programs start CSV files with a byte-order mark
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path.name}: empty file")
            header = [c.strip() for c in header]
            rows = []
            for lineno, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path.name}: line {lineno} has {len(row)} fields, the header has {len(header)}"
                    )
                try:
                    rows.append([float(c) for c in row])
                except ValueError:
                    bad = next(c for c in row if not _is_float(c))
                    raise DataError(f"{path.name}: line {lineno}: {bad.strip()!r} is not a number") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name}: cannot read ({type(exc).__name__})") from None
    return header, np.array(rows, dtype=np.float64).reshape(len(rows), len(header))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def pairs_from_csv(
    path: str | os.PathLike[str],
    h: float,
    *,
    columns: Sequence[str] | None = None,
    nan_policy: str = "raise",
    rtol: float = 1e-6,
) -> Pairs:
    """Convert CSV trajectories (columns ``traj``, ``t``, then state variables) to pairs.

    Every trajectory must be sampled with the same uniform time step ``Δ``; ``h`` must be a
    multiple ``kΔ`` and each state is paired with the state ``k`` rows later in the same
    trajectory. Rows may come in any order (they are sorted by ``traj`` then ``t``).

    Parameters
    ----------
    path : str or path-like
    h : float
        Pair interval, a positive multiple of the time step.
    columns : sequence of str, optional
        State columns to use, in this order (default: all columns after ``traj``, ``t``).
    nan_policy : {"raise", "drop"}
        Pairs touching a NaN/Inf state are refused or dropped with a warning.
    rtol : float
        Relative tolerance for "uniform" steps and for ``h`` being a multiple.

    Raises
    ------
    DataError
        For missing ``traj``/``t`` columns, unknown column names, non-numeric cells,
        repeated times, non-uniform steps, ``h`` not a multiple of the step, too few pairs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "traj.csv"
    >>> _ = f.write_text("traj,t,x,y\\n0,0,1,2\\n0,0.1,3,4\\n0,0.2,5,6\\n0,0.3,7,8\\n")
    >>> p = pairs_from_csv(f, 0.1)
    >>> p, p.xh[0].tolist()
    (Pairs(n=3, d=2, h=0.1, names=('x', 'y'), n_traj=1), [3.0, 4.0])
    """
    check_nan_policy(nan_policy)
    h = as_positive(h)
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {p}")
    header, table = _read_csv(p)
    if len(set(header)) != len(header):
        raise DataError(f"{p.name}: duplicate column names in header {header}")
    for need in ("traj", "t"):
        if need not in header:
            raise DataError(f"{p.name}: missing column {need!r} (columns: {', '.join(header)})")
    state_cols = [c for c in header if c not in ("traj", "t")]
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else list(columns)
        unknown = [c for c in columns if c not in state_cols]
        if unknown:
            raise DataError(
                f"{p.name}: unknown column {unknown[0]!r} (state columns: {', '.join(state_cols)})"
            )
        state_cols = columns
    if not state_cols:
        raise DataError(f"{p.name}: no state columns after 'traj' and 't'")
    if table.shape[0] == 0:
        raise DataError(f"{p.name}: no data rows")
    tr = table[:, header.index("traj")]
    t = table[:, header.index("t")]
    X = table[:, [header.index(c) for c in state_cols]]
    if not (np.all(np.isfinite(tr)) and np.all(np.isfinite(t))):
        raise DataError(f"{p.name}: 'traj' and 't' must not contain NaN/Inf")
    if np.any(tr != np.round(tr)):
        raise DataError(f"{p.name}: 'traj' must hold integer trajectory ids")
    tr = tr.astype(np.int64)
    order = np.lexsort((t, tr))
    tr, t, X = tr[order], t[order], X[order]
    same = tr[1:] == tr[:-1]
    steps = np.diff(t)[same]
    if steps.size == 0:
        raise DataError(f"{p.name}: every trajectory has a single row; no pairs can be formed")
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise DataError(f"{p.name}: repeated time t = {t[1:][same][i]} in trajectory {tr[1:][same][i]}")
    step = float(np.median(steps))
    dev = np.abs(steps - step)
    if np.any(dev > rtol * step):
        i = int(np.argmax(dev))
        raise DataError(
            f"{p.name}: non-uniform time steps: step {steps[i]:g} in trajectory {tr[1:][same][i]} "
            f"differs from {step:g}; resample to a uniform grid first"
        )
    k = int(round(h / step))
    if k < 1 or abs(k * step - h) > rtol * h:
        raise DataError(f"{p.name}: h = {h:g} is not a positive multiple of the time step {step:g}")
    # pair row i with row i + k when both belong to the same trajectory
    n = tr.shape[0]
    if n <= k:
        raise DataError(f"{p.name}: trajectories are too short for h = {h:g} ({k} steps)")
    i0 = np.flatnonzero(tr[: n - k] == tr[k:])
    return pairs_from_arrays(
        X[i0], X[i0 + k], h, names=state_cols, traj=tr[i0], nan_policy=nan_policy
    )
