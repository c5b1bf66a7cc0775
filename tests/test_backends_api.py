"""The backends' estimator contract (parameters, clone, ParameterError, fit -> self), the
shared Backend.fit seen from a third-party backend, fit_problem, the PySR backend on a
recorded ``equations_`` table, and the comparison table and Pareto plot."""

import sys
from typing import ClassVar

import numpy as np
import pytest
import sympy as sp
from backend_cases import U1, RaiseOnImport, coef_error, example1_problem, rotation_problem, x, y
from sklearn.base import clone
from symqp.backends import (
    Backend,
    Comparison,
    Fit,
    Problem,
    Search,
    available_backends,
    compare_fits,
    fit_problem,
    get_backend,
    plot_pareto,
    register_backend,
)

from symqp._errors import BackendError, ParameterError, SymqpError
from symqp.library import poly


# ------------------------------------------------------------------ the shared fit, registry
class Const(Backend):
    """A third-party backend: V = c·(x² + y²)/2, g = 0 for a few c; the base does the rest."""

    name = "const"

    def __init__(self, *, scales=(0.5, 1, 2), selection_rule="tolerance", rel_tol=0.05, abs_tol=1e-9):
        self.scales = scales
        self.selection_rule = selection_rule
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol

    def _check_params(self):
        if not self.scales:
            raise ParameterError("Const.scales must not be empty")

    def _candidates(self, problem):
        r2 = sum(v**2 for v in problem.variables) / 2
        zero = (sp.S(0),) * problem.d
        return Search([self._candidate(problem, c * r2, zero, k + 1) for k, c in enumerate(self.scales)],
                      selection="scaled radius", diagnostics={"n_scales": len(self.scales)})


def test_registry_bad_options_and_registration():
    with pytest.raises(ParameterError, match=r"unknown parameter 'thresh' of SR3 \(valid: threshold, nu"):
        get_backend("sr3", thresh=0.1)
    with pytest.raises(BackendError, match="module:Class"):
        register_backend("x", "no-colon")
    with pytest.raises(BackendError, match="Backend subclass"):
        register_backend("x", int)
    register_backend("const-test", Const)
    assert isinstance(get_backend("const-test"), Const)
    register_backend("broken-test", "symqp.backends._nothing:Nope")
    with pytest.raises(BackendError, match="cannot be loaded"):
        get_backend("broken-test")
    status = available_backends()
    assert status["sr3"][0] and status["stlsq"][0]
    assert status["broken-test"][0] is False


def test_third_party_backend_gets_the_shared_fit():
    """Selection, exact ∇V and f, diagnostics and fit_ come from Backend.fit."""
    X = np.random.default_rng(0).uniform(-1, 1, (100, 2))
    pb = Problem(X, -X, (X**2).sum(1) / 2, np.zeros_like(X), poly((x, y), 2))
    be = Const()
    assert be.fit(pb) is be
    fit = be.fit_
    assert isinstance(fit, Fit) and fit.backend == "const" and fit.coef is None
    assert sp.expand(fit.U - (x**2 + y**2)) == 0 and fit.g == (0, 0)
    assert fit.f == (-x, -y) and fit.grad_V == (x, y)
    assert [c.complexity for c in fit.front] == [1, 2]  # the scale 2 model is dominated
    assert fit.selection.startswith("scaled radius: smallest complexity with training error")
    assert fit.diagnostics["train_error"] < 1e-15 and fit.diagnostics["n_scales"] == 3
    assert fit.diagnostics["f_residual"] < 1e-15 and fit.diagnostics["constraint_residual"] == 0.0
    assert {"selection", "total"} <= set(fit.timings)
    with pytest.raises(ParameterError, match="Const.scales must not be empty"):
        Const(scales=()).fit(pb)


class _Crashing(Const):
    def _candidates(self, problem):
        raise np.linalg.LinAlgError("Matrix is singular.\n  more detail")


