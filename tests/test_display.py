"""Results in a notebook: short repr, LaTeX and HTML display, coefficient and front tables."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import sympy as sp
from symqp.backends import Problem, fit_problem

from symqp import MissingDependencyError
from symqp.library import poly
from symqp.result import Result, load_result
from symqp.systems import archetypal3d

pd = pytest.importorskip("pandas")
x, y, z = sp.symbols("x y z")


def example1_result(**kw) -> Result:
    """Example 1 exactly: V = U/2, g = f + grad V (paper eq. 17)."""
    s = archetypal3d()
    V = s.U / 2
    g = [sp.expand(fk + sp.diff(V, v)) for fk, v in zip(s.field, s.variables)]
    return Result.from_expressions(s.names, V, g=g, **kw)


def test_repr_is_short_and_rounded():
    r = Result.from_expressions(["x"], sp.Float(0.123456789012345) * x**2, backend="sr3",
                                metrics={"route": "symbolic", "val_one_step_rel": 1.23456789e-9})
    text = repr(r)
    assert text == "Result(U(x) = 0.2469*x**2, backend=sr3, route=symbolic, val_one_step_rel=1.235e-09)"
    assert "\n" not in text


def test_latex_display_of_example1():
    tex = example1_result()._repr_latex_()
    assert tex.startswith("$\\displaystyle \\begin{aligned}") and tex.endswith("\\end{aligned}$")
    rows = tex[len("$\\displaystyle \\begin{aligned}"):-len("\\end{aligned}$")].split("\\\\\n")
    # U, three components of grad V, of g and of f
    assert len(rows) == 10
    assert rows[0] == "U &= x^{4} - 2 x^{2} + y^{2} + z^{2} + 1"
    assert rows[1] == "\\partial V / \\partial x &= 2 x^{3} - 2 x"
    assert rows[4] == "g_{x} &= - y - z"
    assert rows[7] == "f_{x} &= - 2 x^{3} + 2 x - y - z"


def test_html_display_has_formulas_and_metrics():
    r = example1_result(backend="sr3", library="poly(5)", tau=0.5,
                        metrics={"route": "symbolic", "val_one_step_rel": 2.5e-9, "note<": "x"},
                        timings={"total": 12.0})
    page = r._repr_html_()
    assert page.count("\\(") == 10 and page.count("\\)") == 10
    assert "\\(f_{y} = 2 x^{3} - 2 x - y\\)" in page
    for cell in ("<td>sr3</td>", "<td>poly(5)</td>", "<td>τ</td>", "<td>0.5</td>", "<td>symbolic</td>",
                 "<td>2.5e-09</td>", "<td>12 s</td>"):
        assert cell in page
    assert "note<" not in page  # non-numeric extras are not shown; nothing is unescaped


def test_ipython_formatter_offers_html_and_latex():
    formatters = pytest.importorskip("IPython.core.formatters")
    bundle, _ = formatters.DisplayFormatter().format(example1_result())
    assert {"text/plain", "text/html", "text/latex"} <= set(bundle)
    assert bundle["text/plain"].startswith("Result(U(x, y, z) = x**4")


def test_coefficients_match_example1_closed_form():
    table = example1_result().coefficients()
    assert list(table.columns) == ["U", "V", "g[x]", "g[y]", "g[z]", "f[x]", "f[y]", "f[z]"]
    assert table.index.name == "term"
    assert table.loc["1", "U"] == 1.0 and table.loc["x**4", "U"] == 1.0
    assert table.loc["x**2", "U"] == -2.0 and table.loc["y**2", "V"] == 0.5
    # f = (-2x^3 + 2x - y - z, -y + 2x^3 - 2x, -z + 2x^3 - 2x)
    assert table["f[x]"].to_dict() == {"1": 0, "x": 2, "y": -1, "z": -1, "x**2": 0, "y**2": 0,
                                       "z**2": 0, "x**3": -2, "x**4": 0}
    assert table.loc["x**3", "f[y]"] == 2.0 and table.loc["z", "f[z]"] == -1.0
    # rows: constant, then by degree
    assert list(table.index[:4]) == ["1", "x", "y", "z"]


def test_coefficients_keep_non_polynomial_terms():
    r = Result.from_expressions(["x", "y"], 1 - sp.cos(x) + y**2 / 2, g=[-y, sp.sin(x)])
    table = r.coefficients()
    assert table.loc["cos(x)", "U"] == -2.0
    # f = -grad V + g = (-sin(x) - y, -y + sin(x))
    assert table.loc["sin(x)", "f[x]"] == -1.0 and table.loc["sin(x)", "f[y]"] == 1.0
    assert table.loc["sin(x)", "g[y]"] == 1.0 and table.loc["sin(x)", "U"] == 0.0


def stlsq_fit():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 2))
    g = np.column_stack([-X[:, 1], X[:, 0]])
    V = (X**2).sum(1) / 2
    return fit_problem("stlsq", Problem(X, -X + g, V, g, poly((x, y), 3)))


def test_front_of_a_backend_fit(tmp_path):
    fit = stlsq_fit()
    r = Result.from_expressions(["x", "y"], fit.V, g=fit.g, fit=fit, backend="stlsq")
    table = r.front()
    assert list(table.columns[:7]) == ["complexity", "train_error", "val_error", "chosen", "U", "g[x]", "g[y]"]
    assert "threshold" in table.columns
    assert list(table["complexity"]) == sorted(table["complexity"])
    chosen = table[table["chosen"]]
    assert len(chosen) == 1
    row = chosen.iloc[0]
    # exact data: the chosen model is U = x^2 + y^2, g = (-y, x) with 4 nonzero V/g coefficients
    assert row["complexity"] == 4 and row["train_error"] < 1e-12
    assert max(abs(float(c)) for c in sp.Poly(row["U"] - (x**2 + y**2), x, y).coeffs()) < 1e-12
    # the same table after a save/load round trip
    again = load_result(r.save(tmp_path / "r.json")).front()
    assert list(again["complexity"]) == list(table["complexity"])
    assert list(again["chosen"]) == list(table["chosen"])


def test_front_after_refinement_shows_backend_and_refined_errors():
    import symqp

    class Exact:
        def V(self, X):
            return 0.5 * (X**2).sum(1)

        def grad_V(self, X):
            return X.copy()

        def g(self, X):
            return np.c_[-X[:, 1], X[:, 0]]

        def f(self, X):
            return self.g(X) - self.grad_V(X)

    s = symqp.systems.from_strings(["-x - y", "x - y"], "x y", box=[[-1, 1], [-1, 1]])
    pairs = symqp.data.sample_pairs(s, n_traj=60, n_pairs=10, h=0.01, dt=0.05, seed=1)
    r = symqp.fit(pairs, library="poly(2)", decomposition=Exact(), method="neural", verbose=False)
    table = r.front()
    assert {"backend_train_error", "backend_val_error", "refined_on_data"} <= set(table.columns)
    assert "data_val_error" not in table.columns
    assert table["refined_on_data"].all()
    assert table["chosen"].sum() == 1
    best = table[table["chosen"]].iloc[0]
    assert best["val_error"] < 1e-6 and best["complexity"] == 4


def test_front_of_a_result_without_fit_is_empty():
    table = example1_result().front()
    assert len(table) == 0 and "complexity" in table.columns


def test_tables_without_pandas_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match=r"pandas is needed for DataFrames \(Result.coefficients\(\).*symqp\[notebooks\]"):
        example1_result().coefficients()
    with pytest.raises(MissingDependencyError, match="pandas"):
        example1_result().front()
    assert "U(x, y, z)" in example1_result()._repr_html_()  # the display needs no pandas


def test_doctests():
    import doctest

    from symqp.result import _display

    res = doctest.testmod(_display, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
