"""The results table of a sweep: one CSV row per finished point, appended as points finish.

Only the driver writes it. Each row is one ``write`` followed by ``fsync``, so a crash loses
at most the row being written; a torn last line (no newline) is cut off when the table is
opened again. The columns are fixed when the table is created; a resumed sweep that needs
more columns rewrites the table atomically with the union of both.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._errors import DataError, first_line
from .._io import atomic_write

__all__ = ["Table", "read_table"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _line(columns: Sequence[str], row: dict[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


class Table:
    """An append-only CSV table of sweep rows keyed by ``point_id``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> t = Table(pathlib.Path(tempfile.mkdtemp()) / "table.csv", ["point_id", "seed", "dU"])
    >>> t.append({"point_id": "p1", "seed": 0, "dU": 0.5})
    >>> sorted(Table(t.path, ["point_id"]).done), t.path.read_text().splitlines()[1]
    (['p1'], 'p1,0,0.5')
    """

    def __init__(self, path: str | os.PathLike[str], columns: Iterable[str]) -> None:
        self.path = Path(path)
        wanted = list(dict.fromkeys(["point_id", *columns]))
        rows = self._read()
        if rows is None:
            self.columns = wanted
            with atomic_write(self.path, "w", encoding="utf-8", newline="") as fh:
                fh.write(_line(self.columns, {c: c for c in self.columns}))
            rows = []
        else:
            have, rows = rows
            missing = [c for c in wanted if c not in have]
            self.columns = have + missing
            if missing:
                self._rewrite(rows)
        self.done: set[str] = {r["point_id"] for r in rows}

    def _read(self) -> tuple[list[str], list[dict[str, str]]] | None:
        """(columns, rows) of an existing table, a torn last line cut off; None if there is none."""
        if not self.path.is_file():
            return None
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):  # a write cut short by a crash
            raw = raw[: raw.rfind(b"\n") + 1]
            with open(self.path, "r+b") as fh:
                fh.truncate(len(raw))
        try:
            reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{self.path} is not a sweep table: {exc}") from None
        if not reader.fieldnames or "point_id" not in reader.fieldnames:
            if not raw:
                return None
            raise DataError(f"{self.path} is not a sweep table (no point_id column)")
        return list(reader.fieldnames), rows

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        with atomic_write(self.path, "w", encoding="utf-8", newline="") as fh:
            fh.write(_line(self.columns, {c: c for c in self.columns}))
            for r in rows:
                fh.write(_line(self.columns, r))

    def append(self, row: dict[str, Any]) -> None:
        """Append one row (durably: flushed and fsync'ed before returning)."""
        unknown = [k for k in row if k not in self.columns]
        if unknown:
            self.columns += unknown
            prev = self._read()
            self._rewrite(prev[1] if prev else [])
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            fh.write(_line(self.columns, row))
            fh.flush()
            os.fsync(fh.fileno())
        self.done.add(str(row["point_id"]))


def read_table(path: str | os.PathLike[str]) -> Any:
    """A sweep table as a :class:`pandas.DataFrame` (a sweep folder or its ``table.csv``).

    Empty cells are NaN; ``true``/``false`` columns are booleans.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> t = Table(pathlib.Path(tempfile.mkdtemp()) / "table.csv", ["point_id", "seed", "dU"])
    >>> t.append({"point_id": "p1", "seed": 0, "dU": 0.5})
    >>> read_table(t.path)["dU"].tolist()
    [0.5]
    """
    from .._optional import require

    pd = require("pandas")
    p = Path(path)
    if p.is_dir():
        p = p / "table.csv"
    if not p.is_file():
        raise DataError(f"no sweep table at {path}")
    try:
        return pd.read_csv(p, true_values=["true"], false_values=["false"])
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{p} is not a readable sweep table: {first_line(exc)}") from None