def test_fit_problem_returns_the_fit_and_wraps_solver_errors():
    pb = rotation_problem(n=50)
    fit = fit_problem("stlsq", pb)
    assert isinstance(fit, Fit) and coef_error(fit.U, x**2 + y**2) < 1e-12
    with pytest.raises(BackendError, match=r"^regression backend const failed: LinAlgError: Matrix is singular\.$"):
        fit_problem(_Crashing(), pb)
    with pytest.raises(BackendError, match="must be a Backend or a registered name"):
        fit_problem(object(), pb)


# ------------------------------------------------------------------ estimator contract
ALL_BACKENDS = ("sr3", "stlsq", "operon", "pysr")
CHANGED = {"sr3": {"threshold": 0.2, "val_frac": 0.4}, "stlsq": {"factor": 0.5}, "operon": {"threads": 2},
           "pysr": {"binary_operators": ("+", "*"), "niterations": 7}}
INVALID = {"sr3": ("nu", -1.0), "stlsq": ("max_iter", 0), "operon": ("prune_tol", 2.0), "pysr": ("maxsize", 0)}


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_backends_follow_the_estimator_contract(name, monkeypatch):
    # PySR without Julia: constructing and cloning must not import it
    monkeypatch.delitem(sys.modules, "pysr", raising=False)
    monkeypatch.setattr(sys, "meta_path", [RaiseOnImport(), *sys.meta_path])
    be = get_backend(name, selection_rule="knee", rel_tol=0.1, **CHANGED[name])
    twin = clone(be)
    assert type(twin) is type(be) and twin is not be
    assert twin.get_params() == be.get_params()
    assert twin.get_params()["selection_rule"] == "knee" and repr(twin) == repr(be)
    assert "pysr" not in sys.modules
    with pytest.raises(ValueError, match=f"unknown parameter 'bogus' of {type(be).__name__}"):
        be.set_params(bogus=1)
    with pytest.raises(ParameterError, match="unknown parameter 'bogus'"):
        type(be)(bogus=1)
    param, value = INVALID[name]
    with pytest.raises(ValueError, match=rf"{type(be).__name__}\.{param} must be"):
        be.set_params(**{param: value}).fit(rotation_problem(n=20))
    with pytest.raises(SymqpError, match="selection_rule must be one of 'tolerance', 'knee'; got 'elbow'"):
        clone(twin).set_params(selection_rule="elbow").fit(rotation_problem(n=20))


@pytest.mark.parametrize("name", ["sr3", "stlsq"])
def test_fit_returns_self_with_fit_(name):
    be = get_backend(name, threshold=0.1)
    assert not hasattr(be, "fit_")
    assert be.fit(rotation_problem()) is be
    assert isinstance(be.fit_, Fit) and be.fit_.backend == name
    assert coef_error(be.fit_.U, x**2 + y**2) < 1e-10
    assert not hasattr(clone(be), "fit_")  # a clone is unfitted


# ------------------------------------------------------------------ pysr on a recorded table
RECORDED = {
    "complexity": [3, 7, 11, 15],
    "loss": [0.52, 0.21, 1.3e-3, 2.1e-14],
    "score": [0.0, 0.22, 1.27, 6.9],
    "equation": [
        "V = 0.33; g1 = #1; g2 = #2",
        "V = (#1 * #1) * 0.5; g1 = -#2; g2 = #1",
        "V = ((#1 * #1) + (#2 * #2)) * 0.49; g1 = -#2; g2 = #1",
        "V = ((#1 * #1) + (#2 * #2)) * 0.5; g1 = (-1.0 * #2); g2 = #1",
    ],
}


class _RecordedPySR:
    """Stands in for the ``pysr`` module: its regressor "finds" the RECORDED table."""

    calls: ClassVar[list] = []

    class TemplateExpressionSpec:
        def __init__(self, **kw):
            self.kw = kw

    class PySRRegressor:
        def __init__(self, **kw):
            self.kw = kw

        def fit(self, X, y):
            _RecordedPySR.calls.append((self.kw, X, y))
            self.equations_ = RECORDED


