import pytest
import sympy as sp

from symqp import ParseError
from symqp._parse import parse_expr_safe

x, y = sp.symbols("x y")

HOSTILE = [
    "__import__('os').system('ls')",
    "x.__class__",
    "().__class__.__bases__[0]",
    "lambda: 1",
    "open('f')",
    "eval('1')",
    "exec('1')",
    "[1, 2]",
    "{'a': 1}",
    "'text'",
    "x if y else 1",
    "x; y",
    "import os",
    "globals()",
    "sin(x, y=1)",
    "sin(*[x])",
    "x @ y",
    "x // y",
    "x % y",
    "x < y",
    "Symbol('a')",
    "z",
    "1e400",
    "x ** 1000",
    "(" * 500 + "x" + ")" * 500,
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_are_refused(text):
    with pytest.raises(ParseError):
        parse_expr_safe(text, ["x", "y"])


def test_allowed_grammar():
    e = parse_expr_safe("-2*(x**3 - x) - y + sin(x)/2 + exp(-y) + sqrt(2)*pi", ["x", "y"])
    assert sp.simplify(e - (-2 * (x**3 - x) - y + sp.sin(x) / 2 + sp.exp(-y) + sp.sqrt(2) * sp.pi)) == 0


def test_xor_and_rational():
    assert parse_expr_safe("x^2", ["x"], xor_is_pow=True) == x**2
    assert parse_expr_safe("0.5*x", ["x"], rational=True) == sp.Rational(1, 2) * x


def test_mapping_of_derived_variables():
    r = sp.sqrt(x**2 + y**2)
    assert parse_expr_safe("1/r", {"r": r}) == 1 / r


def test_error_names_the_token():
    with pytest.raises(ParseError, match="'foo'"):
        parse_expr_safe("foo(x)", ["x"])
