"""Output hygiene: progress on stderr only, plain lines off a terminal, --quiet, --version, cache dir."""

from __future__ import annotations

import doctest
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symqp
from symqp import _progress
from symqp._progress import ProgressReporter, is_quiet, note, set_quiet
from symqp.cli import build_parser, main
from symqp.library._codegen import cache_dir

SYMQP = [sys.executable, "-m", "symqp.cli"]


def test_doctests():
    res = doctest.testmod(_progress, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(_progress.time, "monotonic", c)
    return c


def test_plain_lines_every_ten_percent(clock, capsys):
    buf = io.StringIO()
    p = ProgressReporter("decompose", 1000, stream=buf)
    for k in range(1, 1001):
        clock.t += 0.001
        p.update(k, f"loss {1.0 / k:.1e}")
    p.close()
    lines = buf.getvalue().splitlines()
    assert [ln.split()[1] for ln in lines] == [f"{100 * j}/1000" for j in range(1, 11)]
    assert lines[0].startswith("decompose: 100/1000 (10%) elapsed 0 s") and lines[0].endswith("loss 1.0e-02")
    assert "\r" not in buf.getvalue() and "\x1b" not in buf.getvalue()  # no control characters in a log
    assert capsys.readouterr().out == ""


def test_plain_line_every_ten_seconds_when_progress_is_slow(clock):
    buf = io.StringIO()
    p = ProgressReporter("simulate", 10_000, stream=buf)
    for k in range(1, 401):  # 4 % of the work over 40 s
        clock.t = k / 10
        p.update(k)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4  # at 10, 20, 30 and 40 s
    assert lines[0].startswith("simulate: 100/10000 (1%) elapsed 10 s, about 990 s left")
    p.close()
    assert len(buf.getvalue().splitlines()) == 4  # nothing moved since the last line


def test_quiet_and_disabled_print_nothing(clock, monkeypatch):
    buf = io.StringIO()
    set_quiet(True)
    try:
        p = ProgressReporter("x", 10, stream=buf)
        for k in range(11):
            p.update(k)
        p.close()
        note("hello", stream=buf)
    finally:
        set_quiet(False)
    p = ProgressReporter("x", 10, stream=buf, enabled=False)
    p.update(10)
    p.close()
    assert buf.getvalue() == ""
    monkeypatch.setenv("SYMQP_QUIET", "1")
    assert is_quiet()


def test_terminal_gets_a_live_bar_on_stderr_not_stdout(capsys):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    p = ProgressReporter("decompose", 5, stream=tty)
    for k in range(1, 6):
        p.update(k)
    p.close()
    assert "decompose" in tty.getvalue() and "5/5" in tty.getvalue()
    assert capsys.readouterr().out == ""


def test_decomposition_progress_goes_through_the_reporter():
    pytest.importorskip("torch")
    from symqp.decompose._neural_train import Progress

    p = Progress(True, 100, 0)
    assert isinstance(p._p, ProgressReporter) and p._p.label == "decompose"


# ------------------------------------------------------------------ command line
def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"symqp {symqp.__version__}"


def test_every_command_takes_quiet():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert len(sub.choices) >= 7
    for name, p in sub.choices.items():
        assert any("--quiet" in a.option_strings for a in p._actions), name


def run_cli(args, cwd, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([*SYMQP, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_piped_simulate_keeps_stdout_clean_and_reports_plain_progress(tmp_path):
    # a run big enough for the progress display (5.5e6 >= 2e6 trajectory-steps)
    args = ["simulate", "archetypal3d", "--out", str(tmp_path / "d.npz"), "--n-traj", "2000", "--n-pairs", "50",
            "--h", "0.01", "--dt", "0.1"]
    r = run_cli(args, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"wrote {tmp_path / 'd.npz'}"
    assert "simulating" not in r.stdout and "\x1b" not in r.stdout and "\r" not in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("simulating archetypal3d:")]
    assert lines and lines[-1].startswith("simulating archetypal3d: 50/50 (100%)")
    assert "\x1b" not in r.stderr and "\r" not in r.stderr
    q = run_cli([*args, "--quiet"], tmp_path)
    assert q.returncode == 0 and q.stderr == "" and q.stdout == ""


def test_quiet_before_the_command_silences_fit_logs(tmp_path):
    s = symqp.systems.linear_nongradient()
    symqp.data.save_pairs(symqp.data.sample_pairs(s, n_traj=100, n_pairs=10, h=0.01, dt=0.05, seed=0),
                          tmp_path / "d.npz")
    args = ["fit", str(tmp_path / "d.npz"), "--library", "poly(2)", "--method", "symbolic"]
    loud = run_cli(args, tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert "identifying f" in loud.stderr and "identifying f" not in loud.stdout
    assert loud.stdout.startswith("U(x, y) = ")
    quiet = run_cli(["-q", *args], tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
    saved = symqp.load_result(tmp_path / "d.result.json")
    assert saved.metrics["command"] == f"symqp -q fit {tmp_path / 'd.npz'} --library 'poly(2)' --method symbolic"
    same = [ln for ln in quiet.stdout.splitlines() if "timings:" not in ln]
    assert same == [ln for ln in loud.stdout.splitlines() if "timings:" not in ln]


# ------------------------------------------------------------------ cache folder
def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMQP_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SYMQP_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "symqp"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == Path(tmp_path / "home" / ".cache" / "symqp")


def test_kernels_land_in_the_xdg_cache(monkeypatch, tmp_path):
    from symqp.library import poly

    monkeypatch.delenv("SYMQP_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    # variable names no other test uses: the kernel is new to this process, so it is written
    # to the cache folder rather than found in memory (tests share worker processes)
    lib = poly(["xdg_u", "xdg_v"], 2)
    X = np.random.default_rng(0).uniform(-1, 1, (5000, 2))
    np.testing.assert_allclose(lib.evaluate(X, backend="numba")[:, 3], X[:, 0] ** 2)
    assert list((tmp_path / "symqp").glob("symqp_k_*.py"))
