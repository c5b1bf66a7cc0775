"""``benchmarks/run.py``: discovery, merging into one flat JSON object, failures reported."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_test_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def runner(tmp_path, monkeypatch):
    mod = _load("run")
    (tmp_path / "good.py").write_text("def run(quick=False):\n    return {'good.a_s': 1.5, 'good.n': 3}\n")
    (tmp_path / "quickish.py").write_text(
        "def run(quick=False):\n    return {'quickish.quick': float(quick)}\n"
    )
    (tmp_path / "bad.py").write_text("def run(quick=False):\n    raise RuntimeError('boom')\n")
    (tmp_path / "notnum.py").write_text("def run(quick=False):\n    return {'notnum.x': 'fast'}\n")
    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    (tmp_path / "_private.py").write_text("raise SystemExit('must not be imported')\n")
    monkeypatch.setattr(mod, "HERE", tmp_path)
    yield mod
    for key in [k for k in sys.modules if k.startswith("symqp_benchmarks.")]:
        del sys.modules[key]


def test_runner_merges_figures_and_reports_failures(runner, tmp_path, capsys):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"other.kept": 7.0, "good.a_s": 99.0}))
    rc = runner.main(["--out", str(out)])
    assert rc == 1  # bad and notnum failed, the others still ran
    _, err = capsys.readouterr()
    assert "FAILED bad: RuntimeError: boom" in err and "FAILED notnum" in err
    data = json.loads(out.read_text())
    assert data["good.a_s"] == 1.5 and data["good.n"] == 3.0 and data["quickish.quick"] == 0.0
    assert data["other.kept"] == 7.0
    assert not any(k.startswith(("bad.", "notnum.", "helper.")) for k in data)
    for key in ("machine.cpu_count", "machine.python", "machine.numpy", "machine.torch", "machine.date"):
        assert key in data
    assert list(data) == sorted(data)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["results.json"]  # atomic: no temp left


def test_runner_only_and_quick(runner, tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"good.a_s": 99.0, "zzz.keep": 1.0}))
    assert runner.main(["--only", "quickish", "--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["quickish.quick"] == 1.0 and data["good.a_s"] == 99.0 and data["zzz.keep"] == 1.0
    assert runner.main(["--only", "nosuch"]) == 2
    assert "unknown benchmark 'nosuch'" in capsys.readouterr().err
    # discovery skips run.py itself and private files
    assert set(runner.discover()) == {"good", "quickish", "bad", "notnum", "helper"}


def test_real_benchmarks_are_discovered():
    mod = _load("run")
    names = set(mod.discover())
    assert "sampling" in names and "run" not in names


def test_sampling_benchmark_quick():
    figures = _load("sampling").run(quick=True)
    assert set(figures) >= {"sampling.wall_s", "sampling.speedup_vs_solve_ivp"}
    assert all(isinstance(v, float) and v > 0 for v in figures.values())
    # the vectorised sampler and the tight solve_ivp reference compute the same data
    assert figures["sampling.max_abs_diff_vs_solve_ivp"] < 1e-7
    assert figures["sampling.max_abs_diff_vs_solve_ivp_stacked"] < 1e-6
