"""``symqp simulate`` and ``symqp doctor``: in-process and through the installed command."""

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import symqp._optional as optional
from symqp.cli import main
from symqp.data import load_pairs, sample_pairs
from symqp.systems import get_system, maier_stein

SYMQP = Path(sys.executable).parent / "symqp"


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------ simulate
def test_simulate_writes_the_same_pairs_as_the_api(tmp_path, capsys):
    f = tmp_path / "lin.npz"
    rc, out, err = _run(
        capsys, "simulate", "linear_nongradient", "--out", str(f), "--n-traj", "7", "--n-pairs", "3",
        "--seed", "4", "--param", "a=2",
    )
    assert rc == 0, err
    p = load_pairs(f)
    ref = sample_pairs(get_system("linear_nongradient", a=2), n_traj=7, n_pairs=3, h=0.01, dt=0.1, seed=4)
    np.testing.assert_array_equal(p.x0, ref.x0)
    np.testing.assert_array_equal(p.xh, ref.xh)
    np.testing.assert_array_equal(p.traj, ref.traj)
    assert p.names == ("x", "y") and p.h == 0.01
    assert "sampled 21 pairs (7 trajectories x 3 snapshots)" in out
    assert "dx/dt = -2*x - 2*y" in out and f"wrote {f}" in out


def test_simulate_defaults_params_noise_and_quiet(tmp_path, capsys):
    # App. B defaults: graphene has M = 100 snapshots, h = 10
    g = tmp_path / "g.npz"
    rc, out, _ = _run(capsys, "simulate", "graphene", "--out", str(g), "--n-traj", "3", "--quiet")
    assert rc == 0 and out == ""
    pg = load_pairs(g)
    assert (pg.n, pg.h, pg.names) == (300, 10.0, ("P", "Q"))
    # archetypal3d: M = 50, h = 0.01
    a = tmp_path / "a.npz"
    assert main(["simulate", "archetypal3d", "--out", str(a), "--n-traj", "2", "--quiet"]) == 0
    pa = load_pairs(a)
    assert (pa.n, pa.h, pa.d) == (100, 0.01, 3)
    # parameters and noise reach the system and the sampler
    m = tmp_path / "m.npz"
    argv = ["simulate", "maier_stein", "--out", str(m), "--n-traj", "5", "--n-pairs", "4",
            "--h", "0.02", "--dt", "0.05", "--param", "alpha=2", "--param", "beta=0.5",
            "--noise", "0.01", "--seed", "9", "--quiet"]
    assert main(argv) == 0
    ref = sample_pairs(maier_stein(2, 0.5), n_traj=5, n_pairs=4, h=0.02, dt=0.05, seed=9, noise=0.01)
    np.testing.assert_array_equal(load_pairs(m).x0, ref.x0)
    # a formula parameter for the rotated family is parsed safely
    r = tmp_path / "r.npz"
    rc, out, err = _run(capsys, "simulate", "rotated_gradient", "--out", str(r), "--param", "V=x**2 + y**4",
                        "--param", "A=3", "--n-traj", "4", "--n-pairs", "2")
    assert rc == 0, err
    assert "U = 2*x**2 + 2*y**4" in out


