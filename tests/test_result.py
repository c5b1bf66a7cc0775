"""Result: derived fields, exact JSON round trips, the sympify contract, bad files."""

import json
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symqp import ParseError, ResultFormatError
from symqp.result import SCHEMA, Result, expr_to_str, load_result

x, y, z = sp.symbols("x y z")


def example1_result(**kw):
    # Table 1 of the paper (identified expressions, three decimals)
    V = (1.000 * x**4 - 2.001 * x**2 + 0.999 * y**2 + 0.999 * z**2 + 1.001) / 2
    g = [-1.0 * y - 1.0 * z, 2.003 * x**3 - 2.004 * x, 2.003 * x**3 - 2.003 * x]
    return Result.from_expressions(["x", "y", "z"], V, g=g, backend="sr3", library="poly(5)", **kw)


def test_from_expressions_derives_exact_fields():
    V = x**4 / 2 - x**2 + y**2 / 2 + z**2 / 2 + sp.Rational(1, 2)
    g = [-y - z, 2 * x**3 - 2 * x, 2 * x**3 - 2 * x]
    r = Result.from_expressions(["x", "y", "z"], V, g=g)
    assert sp.expand(r.U - (x**4 - 2 * x**2 + y**2 + z**2 + 1)) == 0
    assert r.grad_V == (2 * x**3 - 2 * x, y, z)
    # f is the archetypal field of eq. (17)
    f17 = (-2 * (x**3 - x) - y - z, -y + 2 * (x**3 - x), -z + 2 * (x**3 - x))
    assert all(sp.expand(a - b) == 0 for a, b in zip(r.f, f17))


def test_save_load_round_trip_is_exact(tmp_path):
    r = example1_result(metrics={"tau": 2.0, "n_points": 123}, timings={"total": 1.5}, tau=2.0)
    p = r.save(tmp_path / "r.json")
    back = load_result(p)
    assert back.variables == r.variables
    assert back.U == r.U and back.V == r.V
    assert back.grad_V == r.grad_V and back.g == r.g and back.f == r.f
    assert back.metrics == r.metrics and back.timings == r.timings
    assert back.tau == 2.0 and back.model == "orthogonal"
    assert back.backend == "sr3" and back.library == "poly(5)"
    assert Result.load(p).U == r.U
    data = json.loads(p.read_text())
    assert data["schema"] == SCHEMA
    for key in ("variables", "U", "V", "grad_V", "g", "f", "backend", "library", "metrics", "timings"):
        assert key in data


def test_no_temp_files_left(tmp_path):
    example1_result().save(tmp_path / "r.json")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# |v| < 1e300 so that U = 2V and products stay finite
finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, width=64).filter(lambda v: v != 0.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=5, max_size=5))
def test_random_float_coefficients_round_trip_bit_exactly(tmp_path_factory, coefs):
    terms = [sp.Integer(1), x, x * y, y**3, x**4]
    V = sum(sp.Float(c) * t for c, t in zip(coefs, terms))
    r = Result.from_expressions(["x", "y"], V, g=[sp.Float(coefs[0]) * y, -sp.Float(coefs[0]) * x])
    p = tmp_path_factory.mktemp("rt") / "r.json"
    back = load_result(r.save(p))
    assert back.V == r.V and back.U == r.U and back.g == r.g
    got = sp.Poly(back.V, x, y).as_dict()
    want = sp.Poly(r.V, x, y).as_dict()
    assert set(got) == set(want)
    for k in want:
        assert float(got[k]) == float(want[k])  # bit for bit


@settings(max_examples=30, deadline=None)
@given(st.lists(finite, min_size=3, max_size=3))
def test_U_string_satisfies_sympify_contract(coefs):
    # The CLI contract: sympy.sympify(s, locals={name: Symbol(name)}) gives U.
    U = sp.Float(coefs[0]) * x**2 + sp.Float(coefs[1]) * x * y + sp.Float(coefs[2])
    r = Result(("x", "y"), U, U / 2, (x, y), (0, 0), (-x, -y))
    s = r.to_dict()["U"]
    parsed = sp.sympify(s, locals={"x": sp.Symbol("x"), "y": sp.Symbol("y")})
    got = sp.Poly(parsed, x, y).as_dict()
    want = sp.Poly(U, x, y).as_dict()
    assert set(got) == set(want)
    for k in want:
        # sympify reads a decimal string at the string's own precision and then rounds to a
        # double, which can differ by one ulp (double rounding); load_result is bit-exact.
        assert float(got[k]) == pytest.approx(float(want[k]), rel=3e-16, abs=0)


def test_expr_to_str_uses_17_digit_floats():
    v = 0.1 + 0.2  # 0.30000000000000004
    assert expr_to_str(sp.Float(v) * x) == "0.30000000000000004*x"
    assert float(sp.sympify(expr_to_str(sp.Float(v)))) == v


