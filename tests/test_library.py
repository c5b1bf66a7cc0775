"""Libraries: presets, composition, spec parsing, gradient maps, closure (no Numba)."""

import doctest
import importlib

import numpy as np
import pytest
import scipy.sparse
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symqp import DataError, LibraryError, ParseError
from symqp.library import Library, custom, parse_library, poly, product, rational, trig

x, y, z, r = sp.symbols("x y z r")


# ------------------------------------------------------------------ doctests
@pytest.mark.parametrize(
    "module",
    ["symqp.library", "symqp.library._library", "symqp.library._terms", "symqp.library._spec",
     "symqp.library._constraints"],
)
def test_doctests(module):
    res = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert res.attempted > 0 and res.failed == 0


# ------------------------------------------------------------------ presets
def test_poly_graded_order_and_count():
    lib = poly(["x", "y", "z"], 5)
    assert len(lib) == 56
    assert lib.terms[:4] == (1, x, y, z)
    assert lib.terms[4:10] == (x**2, x * y, x * z, y**2, y * z, z**2)
    degs = [sp.Poly(t, x, y, z).total_degree() for t in lib.terms]
    assert degs == sorted(degs)
    # 10 variables, degree 4: C(14, 4) = 1001 terms
    assert len(poly([f"u{i}" for i in range(10)], 4)) == 1001


def test_poly_matches_pysindy_columns(rng):
    ps = pytest.importorskip("pysindy")
    X = rng.uniform(-1, 1, (7, 3))
    ours = poly(["x", "y", "z"], 4).evaluate(X, backend="numpy")
    theirs = ps.PolynomialLibrary(degree=4).fit_transform(X)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)


def test_poly_max_per_var():
    lib = poly(["x", "y"], 4, max_per_var=[1, 3])
    assert all(sp.degree(t, x) <= 1 and sp.degree(t, y) <= 3 for t in lib.terms)
    assert x * y**3 in lib.terms and x**2 not in lib.terms
    with pytest.raises(LibraryError, match="max_per_var has 1 entries"):
        poly(["x", "y"], 2, max_per_var=[1])


def test_trig_rational_product_custom():
    assert trig(["x", "y"], 2).terms == (
        sp.sin(x), sp.cos(x), sp.sin(2 * x), sp.cos(2 * x),
        sp.sin(y), sp.cos(y), sp.sin(2 * y), sp.cos(2 * y),
    )
    bhat = rational(["r"], 2, denominators=["r", "10 - r"])
    assert bhat.terms == (1, 1 / r, r**-2, 1 / (10 - r), (10 - r) ** -2)
    p = product(poly(["x"], 1), trig(["y"], 1))
    assert p.terms == (sp.sin(y), sp.cos(y), x * sp.sin(y), x * sp.cos(y))
    assert p.variables == (x, y)
    assert (poly(["x"], 1) * trig(["y"], 1)) == p
    c = custom([sp.exp(-x), "x*exp(-x)"], ["x"])
    assert c.terms == (sp.exp(-x), x * sp.exp(-x))


def test_add_dedupes_and_merges_variables():
    lib = poly(["x"], 2) + poly(["x", "y"], 1)
    assert lib.terms == (1, x, x**2, y)
    assert lib.variables == (x, y)
    assert Library([x, x, 2 * x], ["x"]).terms == (x, 2 * x)


def test_index_mask_names_expression():
    lib = poly(["x", "y"], 4)
    assert lib.index("x*y**2") == lib.terms.index(x * y**2)
    assert lib.names[lib.index(y**3)] == "y**3"
    with pytest.raises(LibraryError, match="not in the library"):
        lib.index("x**5")
    m = lib.mask_of(poly(["x", "y"], 3))
    assert m.sum() == 10 and m[:10].all() and not m[10:].any()
    with pytest.raises(LibraryError, match="terms not in the library: x\\*\\*5"):
        lib.mask_of([x**5])
    coef = np.zeros(len(lib))
    coef[lib.index(x**2)] = 0.5
    coef[lib.index(y)] = -2
    assert sp.simplify(lib.expression(coef) - (0.5 * x**2 - 2 * y)) == 0
    assert lib.expression(np.zeros(len(lib))) == 0
    exact = [sp.Rational(1, 3) if t == x else 0 for t in lib.terms]
    assert lib.expression(exact) == x / 3
    with pytest.raises(DataError, match="shape"):
        lib.expression([1.0, 2.0])
    with pytest.raises(DataError, match="NaN"):
        lib.expression(np.full(len(lib), np.nan))


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda: Library([x, sp.Symbol("q")], ["x"]), "uses q"),
        (lambda: Library([0], ["x"]), "zero"),
        (lambda: Library([], ["x"]), "at least one term"),
        (lambda: Library(["x"], []), "at least one variable"),
        (lambda: Library(["x"], ["x", "x"]), "duplicate"),
        (lambda: Library([object()], ["x"]), "not a SymPy expression"),
        (lambda: Library([sp.zoo * x], ["x"]), "not finite"),
        (lambda: poly(["x"], -1), "between 0 and 64"),
        (lambda: poly(["x"], 2.5), "integer"),
        (lambda: poly([f"u{i}" for i in range(10)], 12), "limit"),
        (lambda: trig(["x"], 0), "between 1"),
        (lambda: rational(["x"], 1, denominators=["2"]), "does not depend"),
        (lambda: product(poly(["x"], 1), "x"), "Library objects"),
    ],
)
def test_bad_construction_raises(bad, match):
    with pytest.raises(LibraryError, match=match):
        bad()


