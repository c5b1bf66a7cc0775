"""The examples/ notebooks run top to bottom (at reduced sizes: SYMQP_EXAMPLES_QUICK=1).

Marked ``notebooks`` (``make notebooks``; ``make docs`` executes them too, in CI), so that
``make test`` does not run them twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_examples_exist():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("SYMQP_EXAMPLES_QUICK", os.environ.get("SYMQP_EXAMPLES_QUICK", "1"))
    book = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), "commit notebooks without outputs"
    client = nbclient.NotebookClient(book, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # the notebooks show results, not warnings
    stderr = [o.text for c in book.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "stream" and o.name == "stderr"]
    assert not any("Warning" in s for s in stderr), stderr
