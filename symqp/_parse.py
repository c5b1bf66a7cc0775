"""Safe parsing of user formulas into SymPy expressions.

User text (command-line library specs, system formulas, model strings printed by
evolutionary backends, saved results) is never handed to ``eval``, ``sympify`` or
``parse_expr``. It is parsed with Python's :mod:`ast` and every node is checked against an
allow-list: numbers, the given variable names, a fixed set of functions and constants, and
the operators ``+ - * / **`` (``^`` too, as power, when ``xor_is_pow``). The SymPy
expression is then built directly from the checked tree.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping

import sympy as sp

from ._errors import ParseError

__all__ = ["parse_expr_safe", "FUNCTIONS", "CONSTANTS"]

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

_MAX_LEN = 100_000
_MAX_POW = 64


def _where(node: ast.AST, text: str) -> str:
    seg = ast.get_source_segment(text, node)
    return repr(seg) if seg else type(node).__name__


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
    functions
        Names from :data:`FUNCTIONS` to allow (default: all of them).
    xor_is_pow
        Read ``^`` as power (model strings from some regressors use it).
    rational
        Turn decimal literals into exact rationals (``0.5`` -> ``1/2``).

    Raises
    ------
    ParseError
        Naming the offending token for anything outside the allow-list.

    Examples
    --------
    >>> parse_expr_safe("x**2 + sin(y)/2", ["x", "y"])
    x**2 + sin(y)/2
    >>> parse_expr_safe("__import__('os')", ["x"])
    Traceback (most recent call last):
    ...
    symqp._errors.ParseError: name '__import__' is not allowed in '__import__('os')' (allowed variables: x)
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

    if isinstance(variables, Mapping):
        names: dict[str, sp.Expr] = {str(k): v for k, v in variables.items()}
    else:
        names = {}
        for v in variables:
            s = sp.Symbol(v) if isinstance(v, str) else v
            names[str(s)] = s
    allowed_f = dict(FUNCTIONS) if functions is None else {k: FUNCTIONS[k] for k in functions}
    for n in names:
        if not n.isidentifier():
            raise ParseError(f"variable name {n!r} is not a valid identifier")

    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as exc:
        raise ParseError(f"cannot parse {text!r}: {exc.msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ParseError(f"cannot parse {text[:60]!r}...: formula too deeply nested") from None

    var_list = ", ".join(names) or "none"

    def conv(node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Expression):
            return conv(node.body)
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ParseError(f"literal {_where(node, src)} is not a number in {text!r}")
            if isinstance(v, int):
                return sp.Integer(v)
            if not math.isfinite(v):
                raise ParseError(f"non-finite number in {text!r}")
            if rational:
                seg = ast.get_source_segment(src, node) or repr(v)
                return sp.Rational(seg)
            return sp.Float(v)
        if isinstance(node, ast.Name):
            if node.id in names:
                return names[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise ParseError(
                f"name {node.id!r} is not allowed in {text!r} (allowed variables: {var_list})"
            )
        if isinstance(node, ast.UnaryOp):
            a = conv(node.operand)
            if isinstance(node.op, ast.USub):
                return -a
            if isinstance(node.op, ast.UAdd):
                return a
            raise ParseError(f"operator {type(node.op).__name__} is not allowed in {text!r}")
        if isinstance(node, ast.BinOp):
            a, b = conv(node.left), conv(node.right)
            op = node.op
            if isinstance(op, ast.Add):
                return a + b
            if isinstance(op, ast.Sub):
                return a - b
            if isinstance(op, ast.Mult):
                return a * b
            if isinstance(op, ast.Div):
                return a / b
            if isinstance(op, ast.Pow):
                if b.is_number and b.is_real and abs(float(b)) > _MAX_POW:
                    raise ParseError(f"exponent {b} too large in {text!r} (limit {_MAX_POW})")
                return a**b
            raise ParseError(
                f"operator {type(op).__name__} ({_where(node, src)}) is not allowed in {text!r}"
            )
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ParseError(f"call {_where(node, src)} is not allowed in {text!r}")
            fname = node.func.id
            if fname not in allowed_f:
                raise ParseError(
                    f"function {fname!r} is not allowed in {text!r} "
                    f"(allowed: {', '.join(sorted(allowed_f))})"
                )
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ParseError(f"keyword or starred arguments are not allowed in {text!r}")
            args = [conv(a) for a in node.args]
            try:
                return allowed_f[fname](*args)
            except TypeError:
                raise ParseError(
                    f"wrong number of arguments to {fname} in {text!r}"
                ) from None
        if isinstance(node, ast.Attribute):
            raise ParseError(f"attribute access {_where(node, src)} is not allowed in {text!r}")
        raise ParseError(f"{type(node).__name__} {_where(node, src)} is not allowed in {text!r}")

    try:
        return conv(tree)
    except RecursionError:
        raise ParseError(f"formula too deeply nested: {text[:60]!r}...") from None