def test_library_strings_use_safe_parser():
    with pytest.raises(ParseError, match="__import__"):
        Library(["__import__('os').system('echo hi')"], ["x"])


# ------------------------------------------------------------------ spec parser
def test_parse_library_good_specs():
    lib = parse_library("poly(2), sin(x), cos(x), y*sin(x)", ["x", "y"])
    assert lib.terms == poly(["x", "y"], 2).terms + (sp.sin(x), sp.cos(x), y * sp.sin(x))
    assert parse_library("poly(3, max=1)", ["x", "y"]) == poly(["x", "y"], 3, max_per_var=1)
    assert parse_library("trig(2), exp(-x**2/2)", ["x"]).terms[-1] == sp.exp(-x**2 / 2)
    assert parse_library(" rational(2) ", ["x"]).terms == (1, 1 / x, x**-2)
    assert parse_library("sqrt(x**2 + 1), pi*x, E", [x]).terms == (sp.sqrt(x**2 + 1), sp.pi * x, sp.E)


HOSTILE = [
    ("__import__('os')", "__import__"),
    ("poly(2), __import__('os').system('ls')", "__import__"),
    ("x.__class__", "attribute"),
    ("sin(x).func", "attribute"),
    ("lambda: 1", "Lambda"),
    ("unknown(x)", "unknown"),
    ("w", "'w'"),
    ("poly(__import__)", "__import__"),
    ("poly(-1)", "-1"),
    ("poly(1e9)", "1e9"),
    ("poly(10**9)", "10\\*\\*9"),
    ("poly(1000)", "out of range"),
    ("poly(True)", "True"),
    ("poly(2, max=__import__)", "__import__"),
    ("poly(2, evil=1)", "evil"),
    ("poly(2, 3)", "exactly one"),
    ("poly(*x)", "exactly one|Starred"),
    ("trig(0)", "at least 1"),
    ("poly(2),, sin(x)", "empty item 2"),
    ("poly(2),", "empty item 2"),
    ("", "empty library spec"),
    ("   ", "empty library spec"),
    ("sin(x", "unbalanced"),
    ("sin(x))", "unbalanced"),
    ("x; import os", "cannot parse"),
    ("[x for x in ()]", "ListComp|not allowed"),
    ("0", "zero"),
    ("x - x", "zero"),
    ("1/0", "zero or not finite|not finite"),
    ("'x'", "not a number"),
    ("globals()", "globals"),
    ("x**1000", "too large"),
]


@pytest.mark.parametrize("spec, token", HOSTILE)
def test_parse_library_refuses_hostile(spec, token):
    with pytest.raises(ParseError, match=token):
        parse_library(spec, ["x", "y"])


def test_parse_library_bad_variables_and_types():
    with pytest.raises(ParseError, match="identifier"):
        parse_library("poly(1)", ["x-y"])
    with pytest.raises(ParseError, match="string"):
        parse_library(["poly(1)"], ["x"])
    with pytest.raises(ParseError, match="limit 20000"):
        parse_library("poly(20)", [f"u{i}" for i in range(10)])


# ------------------------------------------------------------------ gradient maps
def _num_derivative_check(lib, X, columns=None):
    """Theta(X) @ D_k == SymPy derivative (lambdified independently) for the columns."""
    theta = lib.evaluate(X, backend="numpy")
    cols = np.arange(len(lib)) if columns is None else np.flatnonzero(columns)
    for k, Dk in enumerate(lib.gradient_maps(columns=columns)):
        assert isinstance(Dk, scipy.sparse.csr_matrix) and Dk.shape == (len(lib), len(lib))
        got = theta @ Dk.toarray()
        for j in cols:
            f = sp.lambdify(lib.variables, sp.diff(lib.terms[j], lib.variables[k]), "numpy")
            want = np.broadcast_to(f(*X.T), (X.shape[0],))
            np.testing.assert_allclose(got[:, j], want, rtol=1e-11, atol=1e-11)


