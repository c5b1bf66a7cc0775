"""The ``symqp fit`` command-line contract, ``symqp compare`` and ``symqp demo``."""

import json

import numpy as np
import pytest
import sympy as sp

import symqp
from symqp.cli import main
from symqp.result import Result, coefficient_errors
from symqp.identify import _neural as neural_route

from test_fit import G1, U1, SymbolicDecomposition, make_pairs

x, y, z = sp.symbols("x y z")


@pytest.fixture(scope="module")
def exact_dec():
    return SymbolicDecomposition(U1 / 2, G1, (x, y, z))


@pytest.fixture
def data_file(tmp_path, exact_dec):
    pairs = make_pairs(exact_dec, [[-1.8, 1.8], [-1.2, 1.2], [-1.2, 1.2]], 2000, 0.01, "xyz")
    path = tmp_path / "ex1.npz"
    np.savez(path, x0=pairs.x0, xh=pairs.xh, h=pairs.h, names=np.array(["x", "y", "z"]), traj=pairs.traj)
    return path


@pytest.fixture
def stand_in(monkeypatch, exact_dec):
    """Replace network training by the exact decomposition; record the options passed."""
    calls = []

    def train(train, val, settings):
        calls.append(
            {"val": val, "options": settings.decomposition_options, "seed": settings.seed,
             "device": settings.device, "steps": settings.steps, "verbose": settings.verbose}
        )  # fmt: skip
        return exact_dec

    monkeypatch.setattr(neural_route, "_decomposition", train)
    return calls


def test_fit_contract(data_file, tmp_path, stand_in, capsys):
    out = tmp_path / "res.json"
    rc = main(["fit", str(data_file), "--library", "poly(4)", "--out", str(out), "--seed", "3", "--steps", "50"])
    assert rc == 0
    (call,) = stand_in
    # the held-out trajectories of fit() are passed on as the network's validation data
    assert call.pop("val").n > 0
    assert call == {"options": None, "seed": 3, "device": "cpu", "steps": 50, "verbose": True}
    data = json.loads(out.read_text())
    assert data["schema"] == "symqp.result/1"
    assert data["variables"] == ["x", "y", "z"]
    for key in ("V", "grad_V", "g", "f", "backend", "library", "metrics", "timings"):
        assert key in data
    assert all(isinstance(data[k], list) and len(data[k]) == 3 for k in ("grad_V", "g", "f"))
    U = sp.sympify(data["U"], locals={n: sp.Symbol(n) for n in data["variables"]})
    ce = coefficient_errors(U, U1, (x, y, z))
    assert ce.exact_support and ce.max_abs < 1e-8
    assert data["backend"] == "sr3" and data["library"] == "poly(4)"
    assert data["metrics"]["tau"] > 0
    printed = capsys.readouterr().out
    assert "U(x, y, z) =" in printed and str(out) in printed
    # the file is what Result.load reads back (sympify may round a decimal twice: 1 ulp)
    assert coefficient_errors(Result.load(out).U, U, (x, y, z)).max_abs <= 1e-15


def test_default_out_path_and_tau(data_file, stand_in):
    rc = main(["fit", str(data_file), "--library", "poly(4)", "--tau", "0.8", "--g-library", "poly(3)"])
    assert rc == 0
    out = data_file.with_name("ex1.result.json")
    data = json.loads(out.read_text())
    assert data["tau"] == 0.8 and data["metrics"]["tau"] == 0.8
    assert data["library"] == "poly(4); g: poly(3)"


@pytest.mark.parametrize(
    "argv, match",
    [
        (["fit", "missing.npz", "--library", "poly(4)"], "data file not found"),
        (["fit", "{data}", "--library", "poly("], "error: "),
        (["fit", "{data}", "--library", "poly(4)", "--backend", "nope"], "nope"),
        (["fit", "{data}", "--library", "poly(4)", "--model", "epr", "--tau", "1"], "apply to --model orthogonal"),
        (["fit", "{data}", "--library", "poly(4)", "--out", "{dir}"], "--out is a folder"),
        (["fit", "{bad}", "--library", "poly(4)"], "error: "),
    ],
)
def test_bad_inputs_exit_2_with_one_line(data_file, tmp_path, stand_in, capsys, argv, match):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x0=np.zeros((5, 2)), h=0.1)  # no xh
    argv = [a.format(data=data_file, dir=tmp_path, bad=bad) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert match in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--steps", "-3"], ["--device", "tpu"], ["--seed", "x"], ["--tau", "nan"]])
def test_bad_option_values_are_usage_errors(data_file, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(data_file), "--library", "poly(4)", *argv])
    assert exc.value.code == 2


def test_third_party_errors_are_translated(data_file, monkeypatch, capsys):
    def boom(*a, **k):
        raise RuntimeError("CUDA error: out of memory\nsecond line")

    monkeypatch.setattr(symqp, "fit", boom)
    rc = main(["fit", str(data_file), "--library", "poly(4)"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == "error: fit failed: RuntimeError: CUDA error: out of memory\n"


@pytest.mark.parametrize("model, fn", [("hamiltonian", "fit_hamiltonian"), ("epr", "fit_epr")])
def test_model_dispatch(data_file, tmp_path, monkeypatch, model, fn):
    import symqp.decompose

    seen = {}

    def fake(path, **kw):
        seen.update(path=path, **kw)
        return Result.from_expressions(["x", "y", "z"], x**2 / 2 + y**2 / 2 + z**2 / 2, model=model, backend="sr3")

    monkeypatch.setattr(symqp.identify, fn, fake, raising=False)
    out = tmp_path / "m.json"
    rc = main(["fit", str(data_file), "--library", "poly(2)", "--model", model, "--out", str(out), "--steps", "7"])
    assert rc == 0
    # without --backend these models regress the data directly (stlsq, no network)
    assert seen == {"path": str(data_file), "library": "poly(2)", "backend": "stlsq", "seed": 0, "steps": 7,
                    "device": "cpu"}
    assert json.loads(out.read_text())["model"] == model
