"""Safe parsing of user formulas into SymPy expressions.

User text (command-line library specs, system formulas, model strings printed by
evolutionary backends, saved results) is never handed to ``eval``, ``sympify`` or
``parse_expr``. It is parsed with Python's :mod:`ast` and every node is checked against an
allow-list: numbers, the given variable names, a fixed set of functions and constants, and
the operators ``+ - * / **`` (``^`` too, as power, when ``xor_is_pow``). The SymPy
expression is then built directly from the checked tree.

Work is bounded before SymPy sees it: integers and exact fractions have at most
:data:`MAX_DIGITS` digits, exponents at most :data:`MAX_POW` in size, the tree is at most
:data:`MAX_DEPTH` levels deep, and every constant sub-expression is first evaluated in
double precision and refused when it is not finite there. SymPy evaluates constants
exactly and eagerly, so without these checks a 30-character formula such as
``((((10**60)**60)**60)**60)**60`` builds a number of about 10**9 digits, and
``exp(exp(exp(10)))`` never finishes its numerical evaluation.
"""

from __future__ import annotations

import ast
import builtins
import cmath
import keyword
import math
import unicodedata
from collections.abc import Callable, Iterable, Mapping

import sympy as sp

from ._errors import ParseError, first_line

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_POW",
    "RESERVED_NAMES",
    "expanded_size",
    "name_problem",
    "parse_expr_safe",
    "shorten",
]

FUNCTIONS: dict[str, Callable[..., sp.Expr]] = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "tanh": sp.tanh,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "asin": sp.asin,
    "acos": sp.acos,
    "atan": sp.atan,
    "abs": sp.Abs,
    "Abs": sp.Abs,
    "square": lambda a: a**2,
    "cbrt": sp.cbrt,
}

CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}
_CONSTANT_VALUES = {"pi": math.pi, "E": math.e}

# The same functions in complex double precision, used to bound constant sub-expressions.
_FLOAT_FUNCTIONS: dict[str, Callable[..., complex]] = {
    "sin": cmath.sin,
    "cos": cmath.cos,
    "tan": cmath.tan,
    "exp": cmath.exp,
    "log": cmath.log,
    "sqrt": cmath.sqrt,
    "tanh": cmath.tanh,
    "sinh": cmath.sinh,
    "cosh": cmath.cosh,
    "asin": cmath.asin,
    "acos": cmath.acos,
    "atan": cmath.atan,
    "abs": abs,
    "Abs": abs,
    "square": lambda a: a * a,
    "cbrt": lambda a: a ** (1 / 3),
}

#: Names a variable may not have: Python keywords and built-ins, the parser's functions and
#: constants, and the names that SymPy's printers emit into generated NumPy code (a variable
#: called ``exp`` or ``numpy`` would shadow them there; one called ``e`` would be read as
#: Euler's number).
RESERVED_NAMES: frozenset[str] = frozenset(
    {*keyword.kwlist, *dir(builtins), *FUNCTIONS, *CONSTANTS}
    | {
        "numpy", "np", "math", "cmath", "mpmath", "scipy", "sympy", "sp", "numba", "torch",
        "e", "I", "oo", "zoo", "nan", "inf", "Inf", "NaN", "S", "N", "Symbol",
        "arcsin", "arccos", "arctan", "arctan2", "arcsinh", "arccosh", "arctanh", "sign",
        "absolute", "power", "heaviside", "select", "where", "less", "greater", "equal",
        "logical_and", "logical_or", "logical_not", "real", "imag", "conjugate", "log10",
        "log2", "log1p", "expm1", "hypot", "sinc", "Heaviside", "Piecewise", "Derivative",
        "re", "im",
    }
)

