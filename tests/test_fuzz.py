"""Property-based fuzzing of everything that reads user input: the formula parser, library
specs (and their closure), result JSON and the ``.npz`` pairs reader.

Each property says: the reader returns a valid object or raises the project's one error
type for that input, within a per-example deadline; never another exception, never a hang.
Examples are derandomised so that CI is repeatable; ``SYMQP_FUZZ_EXAMPLES=2000`` (say) runs
a longer campaign with fresh random examples.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symqp import DataError, LibraryError, ParseError, ResultFormatError
from symqp._parse import parse_expr_safe
from symqp.data import Pairs, load_pairs
from symqp.library import Library, parse_library
from symqp.result import Result, expr_to_str, load_result

_SCALE = int(os.environ.get("SYMQP_FUZZ_EXAMPLES", "0"))


def fuzz(examples: int, deadline_ms: int = 2000):
    """Per-example deadline; derandomised unless a longer campaign is asked for."""
    return settings(
        max_examples=_SCALE or examples,
        deadline=deadline_ms,
        derandomize=not _SCALE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# ------------------------------------------------------------------ formulas
NUMBERS = st.one_of(
    st.integers(0, 10**6).map(str),
    st.integers(0, 10**120).map(str),
    st.floats(0, 1e308, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["0", "1", "2", "10", "60", "64", "65", "1e308", "1e-320", "0.5", "pi", "E", "0x1f"]),
)
ATOMS = st.one_of(NUMBERS, st.sampled_from(["x", "y", "x", "y", "z", "exp", "__import__", "lambda"]))
FUNCS = st.sampled_from(["sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "asin", "abs", "Abs",
                         "square", "cbrt", "cosh", "open", "eval"])


def _combine(children):
    return st.one_of(
        st.tuples(children, st.sampled_from([" + ", " - ", "*", "/", "**", "^", " % ", "//"]), children)
        .map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(FUNCS, children).map(lambda t: f"{t[0]}({t[1]})"),
        children.map(lambda c: f"-{c}"),
        st.tuples(children, children).map(lambda t: f"atan({t[0]}, {t[1]})"),
    )


FORMULAS = st.recursive(ATOMS, _combine, max_leaves=24)
RAW_TEXT = st.text(alphabet="xy0123456789+-*/()., eE^_sinctaoqrpl[]{}'\"\\\n:;=<>!@#", max_size=80)


def _check_formula(text: str) -> None:
    try:
        e = parse_expr_safe(text, ["x", "y"])
    except ParseError:
        return
    assert isinstance(e, sp.Expr)
    assert e.free_symbols <= {sp.Symbol("x"), sp.Symbol("y")}
    # what is accepted prints and parses back to the same function (save/load round trip);
    # SymPy may regroup a sign: -((1 + x)/x) reads back as (-x - 1)/x
    back = parse_expr_safe(expr_to_str(e), ["x", "y"])
    assert back == e or sp.expand(back - e) == 0 or _same_values(back, e)


def _same_values(a: sp.Expr, b: sp.Expr) -> bool:
    pts = [{"x": 0.37, "y": -1.21}, {"x": 1.9, "y": 0.55}, {"x": -0.8, "y": 2.3}]
    for p in pts:
        va, vb = complex(a.evalf(30, subs=p)), complex(b.evalf(30, subs=p))
        close = va == vb or abs(va - vb) <= 1e-9 * max(1.0, abs(va))
        if not close and (np.isfinite(va) or np.isfinite(vb)):
            return False
    return True


@fuzz(300)
@given(FORMULAS)
def test_fuzz_parser_grammar(text):
    _check_formula(text)


@fuzz(300)
@given(RAW_TEXT)
def test_fuzz_parser_raw_text(text):
    _check_formula(text)


# ------------------------------------------------------------------ library specs
PRESETS = st.one_of(
    st.tuples(st.sampled_from(["poly", "trig", "rational"]), st.integers(-2, 40))
    .map(lambda t: f"{t[0]}({t[1]})"),
    st.tuples(st.integers(0, 8), st.integers(-1, 5)).map(lambda t: f"poly({t[0]}, max={t[1]})"),
    st.sampled_from(["poly(x)", "poly(2, min=1)", "poly()", "trig(1.5)", "poly(10**9)"]),
)
TERMS = st.one_of(
    st.sampled_from(["x", "y", "x*y", "sin(x)", "cos(2*y)", "exp(x)", "x*exp(-y)", "sin(x)**2",
                     "tan(x)", "1/x", "sqrt(y)", "log(x)", "exp(x**2)", "exp(exp(x))", "(x + y)**9",
                     "x**3*sin(y)", "0", "x - x", "1/(x + 3)"]),
    FORMULAS,
)
SPECS = st.lists(st.one_of(PRESETS, TERMS), min_size=1, max_size=5).map(", ".join)


@fuzz(120, deadline_ms=8000)
@given(SPECS)
def test_fuzz_library_spec_and_closure(spec):
    try:
        lib = parse_library(spec, ["x", "y"])
    except (ParseError, LibraryError):
        return
    assert isinstance(lib, Library) and len(lib) >= 1
    if len(lib) > 80:
        return
    try:
        closed = lib.closed(max_terms=300, max_seconds=3.0)
    except LibraryError as exc:
        assert "closure" in str(exc)
        return
    assert closed.is_closed() and closed.terms[: len(lib)] == lib.terms


# ------------------------------------------------------------------ result JSON
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False),
              st.text(max_size=20), st.sampled_from(["x**2", "exp(exp(exp(10)))", "numpy", "x" * 300])),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
    max_leaves=12,
)
FIELDS = ["schema", "version", "model", "variables", "U", "V", "grad_V", "g", "f", "backend", "library",
          "tau", "metrics", "timings", "fit"]
FIT_FIELDS = ["backend", "selection", "V", "grad_V", "g", "f", "coef", "front", "timings", "diagnostics"]


def _base_result() -> dict:
    x, y = sp.symbols("x y")
    d = Result.from_expressions(["x", "y"], x**4 / 2 - x**2 + y**2 / 2, g=[-y, x]).to_dict()
    d["fit"] = {"backend": "sr3", "selection": "knee", "V": "x**2", "grad_V": ["2*x", "0"], "g": ["0", "0"],
                "f": ["-2*x", "0"], "coef": [[1.0, 0.0], [0.0, 1.0]],
                "front": [{"complexity": 2, "train_error": 0.1, "val_error": None, "V": "x**2",
                           "g": ["0", "0"], "params": {"a": 1}}],
                "timings": {"fit": 0.5}, "diagnostics": {"iterations": 3}}
    return d


MUTATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from(FIELDS), JSON_VALUES),
        st.tuples(st.just("del"), st.sampled_from(FIELDS), st.none()),
        st.tuples(st.just("fit"), st.sampled_from(FIT_FIELDS), JSON_VALUES),
        st.tuples(st.just("front"), st.sampled_from(["complexity", "train_error", "V", "g", "params"]), JSON_VALUES),
    ),
    min_size=1, max_size=4,
)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@fuzz(200)
@given(MUTATIONS)
def test_fuzz_result_json(folder, mutations):
    d = _base_result()
    for op, key, value in mutations:
        if op == "set":
            d[key] = value
        elif op == "del":
            d.pop(key, None)
        elif op == "fit" and isinstance(d.get("fit"), dict):
            d["fit"][key] = value
        elif op == "front" and isinstance(d.get("fit"), dict):
            front = d["fit"].get("front")
            if isinstance(front, list) and front and isinstance(front[0], dict):
                front[0][key] = value
    p = folder / "r.json"
    p.write_text(json.dumps(d))
    try:
        r = load_result(p)
    except ResultFormatError:
        return
    # what loads saves and loads again
    r.save(p)
    assert load_result(p).U == r.U


@fuzz(150)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_fuzz_result_text(folder, text):
    p = folder / "t.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ResultFormatError):
        load_result(p)


# ------------------------------------------------------------------ npz reader
def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


ARRAYS = st.one_of(
    st.tuples(st.integers(0, 12), st.integers(0, 4), st.sampled_from(["f8", "f4", "i8", "u1", "?", "c16", "U3"]))
    .map(lambda t: np.ones((t[0], t[1]), dtype=t[2])),
    st.sampled_from([np.float64(0.1), np.float64(-1.0), np.float64(np.nan), np.array([0.2]), np.array("x"),
                     np.array(["x", "y"]), np.array(["lambda", "y"]), np.arange(10), np.zeros((3, 2, 2))]),
)
MEMBER_DATA = st.one_of(
    ARRAYS.map(_npy),
    st.binary(max_size=64),
    st.tuples(ARRAYS.map(_npy), st.integers(0, 200), st.integers(0, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1:]),  # one byte changed
)
MEMBERS = st.dictionaries(
    st.sampled_from(["x0.npy", "xh.npy", "h.npy", "names.npy", "traj.npy", "x0", "other.npy", "dir/"]),
    MEMBER_DATA, max_size=6,
)


@fuzz(200)
@given(MEMBERS, st.booleans())
def test_fuzz_npz_reader(folder, members, compressed):
    p = folder / "p.npz"
    mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(p, "w", compression=mode) as z:
        for name, data in members.items():
            z.writestr(name, data)
    try:
        pairs = load_pairs(p)
    except DataError:
        return
    assert isinstance(pairs, Pairs) and np.all(np.isfinite(pairs.x0))


@fuzz(150)
@given(st.integers(0, 10**6), st.integers(1, 255), st.integers(0, 3))
def test_fuzz_npz_damaged_bytes(folder, where, xor, extra):
    good = folder / "good.npz"
    if not good.exists():
        rng = np.random.default_rng(0)
        np.savez_compressed(good, x0=rng.normal(size=(20, 2)), xh=rng.normal(size=(20, 2)), h=0.1,
                            names=np.array(["x", "y"]))
    raw = bytearray(good.read_bytes())
    for k in range(extra + 1):
        i = (where + 7919 * k) % len(raw)
        raw[i] ^= xor
    p = folder / "bad.npz"
    p.write_bytes(bytes(raw))
    try:
        load_pairs(p)
    except DataError:
        pass
