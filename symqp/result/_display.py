"""Views of a :class:`~symqp.result.Result` for people: notebook display and labelled tables.

* :func:`result_html` / :func:`result_latex` are what Jupyter shows for a result
  (``Result._repr_html_`` / ``Result._repr_latex_``): U, ∇V, g and f typeset, then the key
  metrics (route, backend, library, τ, held-out one-step error, orthogonality, ...).
* :func:`coefficients` is the coefficient table of U, V, g and f, one row per term
  (``Result.coefficients()``), and :func:`front` the Pareto front of the regression backend
  with the refinement's figures beside the backend's (``Result.front()``), both as pandas
  DataFrames. pandas is imported only here, when a table is asked for.

Every view is derived from the exact SymPy expressions; floats are rounded only for display.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import sympy as sp

__all__ = ["ResultDisplay", "coefficients", "front", "result_html", "result_latex", "result_repr", "term_coefficients"]

#: Metrics shown first by the rich display (others that are plain numbers follow).
KEY_METRICS = (
    "route", "quality", "val_one_step_rel", "orthogonality", "hj_residual", "eps", "eps_std",
    "noise_share", "u_rel_err_vs_network",
)  # fmt: skip
_DIGITS = 4


def _round(expr: sp.Expr, digits: int = _DIGITS) -> sp.Expr:
    from ._result import round_floats

    return round_floats(sp.sympify(expr), digits)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def result_repr(result: Any) -> str:
    """One short line: U with 4 significant digits, the backend, the route and the key error.

    Examples
    --------
    >>> from symqp.result import Result
    >>> x = sp.Symbol("x")
    >>> r = Result.from_expressions(["x"], sp.Float(0.123456789) * x**2, backend="sr3")
    >>> result_repr(r)
    'Result(U(x) = 0.2469*x**2, backend=sr3)'
    """
    parts = [f"U({', '.join(result.variables)}) = {_round(result.U)}"]
    if result.model != "orthogonal":
        parts.append(f"model={result.model}")
    if result.backend:
        parts.append(f"backend={result.backend}")
    for key in ("route", "val_one_step_rel"):
        if key in result.metrics:
            parts.append(f"{key}={_fmt(result.metrics[key])}")
    return "Result(" + ", ".join(parts) + ")"


def _rows(result: Any) -> list[tuple[str, str]]:
    """(LaTeX label, LaTeX expression) of U, then ∂V/∂x_k, g_k, f_k for every variable."""
    rows = [("U", sp.latex(_round(result.U)))]
    for name, e in zip(result.variables, result.grad_V):
        rows.append((rf"\partial V / \partial {sp.latex(sp.Symbol(name))}", sp.latex(_round(e))))
    for label, exprs in (("g", result.g), ("f", result.f)):
        for name, e in zip(result.variables, exprs):
            rows.append((rf"{label}_{{{sp.latex(sp.Symbol(name))}}}", sp.latex(_round(e))))
    return rows


def result_latex(result: Any) -> str:
    """LaTeX of U, ∇V, g and f in one ``aligned`` block (floats to 4 significant digits).

    Examples
    --------
    >>> from symqp.result import Result
    >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2 / 2)
    >>> print(result_latex(r))
    $\\displaystyle \\begin{aligned}U &= x^{2}\\\\
    \\partial V / \\partial x &= x\\\\
    g_{x} &= 0\\\\
    f_{x} &= - x\\end{aligned}$
    """
    body = "\\\\\n".join(f"{label} &= {tex}" for label, tex in _rows(result))
    return f"$\\displaystyle \\begin{{aligned}}{body}\\end{{aligned}}$"


def _metric_items(result: Any) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    if result.backend:
        items.append(("backend", result.backend))
    if result.library:
        items.append(("library", result.library))
    if result.tau is not None:
        items.append(("τ", _fmt(float(result.tau))))
    m = result.metrics
    keys = [k for k in KEY_METRICS if k in m]
    keys += [k for k, v in m.items() if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool)]
    items += [(k, _fmt(m[k])) for k in keys]
    if "total" in result.timings:
        items.append(("wall time", f"{float(result.timings['total']):.3g} s"))
    return items


def result_html(result: Any) -> str:
    """HTML for notebooks: the formulas (MathJax ``\\(...\\)``) and a table of key metrics.

    Examples
    --------
    >>> from symqp.result import Result
    >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2 / 2, backend="sr3")
    >>> page = result_html(r)
    >>> "\\\\(U = x^{2}\\\\)" in page, "<td>sr3</td>" in page
    (True, True)
    """
    esc = html.escape
    names = ", ".join(result.variables)
    out = [
        '<div class="symqp-result mathjax_process">',
        f"<strong>symqp Result</strong> U({esc(names)})"
        + (f", model {esc(result.model)}" if result.model != "orthogonal" else ""),
        '<table class="symqp-formulas">',
    ]
    for label, tex in _rows(result):
        out.append(f"<tr><td style=\"text-align:left\">\\({esc(label)} = {esc(tex)}\\)</td></tr>")
    out.append("</table>")
    items = _metric_items(result)
    if items:
        out.append('<table class="symqp-metrics"><tr><th>what</th><th>value</th></tr>')
        out += [f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in items]
        out.append("</table>")
    out.append("</div>")
    return "\n".join(out)


# ---------------------------------------------------------------------- tables
def _pandas() -> Any:
    from .._optional import require

    return require("pandas")


def term_coefficients(expr: Any) -> dict[sp.Expr, Any]:
    """``{term: coefficient}`` of an expanded expression (the constant term's key is 1).

    Examples
    --------
    >>> x, y = sp.symbols("x y")
    >>> term_coefficients(sp.Rational(5, 2) * x**2 - y * sp.sin(x) + 3)
    {1: 3, x**2: 5/2, y*sin(x): -1}
    """
    e = sp.expand(sp.sympify(expr))
    if e == 0:
        return {}
    out = {}
    for term, c in e.as_coefficients_dict().items():
        out[term] = c
    return dict(sorted(out.items(), key=lambda kv: _term_key(kv[0])))


def _term_key(term: sp.Expr) -> tuple:
    """Constant first, then by total degree of the polynomial terms, then the others."""
    syms = sorted(term.free_symbols, key=str)
    poly = term.as_poly(*syms) if syms else None
    if term == 1:
        return (0, 0, "")
    if poly is not None and poly.is_monomial:
        return (1, poly.total_degree(), sp.default_sort_key(term))
    return (2, sp.count_ops(term), sp.default_sort_key(term))


def _number(c: Any) -> Any:
    try:
        return float(c)
    except TypeError:
        return c  # a symbolic coefficient stays exact


def _table(columns: dict[str, sp.Expr], index_name: str) -> Any:
    pd = _pandas()
    coefs = {name: term_coefficients(e) for name, e in columns.items()}
    terms: list[sp.Expr] = []
    for cd in coefs.values():
        terms += [t for t in cd if t not in terms]
    terms.sort(key=_term_key)
    data = {name: [_number(cd[t]) if t in cd else 0.0 for t in terms] for name, cd in coefs.items()}
    return pd.DataFrame(data, index=pd.Index([str(t) for t in terms], name=index_name))


def coefficients(result: Any) -> Any:
    """Coefficients of U, V, g and f on each term, as a pandas DataFrame.

    One row per term (index ``term``: the printed term, ``"1"`` for the constant), one column
    per expression: ``U``, ``V``, ``g[x]``..., ``f[x]``... (∇V follows from V). Exact
    zeros are 0.0. The table is derived from the SymPy expressions, so it exists for every
    result (any backend, any route, a loaded file).

    Examples
    --------
    >>> from symqp.result import Result
    >>> x, y = sp.symbols("x y")
    >>> r = Result.from_expressions(["x", "y"], x**4 / 2 - x**2 + y**2 / 2, g=[-y, x])
    >>> table = coefficients(r)
    >>> list(table.index)
    ['x', 'y', 'x**2', 'y**2', 'x**3', 'x**4']
    >>> table["U"].tolist(), table["f[y]"].tolist()
    ([0.0, 0.0, -2.0, 1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    """
    cols: dict[str, sp.Expr] = {"U": result.U, "V": result.V}
    for label, exprs in (("g", result.g), ("f", result.f)):
        for name, e in zip(result.variables, exprs):
            cols[f"{label}[{name}]"] = e
    return _table(cols, "term")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(sp.expand(sp.sympify(a) - sp.sympify(b)) == 0)
    except (sp.SympifyError, TypeError):
        return False


def _params(rows: Iterable[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    return keys


def front(result: Any) -> Any:
    """The Pareto front of the regression, one candidate model per row, as a DataFrame.

    Columns: ``complexity``, ``train_error``, ``val_error``, ``chosen`` (the model the
    result holds), ``U`` and ``g[x]``... (SymPy expressions, data coordinates), then the
    candidate's parameters. After the refinement on the pairs (neural route), the errors
    are the refined model's relative one-step errors on the pairs, and ``backend_train_error``
    / ``backend_val_error`` are the backend's own errors on the decomposition's targets
    before refinement; ``refined_on_data`` marks those rows. A result without a fit (a
    system, a hand-made result) has an empty front.

    Examples
    --------
    >>> import numpy as np
    >>> from symqp.backends import fit_problem, Problem
    >>> from symqp.library import poly
    >>> from symqp.result import Result
    >>> x, y = sp.symbols("x y")
    >>> X = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    >>> fit = fit_problem("stlsq", Problem(X, -X, (X**2).sum(1) / 2, np.zeros_like(X), poly((x, y), 2)))
    >>> r = Result.from_expressions(["x", "y"], fit.V, g=fit.g, fit=fit)
    >>> table = front(r)
    >>> list(table.columns[:4]), bool(table["chosen"].any())
    (['complexity', 'train_error', 'val_error', 'chosen'], True)
    """
    pd = _pandas()
    fit = getattr(result, "fit", None)
    cands: Sequence[Any] = sorted(getattr(fit, "front", None) or [], key=lambda c: int(c.complexity))
    rows = []
    for c in cands:
        row: dict[str, Any] = {
            "complexity": int(c.complexity),
            "train_error": float(c.train_error),
            "val_error": float(c.val_error),
            "chosen": bool(fit is not None and _same(c.V, fit.V) and all(_same(a, b) for a, b in zip(c.g, fit.g))),
            "U": sp.expand(2 * c.V),
        }
        for name, e in zip(result.variables, c.g):
            row[f"g[{name}]"] = e
        row.update({k: v for k, v in (getattr(c, "params", None) or {}).items() if k not in row})
        rows.append(row)
    hits = [i for i, r in enumerate(rows) if r["chosen"]]
    for i in hits[1:]:  # a front may hold the chosen model twice (the sweep's copy and the refit)
        rows[i]["chosen"] = False
    head = ["complexity", "train_error", "val_error", "chosen", "U", *[f"g[{n}]" for n in result.variables]]
    cols = head + [k for k in _params(rows) if k not in head]
    table = pd.DataFrame(rows, columns=cols)
    # the refinement's copies of train_error / val_error
    return table.drop(columns=[k for k in ("data_train_error", "data_val_error") if k in table.columns])


class ResultDisplay:
    """What :class:`~symqp.result.Result` shows people: a short repr, the notebook display
    (``_repr_html_``, ``_repr_latex_``) and the labelled tables (needs pandas)."""

    def __repr__(self) -> str:
        return result_repr(self)

    def _repr_html_(self) -> str:
        return result_html(self)

    def _repr_latex_(self) -> str:
        return result_latex(self)

    def coefficients(self) -> Any:
        """Coefficients of U, V, g and f per term as a pandas DataFrame (see :func:`coefficients`).

        Examples
        --------
        >>> from symqp.result import Result
        >>> r = Result.from_expressions(["x"], sp.Symbol("x") ** 2 / 2)
        >>> r.coefficients().loc["x**2", "U"]
        np.float64(1.0)
        """
        return coefficients(self)

    def front(self) -> Any:
        """The Pareto front of the regression (backend, and refinement) as a DataFrame.

        See :func:`front` for the columns.
        """
        return front(self)