_MAX_LEN = 100_000
#: Largest exponent (in absolute value) of a power.
MAX_POW = 64
_MAX_POW = MAX_POW  # old private name
#: Most decimal digits of an integer, or of the numerator or denominator of a fraction.
MAX_DIGITS = 100
#: Deepest nesting of calls, powers and signs (long sums and products do not count).
MAX_DEPTH = 100
_MAX_BITS = int(MAX_DIGITS * math.log2(10)) + 1
_SHOW = 60


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a variable name, or None when it can.

    A variable name must be a Python identifier in NFKC normal form (Python's own parser
    folds ``ｘ`` to ``x``, so such a name could never be referred to in a formula) and must
    not be one of :data:`RESERVED_NAMES` or start with an underscore.

    Examples
    --------
    >>> name_problem("x1") is None
    True
    >>> name_problem("exp")
    "'exp' is reserved (a function, constant or Python name); rename the variable"
    >>> name_problem("ｘ")
    "'ｘ' is not in Unicode normal form NFKC (Python reads it as 'x'); rename the variable"
    """
    if not isinstance(name, str):
        return f"variable names must be strings, got {type(name).__name__}"
    if not name.isidentifier():
        return f"{shorten(name)!r} is not a valid identifier"
    norm = unicodedata.normalize("NFKC", name)
    if norm != name:
        return f"{name!r} is not in Unicode normal form NFKC (Python reads it as {norm!r}); rename the variable"
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword; rename the variable"
    if name in RESERVED_NAMES:
        return f"{name!r} is reserved (a function, constant or Python name); rename the variable"
    if name.startswith("_"):
        return f"{name!r} starts with an underscore (reserved for generated code); rename the variable"
    return None


def shorten(text: str, limit: int = _SHOW) -> str:
    """``text`` cut to ``limit`` characters for an error message.

    Examples
    --------
    >>> shorten("x + " * 30, 12)
    'x + x + x...'
    """
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expanded_size(expr: sp.Expr) -> int:
    """Upper estimate of the number of terms ``sympy.expand`` makes of ``expr`` or of any part.

    A power of a sum with k terms to the n-th power expands into up to C(n + k - 1, k - 1)
    terms; products multiply, sums add; function arguments are expanded too. Checked
    before expanding user terms, since ``(x1 + ... + x10)**64`` has 4e11 terms.

    Examples
    --------
    >>> x, y, z = sp.symbols("x y z")
    >>> expanded_size((x + y + z) ** 4 * (x + 1)), expanded_size(sp.sin((x + y) ** 9))
    (30, 10)
    """
    worst = 0

    def size(e: sp.Expr) -> int:
        nonlocal worst
        if e.is_Add:
            n = sum(size(a) for a in e.args)
        elif e.is_Mul:
            n = math.prod(size(a) for a in e.args)
        elif e.is_Pow:
            k = size(e.base)
            n = math.comb(int(e.exp) + k - 1, k - 1) if e.exp.is_Integer and e.exp > 0 and k > 1 else 1
            size(e.exp)
        else:
            for a in e.args:
                size(a)
            n = 1
        worst = max(worst, n)
        return n

    size(expr)
    return worst


def _where(node: ast.AST, text: str) -> str:
    seg = ast.get_source_segment(text, node)
    return repr(shorten(seg)) if seg else type(node).__name__


def _digits_ok(value: sp.Expr) -> bool:
    """Whether an exact number stays within :data:`MAX_DIGITS` (numerator and denominator)."""
    if isinstance(value, sp.Rational):
        return value.p.bit_length() <= _MAX_BITS and value.q.bit_length() <= _MAX_BITS
    return True


def _pow_fits(a: sp.Expr, b: sp.Expr) -> bool:
    """Whether SymPy's exact evaluation of ``a**b`` for numbers stays within MAX_DIGITS."""
    if not (isinstance(a, sp.Rational) and isinstance(b, sp.Rational)) or a in (0, 1, -1):
        return True
    bits = max(a.p.bit_length(), a.q.bit_length())
    return bits * abs(float(b)) <= _MAX_BITS


def _finite(value: complex) -> bool:
    return cmath.isfinite(value)


