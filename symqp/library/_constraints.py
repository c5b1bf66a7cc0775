"""Constraint matrices C (C vec(Xi) = 0) and stacked gradient design matrices."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse

from .._errors import DataError, LibraryError
from ._library import Library, _as_mask

__all__ = ["constraint_matrix", "gradient_library_matrix"]


def constraint_matrix(
    lib: Library,
    d: int | None = None,
    *,
    v_mask: Any = None,
    g_mask: Any = None,
    order: str = "feature",
) -> np.ndarray:
    """Linear constraints C vec(Xi) = 0 on Xi = [f_1..f_d | V | g_1..g_d] (q x (2d+1)).

    Rows, in this order: for each variable k and library row i,
    ``Xi_f_k[i] + (D_k Xi_v)[i] - Xi_g_k[i] = 0`` (i.e. f = -grad V + g in the library);
    then ``Xi_v[i] = 0`` for each i outside ``v_mask``; then ``Xi_g_k[i] = 0`` for each k
    and i outside ``g_mask``. Only the gradient-map columns of terms in ``v_mask`` are
    needed, so V may use a closed sub-space of a library that is not closed itself.

    Parameters
    ----------
    lib
        The shared library Theta.
    d
        Number of state variables; must equal ``len(lib.variables)`` (checked).
    v_mask, g_mask
        Bool masks (q,) or index lists of the terms allowed in V and in g (default all).
    order
        ``"feature"``: entry (i, t) of Xi at column ``i*(2d+1) + t`` (vec of Xi row-major),
        as pysindy 2.x ``ConstrainedSR3(constraint_order="feature")`` expects;
        ``"target"``: at column ``t*q + i`` (vec of Xi column-major).

    Returns
    -------
    numpy.ndarray
        Dense float64 (m, q*(2d+1)) matrix of full row rank; the right-hand side is 0.

    Examples
    --------
    >>> from symqp.library import poly
    >>> C = constraint_matrix(poly(["x"], 2), 1)
    >>> C.shape
    (3, 9)
    >>> C[1].reshape(3, 3)  # row of x: Xi_f[x] + 2 Xi_v[x**2] - Xi_g[x] = 0
    array([[ 0.,  0.,  0.],
           [ 1.,  0., -1.],
           [ 0.,  2.,  0.]])
    """
    if not isinstance(lib, Library):
        raise LibraryError(f"expected a Library, got {type(lib).__name__}")
    if d is None:
        d = lib.d
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d != lib.d:
        raise LibraryError(f"d={d!r} does not match the library's {lib.d} variables")
    if order not in ("feature", "target"):
        raise LibraryError(f"unknown order {order!r}; use 'feature' or 'target'")
    q = len(lib)
    T = 2 * d + 1
    vm = _as_mask(v_mask, q, "v_mask")
    gm = _as_mask(g_mask, q, "g_mask")
    D = lib.gradient_maps(columns=vm)

    def col(i: np.ndarray | int, t: int):
        return i * T + t if order == "feature" else t * q + i

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    idx = np.arange(q)
    r0 = 0
    for k in range(d):
        # Xi_f_k[i]
        rows.append(r0 + idx)
        cols.append(col(idx, k))
        vals.append(np.ones(q))
        # + sum_j D_k[i, j] Xi_v[j]
        Dk = D[k].tocoo()
        rows.append(r0 + Dk.row)
        cols.append(col(Dk.col, d))
        vals.append(Dk.data)
        # - Xi_g_k[i]
        rows.append(r0 + idx)
        cols.append(col(idx, d + 1 + k))
        vals.append(-np.ones(q))
        r0 += q
    off_v = np.flatnonzero(~vm)
    rows.append(r0 + np.arange(off_v.size))
    cols.append(col(off_v, d))
    vals.append(np.ones(off_v.size))
    r0 += off_v.size
    off_g = np.flatnonzero(~gm)
    for k in range(d):
        rows.append(r0 + np.arange(off_g.size))
        cols.append(col(off_g, d + 1 + k))
        vals.append(np.ones(off_g.size))
        r0 += off_g.size
    C = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, q * T)
    )
    return C.toarray()


def gradient_library_matrix(lib: Library, X: Any, *, order: str = "variable") -> np.ndarray:
    """The (n*d, q) matrix whose column j is grad theta_j at the rows of X.

    With ``order="variable"`` the rows are blocks by variable: rows ``k*n .. k*n+n-1``
    hold d/dx_k Theta(X), so ``G @ xi`` is ``grad(Theta xi)`` stacked as ``F.T.ravel()``
    for an (n, d) field F. ``order="point"`` interleaves instead (row ``p*d + k``),
    matching ``F.ravel()``. Computed as Theta(X) D_k when the library is closed, from the
    exact derivative terms otherwise.

    Examples
    --------
    >>> from symqp.library import poly
    >>> gradient_library_matrix(poly(["x", "y"], 1), [[2.0, 3.0]])
    array([[0., 1., 0.],
           [0., 0., 1.]])
    """
    if not isinstance(lib, Library):
        raise LibraryError(f"expected a Library, got {type(lib).__name__}")
    if order not in ("variable", "point"):
        raise DataError(f"unknown order {order!r}; use 'variable' or 'point'")
    theta = None
    Xc = lib._check_X(X, np.dtype(np.float64))
    n, q, d = Xc.shape[0], len(lib), lib.d
    out = np.empty((d, n, q))
    if lib.is_closed():
        theta = lib.evaluate(Xc)
        for k, Dk in enumerate(lib.gradient_maps()):
            out[k] = (Dk.T @ theta.T).T
    else:
        for k in range(d):
            lib.evaluate_derivative(Xc, k, out=out[k])
    if order == "point":
        return np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(n * d, q)
    return out.reshape(d * n, q)
