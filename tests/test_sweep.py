"""Sweeps: specifications, the table, and a 2×2 sweep on joblib and on a 2-worker Dask
LocalCluster, each broken off midway and resumed (one row per point, none twice)."""

from __future__ import annotations

import contextlib
import csv
import doctest
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from symqp import ParameterError
from symqp.sweep import Table, expand, load_spec, parse_spec, read_table, run_sweep

# four tiny points (two system parameters × two seeds) of the linear non-gradient system
# f = (-2x - a y, 2a x - y), whose exact U = 2x² + y² does not depend on a
SPEC = {
    "name": "tiny",
    "base": {"system": "linear_nongradient", "n_traj": 40, "n_pairs": 20, "library": "poly(2)", "method": "symbolic"},
    "grid": {"params.a": [1.0, 2.0], "seed": [0, 1]},
    "analysis": {"eps": [0.1], "exit_time": False},
}


def _rows(out):
    with open(os.path.join(out, "table.csv"), newline="") as fh:
        return list(csv.DictReader(fh))


def _check_table(out):
    """Four rows, one per point, each with its result file and the exact quasipotential."""
    rows = _rows(out)
    ids = [r["point_id"] for r in rows]
    assert sorted(ids) == sorted(p.id for p in parse_spec(SPEC).points)
    assert len(set(ids)) == len(ids) == 4
    for r in rows:
        assert os.path.isfile(os.path.join(out, "results", r["point_id"] + ".json"))
        assert r["status"] == "ok" and r["exact_support"] == "true"
        assert float(r["max_coef_err"]) < 1e-6
        # U = 2x² + y² has one stable point and no barrier; Z_0.1 = 0.1π / √2
        assert r["n_stable"] == "1" and r["dU"] == "" and r["n_barriers"] == "0"
        assert float(r["Z_eps_0.1"]) == pytest.approx(0.1 * 3.141592653589793 / 2**0.5, rel=1e-5)
    return {r["point_id"]: r for r in rows}


@pytest.mark.parametrize("module", ["_spec", "_table", "_plot"])
def test_doctests(module):
    mod = importlib.import_module(f"symqp.sweep.{module}")
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


def test_spec_grid_points_and_ids():
    pts = expand(SPEC)
    assert [(p.settings["params"]["a"], p.settings["seed"]) for p in pts] == [(1.0, 0), (1.0, 1), (2.0, 0), (2.0, 1)]
    assert len({p.id for p in pts}) == 4 and [p.id for p in expand(SPEC)] == [p.id for p in pts]
    listed = expand({"base": {"library": "poly(2)"}, "points": [{"system": "maier_stein"}, {"system": "graphene"}],
                     "grid": {"seed": [0, 1]}})  # fmt: skip
    assert [(p.settings["system"], p.settings["seed"]) for p in listed] == [
        ("maier_stein", 0), ("maier_stein", 1), ("graphene", 0), ("graphene", 1)]
    assert parse_spec(SPEC).axes == ("params.a", "seed")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"base": {"system": "x", "lbrary": "poly(2)"}}, "unknown setting 'lbrary'"),
        ({"base": {"system": "x"}, "grid": {"seed": []}}, "grid.seed must be a non-empty list"),
        ({"base": {"system": "x"}, "grid": {"n_traj": [10, 1.5]}}, "n_traj must be trajectories simulated"),
        ({"base": {"library": "poly(2)"}}, "needs a system or a data file"),
        ({"base": {"system": "x"}, "analysis": {"eps": [0]}}, "analysis.eps must be positive"),
        ({"base": {"system": "x"}, "analysis": {"barrier": True}}, "no setting 'barrier'"),
        ({"base": {"system": "x"}, "grids": {}}, "no section 'grids'"),
        ({"base": {"system": "x"}, "points": [{}, {}]}, "repeats an earlier point"),
    ],
)
def test_spec_errors_name_the_problem(spec, message):
    with pytest.raises(ParameterError, match=message):
        parse_spec(spec)