def test_simulate_progress_bar(tmp_path, capsys, monkeypatch):
    import symqp.cli._simulate as sim

    monkeypatch.setattr(sim, "_PROGRESS_WORK", 0)  # show the bar even for a tiny run
    f = tmp_path / "p.npz"
    rc, out, err = _run(capsys, "simulate", "double_well", "--out", str(f), "--n-traj", "4", "--n-pairs", "5")
    assert rc == 0, err
    assert load_pairs(f).n == 20 and "wrote" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["simulate", "lorenz"], "unknown system 'lorenz'"),
        (["simulate", "maier_stein", "--param", "gamma=1"], "no parameter 'gamma'"),
        (["simulate", "maier_stein", "--param", "alpha=abc"], "must be a number"),
        (["simulate", "maier_stein", "--param", "alpha=1", "--param", "alpha=2"], "more than once"),
        (["simulate", "maier_stein", "--h", "-1"], "h must be a positive"),
        (["simulate", "maier_stein", "--dt", "0"], "dt must be a positive"),
        (["simulate", "maier_stein", "--n-traj", "0"], "n_traj must be a positive integer"),
        (["simulate", "maier_stein", "--noise", "-0.5"], "noise must be a non-negative"),
        (["simulate", "rotated_gradient", "--param", "V=__import__('os')"], ""),
    ],
)
def test_simulate_error_path(tmp_path, capsys, argv, match):
    f = tmp_path / "out.npz"
    rc, out, err = _run(capsys, *argv, "--out", str(f))
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert match in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_simulate_refuses_bad_output_paths(tmp_path, capsys):
    rc, _, err = _run(capsys, "simulate", "maier_stein", "--out", str(tmp_path / "x.txt"))
    assert rc == 2 and err.startswith("error: --out must name a .npz file")
    folder = tmp_path / "dir.npz"
    folder.mkdir()
    rc, _, err = _run(capsys, "simulate", "maier_stein", "--n-traj", "2", "--out", str(folder))
    assert rc == 2 and "it is a folder" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as info:  # argparse usage errors also exit with 2
        main(["simulate", "maier_stein", "--out", "x.npz", "--param", "alpha"])
    assert info.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_installed_command(tmp_path):
    f = tmp_path / "cli.npz"
    ok = subprocess.run(
        [str(SYMQP), "simulate", "harmonic_oscillator", "--out", str(f), "--n-traj", "3", "--n-pairs", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "sampled 6 pairs" in ok.stdout
    assert load_pairs(f).names == ("q", "p")
    bad = subprocess.run(
        [str(SYMQP), "simulate", "nope", "--out", str(tmp_path / "n.npz")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: unknown system 'nope'") and bad.stderr.count("\n") == 1


# ------------------------------------------------------------------ doctor
def _fake_import(monkeypatch, modules, errors):
    """Make symqp._optional import fake modules or fail with the given exceptions."""

    def import_module(name):
        if name in errors:
            raise errors[name]
        if name in modules:
            return modules[name]
        raise AssertionError(f"unexpected import of {name}")

    monkeypatch.setattr(optional, "importlib", types.SimpleNamespace(import_module=import_module))


def test_doctor_says_why_and_what_to_install(capsys, monkeypatch):
    mod = types.SimpleNamespace
    _fake_import(
        monkeypatch,
        {"numba": mod(__version__="0.60.0"), "pysindy": mod(__version__="2.1.0"), "pyoperon": mod()},
        {
            "torch": ModuleNotFoundError("No module named 'torch'"),
            "cvxpy": ImportError("libcvx.so: cannot open shared object file\nsecond line"),
            "pysr": OSError("Julia could not be downloaded\nlong julia traceback"),
        },
    )
    rc, out, _ = _run(capsys, "doctor")
    assert rc == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    assert set(lines) == {"numba", "torch", "pysindy", "pyoperon", "pysr"}
    assert "available" in lines["numba"] and "0.60.0" in lines["numba"]
    assert "missing" in lines["torch"]
    assert "No module named 'torch'" in lines["torch"] and "pip install 'symqp[torch]'" in lines["torch"]
    assert "missing" in lines["pysindy"] and "ConstrainedSR3" in lines["pysindy"]
    assert "libcvx.so: cannot open shared object file" in lines["pysindy"]
    assert lines["pysindy"].count("pip install 'symqp[pysindy]'") == 1
    assert "available" in lines["pyoperon"]
    assert "needs Julia" in lines["pysr"] and "OSError: Julia could not be downloaded" in lines["pysr"]
    assert "pip install 'symqp[pysr]'" in lines["pysr"]
    assert "second line" not in out and "long julia traceback" not in out
    assert out.rstrip().endswith("2 of 5 optional components available; missing: torch, pysindy, pysr")


def test_doctor_reports_pysindy_without_constrained_sr3(capsys, monkeypatch):
    mod = types.SimpleNamespace
    _fake_import(
        monkeypatch,
        {"numba": mod(), "torch": mod(__version__="2.13.0", cuda=mod(is_available=lambda: False)),
         "pysindy": mod(__version__="2.1.0"), "cvxpy": mod(__version__="1.5"), "pyoperon": mod(),
         "pysr": mod(__version__="1.0")},
        {},
    )
    rc, out, _ = _run(capsys, "doctor")
    assert rc == 0
    assert "pysindy has no ConstrainedSR3; install it with: pip install 'symqp[pysindy]'" in out
    assert "CUDA not available" in out
    assert "4 of 5 optional components available; missing: pysindy" in out


@pytest.mark.slow
def test_doctor_real_environment():
    res = subprocess.run([str(SYMQP), "doctor"], capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    for name in ("numba", "torch", "pysindy", "pyoperon", "pysr"):
        assert f"  {name} " in res.stdout
    assert "optional components available" in res.stdout