def test_non_finite_coefficient_cannot_be_saved(tmp_path):
    r = Result.from_expressions(["x"], sp.Float(math.inf) * x**2)
    with pytest.raises(ResultFormatError, match="non-finite"):
        r.save(tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def _write(tmp_path, obj):
    p = tmp_path / "bad.json"
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(schema="symqp.result/2"), "unsupported schema"),
        (lambda d: d.pop("schema"), "unsupported schema None"),
        (lambda d: d.pop("U"), "missing key 'U'"),
        (lambda d: d.pop("metrics"), "missing key 'metrics'"),
        (lambda d: d.update(U="x**2 +"), "cannot parse U"),
        (lambda d: d.update(U="__import__('os').system('true')"), "cannot parse U"),
        (lambda d: d.update(V="w**2"), "cannot parse V: name 'w'"),
        (lambda d: d.update(g=["x"]), "g has 1 entries, expected 3"),
        (lambda d: d.update(f="x"), "key 'f' must be list"),
        (lambda d: d.update(grad_V=["x", 3, "z"]), r"grad_V\[1\] must be a formula string"),
        (lambda d: d.update(variables=["x", "x", "z"]), "repeated names"),
        (lambda d: d.update(variables=["x y"]), "identifier"),
        (lambda d: d.update(model="gradient"), "unknown model 'gradient'"),
        (lambda d: d.update(tau="big"), "'tau' must be a number"),
    ],
)
def test_bad_files_raise_result_format_error(tmp_path, mutate, match):
    d = example1_result().to_dict()
    mutate(d)
    with pytest.raises(ResultFormatError, match=match):
        load_result(_write(tmp_path, d))


def test_not_json_and_missing_file(tmp_path):
    with pytest.raises(ResultFormatError, match="not valid JSON"):
        load_result(_write(tmp_path, "{not json"))
    with pytest.raises(ResultFormatError, match="must be a JSON object"):
        load_result(_write(tmp_path, "[1, 2]"))
    with pytest.raises(ResultFormatError, match="not found"):
        load_result(tmp_path / "missing.json")


def test_pretty_rounds_for_display_only():
    r = Result.from_expressions(["x"], sp.Float(0.123456789) * x**2, metrics={"orthogonality": 1e-3})
    text = r.pretty()
    assert "U(x) = 0.2469*x**2" in text
    assert "orthogonality 0.001" in text
    assert str(r) == text
    assert float(sp.Poly(r.U, x).coeffs()[0]) == 2 * 0.123456789  # stored value untouched


def test_latex():
    r = example1_result()
    tex = r.latex()
    assert set(tex) == {"U", "grad_V", "g"}
    assert "x^{4}" in tex["U"] and len(tex["g"]) == 3


def test_numpy_views_match_sympy(rng):
    r = example1_result()
    X = rng.uniform(-2, 2, (50, 3))
    U = r.U_numpy(X)
    F = r.f_numpy(X)
    assert U.shape == (50,) and F.shape == (50, 3)
    for i in range(0, 50, 7):
        sub = dict(zip((x, y, z), X[i]))
        assert U[i] == pytest.approx(float(r.U.subs(sub)), rel=1e-13)
        for k in range(3):
            assert F[i, k] == pytest.approx(float(r.f[k].subs(sub)), rel=1e-12, abs=1e-12)
    # constant components still broadcast to (n, d)
    r0 = Result.from_expressions(["x", "y"], x**2 / 2, g=[sp.Integer(1), sp.Integer(0)])
    assert np.array_equal(r0.g_numpy(X[:4, :2]), np.tile([1.0, 0.0], (4, 1)))
    assert np.array_equal(r0.U_numpy(np.array([1.0, 3.0])), np.array([1.0]))


def test_numpy_view_rejects_wrong_shape():
    from symqp import DataError

    with pytest.raises(DataError, match=r"shape \(n, 3\)"):
        example1_result().U_numpy(np.zeros((4, 2)))


def test_fit_with_front_round_trips(tmp_path):
    backends = pytest.importorskip("symqp.backends")
    Candidate, Fit = backends.Candidate, backends.Fit
    r = example1_result()
    front = [
        Candidate(complexity=3, train_error=0.5, val_error=0.6, V=x**2 / 2, g=(y, -x, sp.Integer(0)), params={"threshold": 0.1}),
        Candidate(complexity=5, train_error=1e-3, val_error=2e-3, V=r.V, g=r.g, params={}),
    ]
    coef = np.arange(3 * 7, dtype=float).reshape(3, 7) / 3.0
    r.fit = Fit(
        V=r.V, grad_V=r.grad_V, g=r.g, f=r.f, coef=coef, front=front, selection="val",
        timings={"solve": 0.25}, diagnostics={"iterations": 12, "converged": True}, backend="sr3",
    )
    back = load_result(r.save(tmp_path / "r.json"))
    assert back.fit.V == r.V and back.fit.f == r.f
    assert np.array_equal(back.fit.coef, coef)
    assert [c.complexity for c in back.fit.front] == [3, 5]
    assert back.fit.front[0].V == x**2 / 2 and back.fit.front[1].val_error == 2e-3
    assert back.fit.diagnostics == {"iterations": 12, "converged": True}


def test_from_expressions_parses_text_safely():
    r = Result.from_expressions(["x", "y"], "x**2/2 + y**2", g=["-y", "x"])
    assert r.U == x**2 + 2 * y**2 and r.f == (-x - y, x - 2 * y)
    with pytest.raises(ParseError, match="__import__"):
        Result.from_expressions(["x"], "__import__('os').getcwd()")
    with pytest.raises(ResultFormatError, match="SymPy expression"):
        Result.from_expressions(["x"], object())