def test_spec_files_toml_yaml(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('[base]\nsystem = "maier_stein"\ndata_seed = 3\n[grid]\n"params.beta" = [1, 2]\n')
    yaml = tmp_path / "s.yaml"
    yaml.write_text("base:\n  system: maier_stein\n  data_seed: 3\ngrid:\n  params.beta: [1, 2]\n")
    assert [p.id for p in load_spec(toml).points] == [p.id for p in load_spec(yaml).points]
    bad = tmp_path / "bad.toml"
    bad.write_text("[base\n")
    with pytest.raises(Exception, match="not valid TOML"):
        load_spec(bad)


def test_table_cuts_a_torn_row_and_widens(tmp_path):
    path = tmp_path / "table.csv"
    t = Table(path, ["seed", "dU"])
    t.append({"point_id": "p1", "seed": 0, "dU": 0.5})
    with open(path, "a") as fh:
        fh.write("p2,1,0.")  # a write cut short by a crash
    t2 = Table(path, ["seed", "dU", "Z"])
    assert t2.done == {"p1"} and t2.columns == ["point_id", "seed", "dU", "Z"]
    t2.append({"point_id": "p2", "seed": 1, "dU": 0.25, "Z": 2.0})
    df = read_table(tmp_path)
    assert df["point_id"].tolist() == ["p1", "p2"] and df["dU"].tolist() == [0.5, 0.25]


_CRASH = textwrap.dedent(
    """
    import json, os, signal, sys
    from symqp.sweep import run_sweep
    spec, out = json.loads(sys.argv[1]), sys.argv[2]

    def crash(row):  # the machine dies right after the first row is written
        os.kill(os.getpid(), signal.SIGKILL)

    run_sweep(spec, out, jobs=2, threads=1, progress=False, on_row=crash)
    """
)


def test_joblib_sweep_killed_midway_resumes(tmp_path):
    out = str(tmp_path / "sw")
    log = tmp_path / "crash.log"
    with open(log, "w") as fh:  # a file, not a pipe: the killed driver's orphaned workers keep it open
        proc = subprocess.Popen([sys.executable, "-c", _CRASH, json.dumps(SPEC), out], stdout=fh, stderr=fh,
                                start_new_session=True)  # fmt: skip
        try:
            rc = proc.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the workers the crash left behind
    assert rc == -signal.SIGKILL, log.read_text()
    before = _rows(out)
    assert len(before) == 1
    run = run_sweep(SPEC, out, jobs=2, threads=1, progress=False)
    assert (run.skipped, run.ok, run.failed) == (1, 3, 0) and run.executor.startswith("joblib")
    rows = _check_table(out)
    assert rows[before[0]["point_id"]] == before[0]  # the finished point was not run again
    again = run_sweep(SPEC, out, jobs=2, progress=False)
    assert (again.skipped, again.ok) == (4, 0) and len(_rows(out)) == 4


class _Interrupt(Exception):
    pass


def test_dask_local_cluster_sweep_interrupted_resumes(tmp_path):
    pytest.importorskip("distributed")
    out = str(tmp_path / "sw")

    def stop(row):
        raise _Interrupt

    with pytest.raises(_Interrupt):
        run_sweep(SPEC, out, jobs=2, local_cluster=True, threads=1, progress=False, on_row=stop)
    assert len(_rows(out)) == 1
    run = run_sweep(SPEC, out, jobs=2, local_cluster=True, threads=1, progress=False)
    assert (run.skipped, run.ok, run.failed) == (1, 3, 0) and run.executor.startswith("dask LocalCluster")
    rows = _check_table(out)
    assert len({r["pid"] for r in rows.values()}) >= 2  # ran in worker processes, not here
    assert str(os.getpid()) not in {r["pid"] for r in rows.values()}


def test_failed_point_is_recorded_and_retried(tmp_path):
    spec = {"base": {"system": "linear_nongradient", "n_traj": 40, "n_pairs": 20, "method": "symbolic"},
            "grid": {"library": ["poly(2)", "poly(2) + nosuch(x)"]}, "analysis": {"partition": False,
            "barriers": False, "exit_time": False}}  # fmt: skip
    out = tmp_path / "sw"
    run = run_sweep(spec, out, progress=False)
    assert (run.ok, run.failed) == (1, 1) and "nosuch" in run.failures[0][1]
    assert len(_rows(out)) == 1
    assert json.loads((out / "failures.jsonl").read_text().splitlines()[0])["point_id"] == run.failures[0][0]
    again = run_sweep(spec, out, progress=False)
    assert (again.skipped, again.ok, again.failed) == (1, 0, 1)


def test_cli_sweep_and_sweep_plot(tmp_path):
    from symqp.cli import main

    spec = tmp_path / "s.toml"
    spec.write_text(textwrap.dedent("""
        [base]
        system = "linear_nongradient"
        n_traj = 40
        n_pairs = 20
        library = "poly(2)"
        method = "symbolic"
        [grid]
        "params.a" = [1.0, 2.0]
        [analysis]
        exit_time = false
        """))
    assert main(["sweep", str(spec), "--quiet"]) == 0
    folder = tmp_path / "s.sweep"
    assert len(_rows(folder)) == 2
    assert main(["sweep-plot", str(folder), "--x", "params.a", "--y", "Z_eps_0.1"]) == 0
    png = folder / "Z_eps_0.1-vs-params.a.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["sweep-plot", str(folder), "--x", "params.a", "--y", "nosuch"]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[base]\nsystem = "linear_nongradient"\nlbrary = "poly(2)"\n')
    assert main(["sweep", str(bad)]) == 2
