"""Mesh reference quasipotential in 2D: an ordered line integral method (OLIM).

Dahiya & Cameron (2018), "Ordered line integral methods for computing the quasi-potential".
Nodes are accepted in increasing order of U with a heap (as in Dijkstra's method); a newly
accepted node x0 updates every non-accepted node x within K grid steps by the line integral
of the geometric action along the segment (midpoint rule, the field at the midpoint taken as
the mean of the nodal values) and, through triangle updates, from segments of the accepted
front next to x0 with U linearly interpolated (the minimiser over the segment is found in
closed form for a frozen midpoint field, iterated three times). Triangle updates are done
only around the node giving the best one-point value, as in the OLIM paper. Near the
attractor U is initialised with the exact quasipotential of the linearised system,
``U = 1/2 (x - a)^T Sigma^-1 (x - a)`` with ``J Sigma + Sigma J^T + I = 0``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from scipy import linalg

from .._errors import AnalysisError
from .._optional import require
from ._common import as_model, check_box, numpy_field

__all__ = ["MeshQuasipotential", "linear_quasipotential", "mesh_quasipotential"]


@dataclass(frozen=True)
class MeshQuasipotential:
    """U on an N x N grid: ``U[i, j]`` at ``(x[i], y[j])``; inf where not reached."""

    U: np.ndarray
    x: np.ndarray
    y: np.ndarray
    attractor: np.ndarray
    K: int
    seconds: float
    compile_seconds: float

    def error(self, exact: np.ndarray, *, region: str = "sublevel") -> dict[str, float]:
        """Errors against an exact U on the same grid: max and rms, absolute and relative.

        ``region="sublevel"`` (default) compares on the largest sublevel set
        ``{U <= min of U on the box boundary}``: U increases along minimum action paths, so
        the path to such a node never leaves the box and the mesh value must converge there.
        Outside it the optimal path may leave the box, which a mesh restricted to the box
        cannot follow. ``region="all"`` compares on every reached node. Relative errors are
        divided by the largest exact value in the region.
        """
        exact = np.asarray(exact, float)
        if exact.shape != self.U.shape:
            raise AnalysisError(f"exact U has shape {exact.shape}, the mesh {self.U.shape}")
        if region not in ("sublevel", "all"):
            raise AnalysisError(f"unknown region {region!r} (choose 'sublevel' or 'all')")
        ok = np.isfinite(self.U)
        if region == "sublevel":
            edge = np.concatenate([exact[0], exact[-1], exact[:, 0], exact[:, -1]])
            ok &= exact <= float(np.min(edge))
        if not ok.any():
            raise AnalysisError("no mesh node lies in the comparison region")
        diff = np.abs(self.U[ok] - exact[ok])
        scale = max(float(np.max(np.abs(exact[ok]))), 1e-300)
        return {
            "max_abs": float(diff.max()),
            "rms_abs": float(np.sqrt(np.mean(diff**2))),
            "max_rel": float(diff.max() / scale),
            "rms_rel": float(np.sqrt(np.mean(diff**2)) / scale),
        }


def linear_quasipotential(J: np.ndarray) -> np.ndarray:
    """Matrix Q with U(x) = x^T Q x the quasipotential of ``x' = J x`` (J stable).

    Examples
    --------
    >>> import numpy as np
    >>> Q = linear_quasipotential(np.array([[-2.0, -3.0], [6.0, -1.0]]))
    >>> bool(np.allclose(Q, [[2.0, 0.0], [0.0, 1.0]]))
    True
    """
    J = np.asarray(J, float)
    if np.any(np.linalg.eigvals(J).real >= 0):
        raise AnalysisError("the attractor is not linearly stable (Jacobian has eigenvalues with Re >= 0)")
    Sigma = linalg.solve_continuous_lyapunov(J, -np.eye(len(J)))
    return 0.5 * np.linalg.inv(Sigma)


def mesh_quasipotential(
    obj: Any,
    f: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    *,
    attractor: Any,
    box: Any = None,
    N: int = 201,
    K: int | None = None,
    init_radius: float = 2.5,
    u_max: float = np.inf,
) -> MeshQuasipotential:
    """Quasipotential with respect to a stable point on an N x N grid (OLIM, Numba).

    Parameters
    ----------
    obj
        A result/system object, or None/U with ``f`` and ``variables`` given (2D only).
    attractor
        Stable equilibrium (2,) (need not be a grid node).
    box
        ``(2, 2)`` region; defaults to the object's box.
    N
        Grid points per axis (>= 3).
    K
        Update radius in grid steps; default ``max(4, round(N / 60))``.
    init_radius
        Nodes within ``init_radius`` grid steps of the attractor get the linearised U.
    u_max
        Stop once the accepted value exceeds this.

    Examples
    --------
    >>> import sympy as sp, numpy as np
    >>> x, y = sp.symbols("x y")
    >>> m = mesh_quasipotential(None, [-2*x - 3*y, 6*x - y], [x, y], attractor=[0, 0],
    ...                         box=[[-1, 1], [-1, 1]], N=41)
    >>> X, Y = np.meshgrid(m.x, m.y, indexing="ij")
    >>> bool(m.error(2*X**2 + Y**2)["max_rel"] < 0.01)
    True
    """
    model = as_model(obj, f, variables, need_f=True)
    if model.d != 2:
        raise AnalysisError(f"the mesh quasipotential is for 2D systems, got d = {model.d}")
    if not isinstance(N, (int, np.integer)) or N < 3:
        raise AnalysisError(f"grid size N must be an integer >= 3, got {N!r}")
    if box is None:
        box = model.box
    if box is None:
        raise AnalysisError("no box given for the mesh")
    bx = check_box(box, 2)
    a = np.asarray(attractor, float).ravel()
    if a.shape != (2,) or not np.all(np.isfinite(a)):
        raise AnalysisError(f"attractor must be a finite 2D point, got {attractor!r}")
    if np.any(a < bx[:, 0]) or np.any(a > bx[:, 1]):
        raise AnalysisError(f"attractor {a.tolist()} lies outside the box")
    if K is None:
        K = max(4, round(N / 60))
    if K < 1:
        raise AnalysisError(f"K must be >= 1, got {K}")
    N = int(N)
    xs = np.linspace(bx[0, 0], bx[0, 1], N)
    ys = np.linspace(bx[1, 0], bx[1, 1], N)
    hx, hy = xs[1] - xs[0], ys[1] - ys[0]
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    F = numpy_field(model)
    with np.errstate(all="ignore"):
        FG = F(np.stack([X.ravel(), Y.ravel()], axis=1))
    if not np.all(np.isfinite(FG)):
        raise AnalysisError("f is not finite everywhere on the grid")
    fx = np.ascontiguousarray(FG[:, 0].reshape(N, N))
    fy = np.ascontiguousarray(FG[:, 1].reshape(N, N))
    Jf = sp.Matrix(model.f).jacobian(model.variables).subs(dict(zip(model.variables, a)))
    J = np.array(Jf.evalf(), dtype=float)
    if np.linalg.norm(F(a[None])[0]) > 1e-8 * max(1.0, np.abs(FG).max()):
        raise AnalysisError(f"f does not vanish at the attractor {a.tolist()}")
    Q = linear_quasipotential(J)
    D = np.stack([X - a[0], Y - a[1]], -1)
    r2 = (D[..., 0] / hx) ** 2 + (D[..., 1] / hy) ** 2
    near = r2 <= init_radius**2
    U = np.full(N * N, np.inf)
    status = np.zeros(N * N, np.int8)
    Ulin = np.einsum("...i,ij,...j->...", D, Q, D)
    U[near.ravel()] = Ulin[near]
    status[near.ravel()] = 1
    require("numba")
    t0 = time.perf_counter()
    from ._olim_numba import olim_sweep

    # compile (or load from the on-disk cache) on a tiny problem so timings exclude the JIT
    olim_sweep(np.array([0.0, np.inf, np.inf, np.inf]), np.array([1, 0, 0, 0], np.int8),
               np.zeros((2, 2)), np.zeros((2, 2)), 0.0, 0.0, 1.0, 1.0, 1, np.inf)
    t1 = time.perf_counter()
    olim_sweep(U, status, fx, fy, float(xs[0]), float(ys[0]), float(hx), float(hy), int(K),
               float(u_max))
    t2 = time.perf_counter()
    Ug = U.reshape(N, N)
    Ug[status.reshape(N, N) != 2] = np.inf
    return MeshQuasipotential(Ug, xs, ys, a, int(K), t2 - t1, t1 - t0)