def test_pysr_backend_on_a_recorded_table(monkeypatch):
    from symqp.backends._pysr import candidates_from_equations

    pb = rotation_problem(n=200)
    cands = candidates_from_equations(RECORDED, pb)
    assert [c.complexity for c in cands] == RECORDED["complexity"]
    assert cands[-1].train_error < 1e-12 < cands[-2].train_error < cands[0].train_error
    with pytest.raises(BackendError, match="needs columns"):
        candidates_from_equations({"equation": ["V = #1"]}, pb)
    with pytest.raises(BackendError, match="empty"):
        candidates_from_equations({"complexity": [], "loss": [], "equation": []}, pb)

    monkeypatch.setitem(sys.modules, "pysr", _RecordedPySR)
    _RecordedPySR.calls.clear()
    be = get_backend("pysr", niterations=3, max_points=150, orthogonality_weight=2.0)
    fit = be.fit(pb).fit_
    (kw, data, target), = _RecordedPySR.calls
    assert kw["niterations"] == 3 and kw["binary_operators"] == ["+", "-", "*"] and kw["random_state"] == 0
    assert kw["expression_spec"].kw["expressions"] == ["V", "g1", "g2"]
    assert "2.0 * abs2(dv1 * g1v + dv2 * g2v)" in kw["expression_spec"].kw["combine"]
    assert data.shape == (150, 2 + 2 + 1 + 2) and not target.any()  # x, f, V, g columns; loss-only target
    assert fit.backend == "pysr" and fit.coef is None
    assert sp.expand(fit.U - (x**2 + y**2)) == 0 and sp.expand(fit.g[0] + y) == 0 and fit.g[1] == x
    assert [c.complexity for c in fit.front] == [3, 7, 11, 15]
    assert fit.diagnostics["orthogonality"] < 1e-12 and fit.diagnostics["f_residual"] < 1e-12
    assert fit.diagnostics["loss"] == 2.1e-14 and "search" in fit.timings


def test_pysr_candidates_from_dataframe():
    pd = pytest.importorskip("pandas")
    from symqp.backends._pysr import candidates_from_equations

    cands = candidates_from_equations(pd.DataFrame(RECORDED), rotation_problem(n=100))
    assert len(cands) == 4 and cands[-1].params["loss"] == 2.1e-14


# ------------------------------------------------------------------ comparison
def test_compare_fits_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "pysr", raising=False)
    monkeypatch.setattr(sys, "meta_path", [RaiseOnImport(), *sys.meta_path])
    pb = example1_problem(n=600, degree=4)
    comp = compare_fits(pb, ["sr3", "stlsq", "pysr"], sr3={"threshold": 0.1})
    assert isinstance(comp, Comparison) and set(comp.fits) == {"sr3", "stlsq"}
    rows = {r["name"]: r for r in comp.rows}
    assert rows["sr3"]["n_terms"] == 11 and rows["sr3"]["error"] is None
    assert rows["sr3"]["orthogonality"] < 1e-10 and rows["sr3"]["f_residual"] < 1e-10
    assert coef_error(rows["stlsq"]["U"], U1) < 1e-6
    assert "OSError" in rows["pysr"]["error"]
    text = comp.to_text()
    assert text.splitlines()[0].split()[:3] == ["backend", "U", "n_terms"]
    assert "pysr:" in text
    short = Comparison([{**rows["sr3"], "U": "x" * 200}]).to_text(max_width=20)
    assert "x" * 17 + "..." in short and "x" * 18 not in short
    fig = plot_pareto(comp.fits, tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["sr3 (training)", "stlsq (training)"]  # no validation points in this problem
    assert len(fig.axes[0].lines) == 4  # each chosen model circled
    assert (tmp_path / "p.svg").exists() is False
    plot_pareto(comp, tmp_path / "p.svg")
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(BackendError, match="unsupported figure format"):
        plot_pareto(comp, tmp_path / "pareto.jpg")
    with pytest.raises(BackendError, match="the Pareto front is empty"):
        plot_pareto([], tmp_path / "p.png")
    with pytest.raises(BackendError, match="listed twice"):
        compare_fits(pb, ["sr3", "sr3"])
    with pytest.raises(BackendError, match="not compared"):
        compare_fits(pb, ["sr3"], operon={"generations": 5})
    with pytest.raises(BackendError, match="unknown backend"):
        compare_fits(pb, ["lasso"])
