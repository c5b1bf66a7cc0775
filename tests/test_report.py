"""Figures, the HTML report and the ``symqp analyze`` / ``symqp report`` commands."""

from __future__ import annotations

import doctest
import importlib
import json
import struct

import numpy as np
import pytest
import sympy as sp

from symqp._errors import AnalysisError
from symqp.analysis import plot_pareto, plot_potentials, render_formula, write_report
from symqp.cli import main

EXAMPLE1 = {
    "schema": "symqp.result/1",
    "variables": ["x", "y", "z"],
    "U": "x**4 - 2*x**2 + y**2 + z**2 + 1",
    "V": "x**4/2 - x**2 + y**2/2 + z**2/2 + 1/2",
    "grad_V": ["2*x**3 - 2*x", "y", "z"],
    "g": ["-y - z", "2*x**3 - 2*x", "2*x**3 - 2*x"],
    "f": ["-2*x**3 + 2*x - y - z", "2*x**3 - 2*x - y", "2*x**3 - 2*x - z"],
    "backend": "sr3",
    "library": "poly(4)",
    "metrics": {},
    "timings": {},
    "fit": None,
}


def _example2() -> dict:
    """A result for Example 2 (graphene): the true f, V = zeta (P^2 + Q^2) / 2, g = f + grad V."""
    from symqp.result import Result
    from symqp.systems import get_system

    s = get_system("graphene")
    P, Q = s.variables
    V = sp.Float(s.params["zeta"]) * (P**2 + Q**2) / 2
    gv = [sp.diff(V, v) for v in (P, Q)]
    g = [sp.expand(fi + gi) for fi, gi in zip(s.field, gv)]
    r = Result.from_expressions(["P", "Q"], V, g=g, backend="sr3", library="poly(3)",
                                metrics={"box": s.box.tolist()})
    return r.to_dict()


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


@pytest.mark.parametrize("module", ["_figures", "_report"])
def test_doctests(module):
    mod = importlib.import_module(f"symqp.analysis.{module}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0


def _check_report(out, expected):
    page = out / "index.html"
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "MathJax" not in text
    for name in expected:
        assert _png_size(out / name) == (640, 480), name
    w, h = _png_size(out / "formula_U.png")
    assert w > 50 and h > 10
    # every figure and formula (U, and per variable dV/dx_k, g_k, f_k) is embedded in the page,
    # so the page stands alone
    formulas = list(out.glob("formula_*.png"))
    assert (len(formulas) - 1) % 3 == 0 and len(formulas) >= 4
    assert text.count("data:image/png;base64,") == len(expected) + len(formulas)


def test_report_example1_cli(tmp_path, capsys):
    res = tmp_path / "ex1.json"
    res.write_text(json.dumps(EXAMPLE1))
    out = tmp_path / "rep"
    assert main(["report", str(res), "--out", str(out), "--system", "archetypal3d"]) == 0
    _check_report(out, ["trajectories.png", "fields.png", "potentials.png", "densities.png"])
    assert "wrote" in capsys.readouterr().out


def test_report_example2_with_mesh_and_pareto(tmp_path):
    from types import SimpleNamespace

    from symqp.result import Result
    from symqp.systems import get_system

    r = Result.from_dict(_example2())
    r.fit = SimpleNamespace(front=[SimpleNamespace(complexity=k, train_error=1.0 / k,
                                                   val_error=2.0 / k) for k in (1, 3, 6)])
    zeta = get_system("graphene").params["zeta"]
    r.decomposition = SimpleNamespace(V=lambda X: zeta * np.sum(X**2, axis=1) / 2)
    out = tmp_path / "rep2"
    page = write_report(r, out, mesh_N=61)
    assert "network U" in page.read_text(encoding="utf-8")
    _check_report(out, ["trajectories.png", "fields.png", "potentials.png", "densities.png",
                        "pareto.png"])
    assert "mesh (OLIM, N=61)" in page.read_text(encoding="utf-8")


def test_analyze_prints_points_barriers_and_Z(tmp_path, capsys):
    res = tmp_path / "ex1.json"
    res.write_text(json.dumps(EXAMPLE1))
    assert main(["analyze", str(res), "--eps", "0.05", "0.1", "0.2", "--system", "archetypal3d",
                 "--n-traj", "4", "--t-final", "2"]) == 0
    out = capsys.readouterr().out
    assert "(-1, 0, 0)  stable focus  Hessian of U: min" in out
    assert "(0, 0, 0)  saddle (index 1)" in out
    assert "dU = 1" in out
    for z in ("0.0628753", "0.179867", "0.524055"):
        assert f"Z = {z}" in out
    assert "prediction error (eq. 18): 0 ± 0" in out


def test_analyze_with_box_and_no_region(tmp_path, capsys):
    res = tmp_path / "ex1.json"
    res.write_text(json.dumps(EXAMPLE1))
    assert main(["analyze", str(res), "--box=-2,2,-1,1,-1,1", "--eps", "0.1"]) == 0
    assert main(["analyze", str(res)]) == 2
    assert "no region to analyse" in capsys.readouterr().err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**EXAMPLE1, "schema": "symqp.result/0"}))
    assert main(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unsupported schema") and err.count("\n") == 1
    res = tmp_path / "ex1.json"
    res.write_text(json.dumps(EXAMPLE1))
    # a box without stationary points: reported as a note, the command still succeeds
    assert main(["analyze", str(res), "--box=0.2,0.8,0.2,0.8,0.2,0.8", "--eps", "0.1"]) == 0
    assert "contains no stationary point" in capsys.readouterr().out
    assert main(["analyze", str(res), "--box=2,-2,-1,1,-1,1"]) == 2
    assert "low >= high" in capsys.readouterr().err
    assert main(["analyze", str(res), "--box=1,2,3"]) == 2
    assert "needs 6 numbers" in capsys.readouterr().err
    assert main(["analyze", str(res), "--system", "linear_nongradient"]) == 2
    assert "variables" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(res), "--eps", "0"])
    assert exc.value.code == 2
    assert "positive number" in capsys.readouterr().err


def test_figure_inputs_rejected():
    x, y = sp.symbols("x y")
    with pytest.raises(AnalysisError, match="empty"):
        plot_pareto([])
    with pytest.raises(AnalysisError, match="plane"):
        plot_potentials({"U": x**2 + y**2}, [x, y], box=[[-1, 1], [-1, 1]], plane=(0, 0))
    with pytest.raises(AnalysisError, match="low >= high"):
        plot_potentials({"U": x**2 + y**2}, [x, y], box=[[1, -1], [-1, 1]])


def test_render_formula_long_sum_wraps():
    x, y = sp.symbols("x y")
    U = sum(sp.Float(0.123456 * (k + 1)) * x**k * y ** (6 - k) for k in range(7))
    fig = render_formula(U)
    assert len(fig.texts) == 2
    assert "0.1235" in fig.texts[0].get_text() or "0.1235" in fig.texts[1].get_text()
    assert np.all(fig.get_size_inches() > 0)


def test_render_formula_refuses_text():
    with pytest.raises(AnalysisError, match="needs a SymPy expression, got str"):
        render_formula("__import__('os').getcwd()")
    assert render_formula(2.5).texts[0].get_text() == "$U = 2.5$"