def _double(expr: sp.Expr) -> sp.Expr:
    """A SymPy Float rounded to double precision, as it is printed and saved (SymPy keeps
    1e-320*1e-320 = 1e-640, which prints as 0.0 and would not read back the same)."""
    if isinstance(expr, sp.Float):
        return sp.Float(float(expr))
    return expr


class _Builder:
    """Turns a checked :mod:`ast` tree into SymPy, carrying a double-precision value for
    every constant sub-expression (None for those that depend on a variable)."""

    def __init__(self, text: str, src: str, names: dict[str, sp.Expr],
                 functions: dict[str, Callable[..., sp.Expr]], rational: bool) -> None:
        self.text, self.src, self.names = text, src, names
        self.functions, self.rational = functions, rational
        self.shown = repr(shorten(text))

    def fail(self, what: str) -> ParseError:
        return ParseError(f"{what} in {self.shown}")

    def constant(self, node: ast.AST, value: complex | None, expr: sp.Expr) -> tuple[sp.Expr, complex | None]:
        expr = _double(expr)
        if value is not None and not _finite(value):
            raise self.fail(
                f"constant {_where(node, self.src)} is not finite in double precision "
                "(overflow, division by zero or log(0))"
            )
        if value is not None and abs(value.imag) > 1e-12 * max(1.0, abs(value)):
            raise self.fail(f"constant {_where(node, self.src)} is not a real number")
        if not _digits_ok(expr):
            raise self.fail(f"constant {_where(node, self.src)} has more than {MAX_DIGITS} digits")
        return expr, value

    def conv(self, node: ast.AST, depth: int) -> tuple[sp.Expr, complex | None]:
        if depth > MAX_DEPTH:
            raise self.fail(f"formula nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id], None
            if node.id in CONSTANTS:
                return CONSTANTS[node.id], complex(_CONSTANT_VALUES[node.id])
            allowed = ", ".join(self.names) or "none"
            raise ParseError(
                f"name {shorten(node.id)!r} is not allowed in {self.shown} (allowed variables: {allowed})"
            )
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.fail(f"operator {type(node.op).__name__} is not allowed")
            a, fa = self.conv(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return a, fa
            return -a, (None if fa is None else -fa)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.Add, ast.Sub)):
                return self.chain(node, depth, (ast.Add, ast.Sub))
            if isinstance(node.op, (ast.Mult, ast.Div)):
                return self.chain(node, depth, (ast.Mult, ast.Div))
            if isinstance(node.op, ast.Pow):
                return self.power(node, depth)
            raise self.fail(f"operator {type(node.op).__name__} ({_where(node, self.src)}) is not allowed")
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Attribute):
            raise self.fail(f"attribute access {_where(node, self.src)} is not allowed")
        raise self.fail(f"{type(node).__name__} {_where(node, self.src)} is not allowed")

    def literal(self, node: ast.Constant) -> tuple[sp.Expr, complex | None]:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(f"literal {_where(node, self.src)} is not a number")
        if isinstance(v, int):
            if v.bit_length() > _MAX_BITS:
                raise self.fail(f"integer {_where(node, self.src)} has more than {MAX_DIGITS} digits")
            return sp.Integer(v), complex(v)
        if not math.isfinite(v):
            raise self.fail("non-finite number")
        if self.rational:
            seg = ast.get_source_segment(self.src, node) or repr(v)
            return self.constant(node, complex(v), sp.Rational(seg))
        return sp.Float(v), complex(v)

    def chain(self, node: ast.BinOp, depth: int, ops: tuple[type, ...]) -> tuple[sp.Expr, complex | None]:
        """A run of ``+``/``-`` (or ``*``/``/``) built in one step: long sums neither recurse
        nor cost quadratic time, and their exact numbers are folded with a size check."""
        items: list[tuple[bool, ast.AST]] = []
        cur: ast.AST = node
        while isinstance(cur, ast.BinOp) and isinstance(cur.op, ops):
            items.append((isinstance(cur.op, (ast.Sub, ast.Div)), cur.right))
            cur = cur.left
        items.append((False, cur))
        items.reverse()
        adding = ops[0] is ast.Add
        number: sp.Expr = sp.Integer(0 if adding else 1)
        rest: list[sp.Expr] = []
        value: complex | None = 0j if adding else 1 + 0j
        for inverse, sub in items:
            e, fe = self.conv(sub, depth + 1)
            try:
                if value is not None and fe is not None:
                    value = (value - fe if inverse else value + fe) if adding else (
                        value / fe if inverse else value * fe)
                else:
                    value = None
            except (ZeroDivisionError, OverflowError):
                raise self.fail(f"constant {_where(node, self.src)} is not finite (division by zero or overflow)") from None
            if value is not None and not _finite(value):
                raise self.fail(f"constant {_where(node, self.src)} is not finite in double precision")
            if adding:
                e = -e if inverse else e
            elif inverse:
                if e == 0:
                    raise self.fail(f"{_where(node, self.src)} is not finite (division by zero: {_where(sub, self.src)} is 0)")
                e = sp.Pow(e, -1)
            if isinstance(e, sp.Number):
                number = _double(number + e if adding else number * e)
                if not _digits_ok(number):
                    raise self.fail(f"exact number in {_where(node, self.src)} has more than {MAX_DIGITS} digits")
            else:
                rest.append(e)
        expr = sp.Add(number, *rest) if adding else sp.Mul(number, *rest)
        return self.constant(node, value, expr)

    def power(self, node: ast.BinOp, depth: int) -> tuple[sp.Expr, complex | None]:
        a, fa = self.conv(node.left, depth + 1)
        b, fb = self.conv(node.right, depth + 1)
        if fb is not None and abs(fb) > MAX_POW:
            raise self.fail(f"exponent {_where(node.right, self.src)} too large (limit {MAX_POW})")
        if not _pow_fits(a, b):
            raise self.fail(f"power {_where(node, self.src)} would have more than {MAX_DIGITS} digits")
        value = None
        if fa is not None and fb is not None:
            try:
                value = fa**fb
            except (ZeroDivisionError, OverflowError):
                raise self.fail(f"constant {_where(node, self.src)} is not finite in double precision") from None
        expr = a**b
        if expr.is_Pow and expr.exp.is_Number and abs(expr.exp) > MAX_POW:
            raise self.fail(f"exponent {expr.exp} of {_where(node, self.src)} too large (limit {MAX_POW})")
        return self.constant(node, value, expr)

    def call(self, node: ast.Call, depth: int) -> tuple[sp.Expr, complex | None]:
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"call {_where(node, self.src)} is not allowed")
        fname = node.func.id
        if fname not in self.functions:
            raise ParseError(
                f"function {shorten(fname)!r} is not allowed in {self.shown} "
                f"(allowed: {', '.join(sorted(self.functions))})"
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail("keyword or starred arguments are not allowed")
        conv = [self.conv(a, depth + 1) for a in node.args]
        args = [e for e, _ in conv]
        try:
            expr = self.functions[fname](*args)
        except TypeError:
            raise self.fail(f"wrong number of arguments to {fname}") from None
        value = None
        if fname in _FLOAT_FUNCTIONS and all(f is not None for _, f in conv):
            try:
                value = complex(_FLOAT_FUNCTIONS[fname](*[f for _, f in conv]))
            except (ValueError, OverflowError, ZeroDivisionError):
                value = complex(math.inf)
        return self.constant(node, value, expr)


def _variable_map(variables: Iterable[str | sp.Symbol] | Mapping[str, sp.Expr]) -> dict[str, sp.Expr]:
    if isinstance(variables, Mapping):
        names: dict[str, sp.Expr] = {str(k): v for k, v in variables.items()}
    else:
        if isinstance(variables, (str, sp.Symbol)):
            variables = [variables]
        names = {}
        for v in variables:
            s = sp.Symbol(v) if isinstance(v, str) else v
            if not isinstance(s, sp.Symbol):
                raise ParseError(f"variables must be names or SymPy Symbols, got {type(v).__name__}")
            names[str(s)] = s
    for n in names:
        problem = name_problem(n)
        if problem:
            raise ParseError(f"variable name {problem}")
    return names


def parse_expr_safe(
    text: str,
    variables: Iterable[str | sp.Symbol] | Mapping[str, sp.Expr] = (),
    *,
    functions: Iterable[str] | None = None,
    xor_is_pow: bool = False,
    rational: bool = False,
) -> sp.Expr:
    """Parse ``text`` into a SymPy expression using an allow-list.

    Parameters
    ----------
    text
        The formula, e.g. ``"-2*(x**3 - x) - y"``.
    variables
        Allowed variable names (strings or Symbols), or a mapping name -> expression
        (e.g. a derived variable ``r``). Anything else that looks like a name is refused.
        Names must pass :func:`name_problem`.
    functions
        Names from :data:`FUNCTIONS` to allow (default: all of them).
    xor_is_pow
        Read ``^`` as power (model strings from some regressors use it).
    rational
        Turn decimal literals into exact rationals (``0.5`` -> ``1/2``).

    Raises
    ------
    ParseError
        Naming the offending token for anything outside the allow-list, and for numbers
        beyond the limits (:data:`MAX_DIGITS` digits, exponents beyond :data:`MAX_POW`,
        nesting beyond :data:`MAX_DEPTH`, constants not finite in double precision).

    Examples
    --------
    >>> parse_expr_safe("x**2 + sin(y)/2", ["x", "y"])
    x**2 + sin(y)/2
    >>> parse_expr_safe("__import__('os')", ["x"])
    Traceback (most recent call last):
    ...
    symqp._errors.ParseError: function '__import__' is not allowed in "__import__('os')" (allowed: ...)
    >>> parse_expr_safe("((((10**60)**60)**60)**60)**60", ["x"])
    Traceback (most recent call last):
    ...
    symqp._errors.ParseError: power '(10**60)**60' would have more than 100 digits in ...
    """
    if not isinstance(text, str):
        raise ParseError(f"expected a formula string, got {type(text).__name__}")
    if len(text) > _MAX_LEN:
        raise ParseError(f"formula too long ({len(text)} characters, limit {_MAX_LEN})")
    src = text.strip()
    if not src:
        raise ParseError("empty formula")
    if xor_is_pow:
        src = src.replace("^", "**")
    names = _variable_map(variables)
    if functions is None:
        allowed_f = dict(FUNCTIONS)
    else:
        functions = list(functions)
        unknown = [k for k in functions if k not in FUNCTIONS]
        if unknown:
            raise ParseError(f"unknown function {unknown[0]!r} in the allow-list")
        allowed_f = {k: FUNCTIONS[k] for k in functions}
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as exc:
        msg = shorten(str(exc.msg))
        if "digits" in msg:
            msg = f"a number has too many digits (integers: at most {MAX_DIGITS})"
        raise ParseError(f"cannot parse {shorten(text)!r}: {msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ParseError(
            f"cannot parse {shorten(text)!r}: formula too deeply nested or too many terms in one sum"
        ) from None
    builder = _Builder(text, src, names, allowed_f, rational)
    try:
        expr, _ = builder.conv(tree.body, 0)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError(f"formula too deeply nested: {shorten(text)!r}") from None
    except (ArithmeticError, ValueError, TypeError, AttributeError) as exc:
        # SymPy's exact evaluation failed (it has bugs on some large exact numbers)
        raise ParseError(f"cannot evaluate {shorten(text)!r}: {shorten(first_line(exc))}") from None
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise ParseError(f"{shorten(text)!r} is not finite (division by zero?)")
    return expr

