"""Hostile and careless inputs: every case ends as a one-line ``error:`` (exit 2) or a correct
result, quickly; never a crash, a hang, a traceback or unreadable output.

The sections follow the nine points of the robustness review: analysis crashes, huge
constants, non-closing libraries, result-file content, unbounded simulations, seeds, the
Python API's file readers and kernel cache, silent wrong numbers, and output files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import zipfile

import numpy as np
import pytest
import sympy as sp

import symqp
from symqp import AnalysisError, DataError, LibraryError, ParseError, ResultFormatError
from symqp.cli import main
from symqp.data import Pairs, load_pairs, pairs_from_csv, sample_pairs, save_pairs
from symqp.library import Library, parse_library
from symqp.result import Result, load_result
from symqp.systems import from_strings, linear_nongradient

x, y = sp.symbols("x y")
TOWER = "((((10**60)**60)**60)**60)**60"


@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """Fail instead of hanging (a guard against endless loops, not a timing assertion)."""

    def boom(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def cli(capsys, *argv):
    with no_hang():
        rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, err, match=""):
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert match in err, err


@pytest.fixture
def pairs_file(tmp_path):
    p = sample_pairs(linear_nongradient(), n_traj=20, n_pairs=5, h=0.01, dt=0.1)
    f = tmp_path / "pairs.npz"
    save_pairs(p, f)
    return f


def result_dict(**changes):
    V = x**4 / 2 - x**2 + y**2 / 2 + sp.Rational(1, 2)
    d = Result.from_expressions(["x", "y"], V, g=[-y, x]).to_dict()
    d.update(changes)
    return d


def write_json(tmp_path, obj, name="r.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


# ------------------------------------------------------------------ 1. crashes in analysis
LOG_U = {"U": "log(x) + y**2", "V": "log(x)/2 + y**2/2", "grad_V": ["1/(2*x)", "y"], "g": ["0", "0"],
         "f": ["-1/(2*x)", "-y"]}


def test_partition_function_refuses_undefined_integrand():
    with no_hang(), pytest.raises(AnalysisError, match=r"U is not defined \(NaN\) at x = -2"):
        symqp.analysis.partition_function(sp.log(x) + y**2, [x, y], eps=0.1, box=[[-2, 2], [-2, 2]])
    # on its domain the same U integrates: int_0^2 x^-10 diverges, int_1^2 x^-10 dx = (1 - 2^-9)/9
    Z = symqp.analysis.partition_function(sp.log(x), [x], eps=0.1, box=[[1, 2]])
    assert Z.value == pytest.approx((1 - 2.0**-9) / 9, rel=1e-9)


def test_analyze_log_potential_reports_instead_of_crashing(tmp_path, capsys):
    r = write_json(tmp_path, result_dict(**LOG_U))
    rc, out, err = cli(capsys, "analyze", r, "--box=-2,2,-2,2", "--eps", "0.1")
    assert rc == 0 and err == "", err
    assert "note: Z at eps=0.1: U is not defined (NaN) at x = -2" in out


def test_report_log_potential_is_one_line_error(tmp_path, capsys):
    r = write_json(tmp_path, result_dict(**LOG_U))
    rc, _, err = cli(capsys, "report", r, "--box=-2,2,-2,2", "--eps", "0.1", "--out", tmp_path / "rep")
    one_line_error(rc, err, "RK4 steps")


# ------------------------------------------------------------------ 2. huge constants
def test_tower_of_powers_refused_by_parser_and_library():
    with no_hang():
        with pytest.raises(ParseError, match="more than 100 digits"):
            symqp._parse.parse_expr_safe(TOWER, ["x"])
        with pytest.raises(ParseError, match="more than 100 digits"):
            parse_library(f"poly(2), {TOWER}*x", ["x", "y"])
        with pytest.raises(ParseError, match="more than 100 digits"):
            from_strings([f"-x*{TOWER}", "-y"], ["x", "y"], box=[[-1, 1], [-1, 1]])
        with pytest.raises(ParseError, match="not finite in double precision"):
            symqp._parse.parse_expr_safe("exp(exp(exp(10)))*x", ["x"])


def test_tower_of_powers_refused_by_commands(tmp_path, capsys, pairs_file):
    rc, _, err = cli(capsys, "simulate", "rotated_gradient", "--param", f"V={TOWER}", "--out",
                     tmp_path / "s.npz")
    one_line_error(rc, err, "more than 100 digits")
    rc, _, err = cli(capsys, "fit", pairs_file, "--library", TOWER, "--out", tmp_path / "r.json")
    one_line_error(rc, err, "more than 100 digits")
    r = write_json(tmp_path, result_dict(U=f"{TOWER}*x**2 + y**2"))
    for cmd in (["analyze", r], ["report", r, "--out", tmp_path / "rep"]):
        rc, _, err = cli(capsys, *cmd)
        one_line_error(rc, err, "more than 100 digits")


# ------------------------------------------------------------------ 3. non-closing libraries
@pytest.mark.parametrize(
    "term, chain",
    [
        ("sqrt(x)", "1/sqrt(x), x**(-3/2)"),
        ("tan(x)", "tan(x)**2, tan(x)**3"),
        ("1/x", "x**(-2)"),
        ("log(x)", "1/x"),
        ("exp(exp(exp(x)))", "exp(x)*exp(exp(x))*exp(exp(exp(x)))"),
        ("exp(x**2)", "x*exp(x**2), x**2*exp(x**2)"),
    ],
)
def test_non_closing_family_is_named(term, chain):
    lib = parse_library(f"poly(2), {term}", ["x", "y"])
    with no_hang(30), pytest.raises(LibraryError) as info:
        lib.closed()
    msg = str(info.value)
    assert f"d/dx of {sp.sympify(term)} keeps producing new terms ({chain}" in msg
    assert "remove" in msg


def test_closing_families_still_close():
    lib = parse_library("poly(2), x**6*exp(2*x)*cos(3*y), sin(x)**6", ["x", "y"])
    with no_hang(60):
        closed = lib.closed()
    assert closed.is_closed()
    # d/dx of x^6 e^{2x} cos 3y reaches x^k e^{2x} cos 3y for k = 0..6, and sin^a cos^b, a + b = 6
    assert sp.exp(2 * x) * sp.cos(3 * y) in closed.terms and sp.cos(x) ** 6 in closed.terms


def test_fit_with_non_closing_library_is_one_line_error(tmp_path, capsys, pairs_file):
    rc, _, err = cli(capsys, "fit", pairs_file, "--library", "poly(2), tan(x)", "--out", tmp_path / "r.json")
    one_line_error(rc, err, "d/dx of tan(x) keeps producing new terms")
    assert not (tmp_path / "r.json").exists()


def test_term_whose_expansion_explodes_is_refused():
    with no_hang(), pytest.raises(LibraryError, match="expands into about"):
        Library(["(x + y + 1)**64 * (x - y + 2)**64"], ["x", "y"])


# ------------------------------------------------------------------ 4. result-file content
BAD_RESULTS = [
    (lambda d: d.update(fit={**_fit(), "timings": [1, 2]}), "key 'timings' must be dict"),
    (lambda d: d.update(fit={**_fit(), "front": [{**_front(), "params": [1]}]}), "key 'params' must be dict or null"),
    (lambda d: d.update(metrics={"a": "[" * 100_000 + "]" * 100_000}), None),  # a long string is fine
    (lambda d: d.update(variables=["numpy", "exp"]), "'numpy' is reserved"),
    (lambda d: d.update(variables=["lambda", "y"]), "'lambda' is a Python keyword"),
    (lambda d: d.update(variables=["\uff58", "y"]), "not in Unicode normal form NFKC"),
    (lambda d: d.update(tau=-1.0), "tau must be positive"),
    (lambda d: d.update(U="x**2 + 1" + "0" * 200), "more than 100 digits"),
]


def _fit():
    return {"backend": "sr3", "selection": "", "V": "x**2", "grad_V": ["2*x", "0"], "g": ["0", "0"],
            "f": ["-2*x", "0"], "coef": None, "front": [], "timings": {}, "diagnostics": {}}


def _front():
    return {"complexity": 1, "train_error": 0.1, "val_error": 0.2, "V": "x**2", "g": ["0", "0"], "params": {}}


@pytest.mark.parametrize("mutate, match", BAD_RESULTS)
def test_result_fields_are_checked(tmp_path, mutate, match):
    d = result_dict()
    mutate(d)
    p = write_json(tmp_path, d)
    with no_hang():
        if match is None:
            assert load_result(p).metrics["a"].startswith("[[")
            return
        with pytest.raises(ResultFormatError, match=match):
            load_result(p)


@pytest.mark.parametrize(
    "text, match",
    [
        ("[" * 100_000 + "]" * 100_000, "nested more than 32 levels"),
        ('{"schema": "symqp.result/1", "tau": ' + "1" * 5000 + "}", "unreadable JSON"),
        ('{"schema": "symqp.result/1", "tau": NaN}', "non-finite number NaN"),
    ],
)
def test_hostile_json_text(tmp_path, capsys, text, match):
    p = write_json(tmp_path, text)
    with no_hang(), pytest.raises(ResultFormatError, match=match):
        load_result(p)
    rc, _, err = cli(capsys, "analyze", p)
    one_line_error(rc, err, match)


def test_analyze_abs_and_overflowing_potentials(tmp_path, capsys):
    r = write_json(tmp_path, result_dict(U="Abs(x) + Abs(y)", V="Abs(x)/2 + Abs(y)/2",
                                         grad_V=["0", "0"], g=["0", "0"], f=["-x", "-y"]))
    rc, out, err = cli(capsys, "analyze", r, "--box=-2,2,-2,2", "--eps", "0.1")
    assert rc == 0 and err == "", err
    # Z = (int_-2^2 exp(-|s|/0.1) ds)^2 = (0.2 (1 - e^-20))^2
    assert f"Z = {(0.2 * (1 - math.exp(-20))) ** 2:.6g}" in out
    assert "note: stationary points: cannot evaluate a derivative numerically" in out
    r = write_json(tmp_path, result_dict(U="exp(exp(exp(x))) + y**2", V="exp(exp(exp(x)))/2 + y**2/2",
                                         grad_V=["0", "y"], g=["0", "0"], f=["-x", "-y"]), "e.json")
    rc, out, err = cli(capsys, "analyze", r, "--box=0,10,-2,2", "--eps", "0.1")
    assert rc == 0 and err == "", err
    # exp(exp(exp(x))) overflows beyond x ~ 1.9; exp(-U/eps) is 0 there, which is right
    import mpmath as mp
    zx = mp.quad(lambda t: mp.exp(-mp.exp(mp.exp(mp.exp(t))) / 0.1), mp.linspace(0, 0.2, 41) + [0.5, 2])
    zy = mp.sqrt(0.1 * mp.pi) * mp.erf(2 / mp.sqrt(0.1))
    assert f"Z = {float(zx * zy):.6g}" in out


def test_reserved_names_refused_where_names_enter(tmp_path):
    a = np.random.default_rng(0).normal(size=(10, 2))
    for names in (("lambda", "y"), ("\uff58", "y"), ("exp", "y"), ("numpy", "y")):
        with pytest.raises(DataError, match="identifiers"):
            Pairs(a, a, 0.1, names=names)
        f = tmp_path / "n.npz"
        np.savez(f, x0=a, xh=a, h=0.1, names=np.array(names))
        with pytest.raises(DataError):
            load_pairs(f)
        with pytest.raises(DataError, match="not a valid variable name"):
            from_strings(["-x", "-y"], list(names), box=[[-1, 1], [-1, 1]])
        with pytest.raises(ResultFormatError):
            Result.from_expressions(list(names), sp.Integer(1))
    csv = tmp_path / "t.csv"
    csv.write_text("traj,t,lambda,y\n" + "".join(f"0,{k / 10},{k},{k}\n" for k in range(6)))
    with pytest.raises(DataError, match="'lambda' is a Python keyword"):
        pairs_from_csv(csv, 0.1)


# ------------------------------------------------------------------ 5. unbounded simulations
@pytest.mark.parametrize(
    "args, match",
    [
        (["--n-traj", "1e9", "--n-pairs", "1e9"], "GiB of memory (limit 8 GiB)"),
        (["--h", "1e-300"], "RK4 steps of h/5 = 2e-301 per trajectory"),
        (["--dt", "1e9"], "RK4 steps of h/5"),
        (["--n-traj", "5e7", "--n-pairs", "1", "--dt", "1"], "trajectory-steps"),
    ],
)
def test_simulate_refuses_unbounded_work(tmp_path, capsys, args, match):
    rc, out, err = cli(capsys, "simulate", "archetypal3d", "--out", tmp_path / "s.npz", *args)
    one_line_error(rc, err, match)
    assert "--force" in err and out == "" and list(tmp_path.iterdir()) == []


def test_simulate_cost_and_force(tmp_path, capsys, monkeypatch):
    from symqp.cli import _simulate

    # App. B: 5000 x 50 pairs, h = 0.01, dt = 0.1: 50 + 5 RK4 steps of h/5 per snapshot,
    # 6 d + 1 = 19 doubles a pair
    assert _simulate.sampling_cost(5000, 50, 0.01, 0.1, 3) == (2750.0, 5000 * 2750.0, 8.0 * 5000 * 50 * 19)
    monkeypatch.setattr(_simulate, "MAX_STEPS", 100)
    argv = ["simulate", "linear_nongradient", "--n-traj", "4", "--n-pairs", "5", "--quiet",
            "--out", tmp_path / "s.npz"]
    rc, _, err = cli(capsys, *argv)
    one_line_error(rc, err, "(limit 1e+02)")
    rc, _, err = cli(capsys, *argv, "--force")
    assert rc == 0 and load_pairs(tmp_path / "s.npz").n == 20


# ------------------------------------------------------------------ 6. seeds
SEED_MSG = "must be an integer in [0, 2**63), got -1"


@pytest.mark.parametrize("command", ["simulate", "fit", "compare", "demo"])
def test_every_command_checks_seed(tmp_path, capsys, pairs_file, command):
    extra = {
        "simulate": ["linear_nongradient", "--out", tmp_path / "s.npz"],
        "fit": [pairs_file, "--library", "poly(2)", "--out", tmp_path / "r.json"],
        "compare": [pairs_file, "--library", "poly(2)", "--out", tmp_path / "cmp"],
        "demo": ["--out", tmp_path / "demo"],
    }[command]
    rc, _, err = cli(capsys, command, *extra, "--seed=-1")
    one_line_error(rc, err, f"--seed {SEED_MSG}")
    assert list(tmp_path.iterdir()) == [pairs_file]


def test_api_entry_points_check_seed(pairs_file):
    p = load_pairs(pairs_file)
    for call in (
        lambda: sample_pairs(linear_nongradient(), n_traj=2, n_pairs=2, h=0.01, dt=0.1, seed=-1),
        lambda: p.split(seed=-1),
        lambda: symqp.fit(p, library="poly(2)", seed=-1, verbose=False),
        lambda: symqp.analysis.partition_function(x**2 + y**2 + x * y, [x, y], eps=0.1,
                                                  box=[[-1, 1], [-1, 1]], method="qmc", seed=-1),
    ):
        with pytest.raises(symqp.ParameterError, match=r"seed must be an integer in \[0, 2\*\*63\)"):
            call()


# ------------------------------------------------------------------ 7. API file readers, kernel cache
def _npy(shape: str, payload: bytes = b"") -> bytes:
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }"
    hdr += " " * (63 - (len(hdr) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode() + payload


def test_load_pairs_hostile_archives(tmp_path):
    h = _npy("()", np.float64(0.1).tobytes())
    cases = {
        "members.npz": ({"x0": b"hello", "xh.txt": b"x", "h": b"1"}, "missing key 'x0'"),
        "huge.npz": ({"x0.npy": _npy("(1000000000000, 3)"), "xh.npy": _npy("(1000000000000, 3)"), "h.npy": h},
                     "claims shape (1000000000000, 3)"),
        "header.npz": ({"x0.npy": b"\x93NUMPY\x01\x00" + (60).to_bytes(2, "little") + b"{'shape': (5, 2((" + b" " * 43
                        + b"\n", "xh.npy": _npy("(5, 2)", bytes(80)), "h.npy": h}, "damaged .npy header"),
    }
    for name, (members, match) in cases.items():
        with zipfile.ZipFile(tmp_path / name, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for k, v in members.items():
                z.writestr(k, v)
        with no_hang(), pytest.raises(DataError, match=re_escape(match)):
            load_pairs(tmp_path / name)
    for bad in (None, 3, tmp_path):
        with pytest.raises(DataError):
            load_pairs(bad)
    good = tmp_path / "ok.npz"
    save_pairs(Pairs(np.ones((50, 3)), 2 * np.ones((50, 3)), 0.5), good)
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a flipped byte in the middle: CRC or header damage
    (tmp_path / "flip.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError):
        load_pairs(tmp_path / "flip.npz")


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_damaged_kernel_file_is_regenerated(tmp_path, monkeypatch):
    pytest.importorskip("numba")
    from symqp.library import _codegen

    monkeypatch.setenv("SYMQP_CACHE_DIR", str(tmp_path))
    lib = Library(["x*y**3", "sin(x)*y", "x**2"], ["x", "y"])
    X = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    want = np.column_stack([X[:, 0] * X[:, 1] ** 3, np.sin(X[:, 0]) * X[:, 1], X[:, 0] ** 2])
    kern = _codegen.get_kernel(lib.terms, lib.variables)
    src = kern.path.read_text()
    for damage in ("def kernel(:\n", src[: len(src) // 2], ""):
        kern.path.write_text(damage)
        _codegen._KERNELS.clear()
        sys.modules.pop(kern.path.stem, None)
        kern = _codegen.get_kernel(lib.terms, lib.variables)
        out = np.empty((50, 3))
        kern(np.ascontiguousarray(X), out)
        np.testing.assert_allclose(out, want, rtol=1e-14)
        assert kern.path.read_text() == src


# ------------------------------------------------------------------ 8. silent wrong numbers
def test_tiny_eps_in_log_space(tmp_path, capsys):
    # U = x^4 - 2x^2 + y^2 + 1: minima U = 0 at (+-1, 0) with Hessians diag(8, 2); Laplace is
    # exact as eps -> 0: Z = 2 * 2 pi eps / sqrt(16) = pi eps
    r = write_json(tmp_path, result_dict())
    rc, out, _ = cli(capsys, "analyze", r, "--box=-2,2,-2,2", "--eps", "1e-300", "1e-20")
    assert rc == 0 and "nan" not in out
    assert f"eps = 1e-300: Z = {math.pi * 1e-300:.6g} [exact]" in out
    assert f"eps = 1e-20: Z = {math.pi * 1e-20:.6g} [exact]" in out
    Z = symqp.analysis.partition_function(x**2 + 1e-300 * 0 + 5, [x], eps=1e-300)
    assert Z.value == 0.0 and Z.log_value == pytest.approx(-5e300 + 0.5 * math.log(math.pi * 1e-300))


def test_huge_boxes(tmp_path, capsys):
    r = write_json(tmp_path, result_dict())
    rc, _, err = cli(capsys, "analyze", r, "--box=-1e308,1e308,-1e308,1e308")
    one_line_error(rc, err, "too wide")
    rc, out, err = cli(capsys, "analyze", r, "--box=-1e300,1e300,-1e300,1e300", "--eps", "0.1")
    assert rc == 0 and out.count("[exact]") == 4  # three stationary points and Z
    s = 1 / math.sqrt(2)
    assert f"({-s:.6g}, {-s:.6g})" in out and f"({s:.6g}, {s:.6g})" in out and "(0, 0)" in out
    # a numerical search over a huge box says it may miss points
    model = symqp.analysis.as_model(x**2 + y**2, [-2 * sp.sin(x), -2 * y], [x, y])
    s = symqp.analysis.summarize(model, eps=[0.1], box=[[-1e7, 1e7], [-1e7, 1e7]])
    assert any("may miss points" in n for n in s["notes"])


# ------------------------------------------------------------------ 9. output files
def test_unwritable_out_is_refused_before_work(tmp_path, capsys, pairs_file):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, out, err = cli(capsys, "fit", pairs_file, "--library", "poly(2)", "--out", blocker / "r.json")
    one_line_error(rc, err, "for --out")
    assert out == ""  # nothing trained
    rc, out, err = cli(capsys, "simulate", "linear_nongradient", "--out", blocker / "s.npz")
    one_line_error(rc, err, "for --out")


def test_missing_out_folder_is_created_and_said(tmp_path, capsys):
    target = tmp_path / "new" / "deeper" / "s.npz"
    rc, _, err = cli(capsys, "simulate", "linear_nongradient", "--n-traj", "3", "--n-pairs", "2",
                     "--out", target)
    assert rc == 0 and target.is_file()
    assert err == f"created folder {target.parent} for --out\n"


def test_stale_temporary_files_are_removed(tmp_path):
    from symqp._io import atomic_write

    dead = 2**22 + 12345
    while True:  # a process id that does not run
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
        except PermissionError:
            dead += 1
    stale = tmp_path / f".r.json.{dead}.abc123.tmp"
    old = tmp_path / ".r.json.xyz.tmp"
    live = tmp_path / f".r.json.{os.getpid()}.def456.tmp"
    other = tmp_path / f".other.json.{dead}.abc.tmp"
    for p in (stale, old, live, other):
        p.write_text("partial")
    os.utime(old, (0, 0))
    with atomic_write(tmp_path / "r.json") as fh:
        fh.write("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "r.json"])


def test_csv_with_byte_order_mark(tmp_path):
    f = tmp_path / "bom.csv"
    f.write_bytes("\ufefftraj,t,x,y\n".encode() + "".join(f"0,{k / 10},{k},{2 * k}\n" for k in range(6)).encode())
    p = pairs_from_csv(f, 0.1)
    assert p.names == ("x", "y") and p.n == 5 and p.xh[0].tolist() == [1.0, 2.0]


def test_fit_checkpoint_flags(tmp_path, capsys, pairs_file, monkeypatch):
    seen = {}

    def fake_fit(data, **kw):
        seen.update(kw)
        return Result.from_expressions(["x1", "x2"], sp.Symbol("x1") ** 2)

    monkeypatch.setattr(symqp, "fit", fake_fit)
    ck = tmp_path / "ck.pt"
    rc, _, err = cli(capsys, "fit", pairs_file, "--library", "poly(2)", "--checkpoint", ck,
                     "--out", tmp_path / "r.json")
    assert rc == 0, err
    assert seen["decomposition_options"] == {"checkpoint_path": str(ck), "checkpoint_every": 1000,
                                             "resume": False}
    rc, _, err = cli(capsys, "fit", pairs_file, "--library", "poly(2)", "--checkpoint", ck,
                     "--checkpoint-every", "7", "--resume", "--out", tmp_path / "r.json")
    one_line_error(rc, err, f"--resume: no checkpoint at {ck}")
    ck.write_bytes(b"x")
    rc, _, err = cli(capsys, "fit", pairs_file, "--library", "poly(2)", "--checkpoint", ck,
                     "--checkpoint-every", "7", "--resume", "--out", tmp_path / "r.json")
    assert rc == 0 and seen["decomposition_options"]["checkpoint_every"] == 7 and seen["decomposition_options"]["resume"]
    for bad, match in ((["--resume"], "need --checkpoint PATH"),
                       (["--checkpoint", ck, "--method", "symbolic"], "applies to the neural route"),
                       (["--checkpoint", ck, "--model", "epr"], "applies to the neural route")):
        rc, _, err = cli(capsys, "fit", pairs_file, "--library", "poly(2)", *bad, "--out", tmp_path / "r.json")
        one_line_error(rc, err, match)


@pytest.mark.slow
def test_fit_checkpoint_and_resume_for_real(tmp_path, capsys, pairs_file):
    ck = tmp_path / "ck.pt"
    argv = ["fit", pairs_file, "--library", "poly(2)", "--method", "neural", "--steps", "20",
            "--checkpoint", ck, "--checkpoint-every", "10"]
    rc, _, err = cli(capsys, *argv, "--out", tmp_path / "a.json")
    assert rc == 0 and ck.is_file(), err
    rc, _, err = cli(capsys, *argv, "--resume", "--out", tmp_path / "b.json")
    assert rc == 0, err
    assert load_result(tmp_path / "a.json").U == load_result(tmp_path / "b.json").U