def test_gradient_maps_poly_exact():
    lib = poly(["x", "y"], 3)
    Dx, Dy = lib.gradient_maps(exact=True)
    assert isinstance(Dx, sp.SparseMatrix)
    # d/dx x**2*y = 2 x*y
    assert Dx[lib.index(x * y), lib.index(x**2 * y)] == 2
    assert Dy[lib.index(x**2), lib.index(x**2 * y)] == 1
    assert Dx[:, lib.index(y**3)].is_zero_matrix
    # T(Xi_v): Theta D_k xi == d/dx_k (Theta xi) symbolically
    xi = sp.Matrix([sp.Rational(i + 1, 7) for i in range(len(lib))])
    V = sum(c * t for c, t in zip(xi, lib.terms))
    for k, Dk in enumerate((Dx, Dy)):
        dV = sum(c * t for c, t in zip(Dk * xi, lib.terms))
        assert sp.expand(dV - sp.diff(V, lib.variables[k])) == 0


def test_gradient_maps_trig_and_general_terms(rng):
    lib = (poly(["x", "y"], 2) + trig(["x", "y"], 2)).closed()
    _num_derivative_check(lib, rng.uniform(-2, 2, (20, 2)))
    # terms that are sums of basis functions go through the exact linear solve
    lib2 = Library(["1", "x + y", "x - y", "(x + y)**2", "x*y", "exp(x) + sin(y)", "exp(x)",
                    "cos(y)"], ["x", "y"])
    assert lib2.is_closed()
    _num_derivative_check(lib2, rng.uniform(-2, 2, (20, 2)))
    Dx = lib2.gradient_maps(exact=True)[0]
    # d/dx (x + y)**2 = 2x + 2y = 2 (x + y)
    assert Dx[lib2.index("x + y"), lib2.index("(x + y)**2")] == 2


def test_not_closed_reports_missing_and_closes():
    lib = Library(["x**2", "x*sin(y)"], ["x", "y"])
    assert not lib.is_closed()
    assert set(lib.missing_derivatives()) == {x, sp.sin(y), x * sp.cos(y)}
    with pytest.raises(LibraryError, match=r"d/dx\(x\*\*2\) needs x"):
        lib.gradient_maps()
    c = lib.closed()
    assert c.is_closed() and c.terms[:2] == lib.terms
    assert set(c.terms) == {x**2, x * sp.sin(y), x, sp.sin(y), x * sp.cos(y), sp.cos(y), 1}


def test_closure_does_not_terminate_for_inverse():
    with pytest.raises(LibraryError, match=r"closure never ends: d/dx of 1/x keeps producing"):
        Library(["1/x"], ["x"]).closed(max_terms=30)


def test_gradient_maps_columns_for_rational_subspace(rng):
    # Bhat-type library: V uses {1/r}, whose derivative -1/r**2 is in the library,
    # although 1/r**2 itself has no derivative in it.
    lib = rational(["r"], 2, denominators=["r", "10 - r"])
    v_mask = lib.mask_of(["1/r", "1/(10 - r)"])
    assert lib.is_closed(columns=v_mask) and not lib.is_closed()
    assert lib.missing_derivatives() == (r**-3, (10 - r) ** -3)
    _num_derivative_check(lib, rng.uniform(1, 9, (15, 1)), columns=v_mask)
    with pytest.raises(LibraryError, match="needs"):
        lib.gradient_maps()


POOL = [
    sp.Integer(1), x, y, x**2, x * y, y**3, x**2 * y, sp.sin(x), sp.cos(2 * y), x * sp.sin(y),
    sp.exp(x), x * sp.exp(-y), sp.sin(x) * sp.cos(y), sp.exp(x / 2) * sp.cos(y),
]
RATIONAL = [1 / x, x**-2, y / x, 1 / (x + 3), x**-3 * y**2]


@settings(max_examples=25, deadline=None)
@given(
    pool=st.lists(st.sampled_from(POOL), min_size=1, max_size=6, unique=True),
    rat=st.lists(st.sampled_from(RATIONAL), min_size=0, max_size=3, unique=True),
    seed=st.integers(0, 2**16),
)
def test_property_theta_D_equals_sympy_derivative(pool, rat, seed):
    """Theta(X) D_k == d/dx_k Theta for random closed libraries with trig and rational terms.

    Rational terms never close, so their columns are left out of the check (``columns``)
    unless their derivatives happen to be in the library.
    """
    base = Library(pool, ["x", "y"]).closed(max_terms=200)
    lib = base + Library(rat, ["x", "y"]) if rat else base
    cols = np.array([lib.is_closed(columns=[j]) for j in range(len(lib))])
    assert cols[: len(base)].all()
    X = np.random.default_rng(seed).uniform(0.5, 2.0, (12, 2))
    _num_derivative_check(lib, X, columns=cols)
    if rat:
        assert not lib.is_closed()
        assert all(e.free_symbols <= {x, y} for e in lib.missing_derivatives())


def test_all_pairs_products_closed():
    # tensor product of closed libraries is closed
    lib = product(poly(["x"], 2), trig(["y"], 2))
    assert lib.is_closed() and len(lib) == 12
