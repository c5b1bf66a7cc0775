"""Numba kernel of the ordered line integral method (imported lazily; needs numba).

Only :mod:`symqp.analysis._mesh` imports this module, inside a function, so that
``import symqp.analysis`` stays free of numba. A hand-written kernel is needed because the
method is a Dijkstra-like sweep with data-dependent updates that cannot be vectorised; a
binary heap with decrease-key keeps each update O(log n).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

FAR, CONSIDERED, ACCEPTED = 0, 1, 2


@nb.njit(cache=True, inline="always")
def _sift_up(heap, pos, key, i):
    k = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        kp = heap[parent]
        if key[kp] <= key[k]:
            break
        heap[i] = kp
        pos[kp] = i
        i = parent
    heap[i] = k
    pos[k] = i


@nb.njit(cache=True, inline="always")
def _sift_down(heap, pos, key, i, n):
    k = heap[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and key[heap[c + 1]] < key[heap[c]]:
            c += 1
        if key[heap[c]] >= key[k]:
            break
        heap[i] = heap[c]
        pos[heap[c]] = i
        i = c
    heap[i] = k
    pos[k] = i


@nb.njit(cache=True, inline="always")
def _seg_action(px, py, wx, wy):
    # midpoint-rule geometric action of the segment p with field value w at its midpoint
    return math.sqrt(wx * wx + wy * wy) * math.sqrt(px * px + py * py) - (wx * px + wy * py)


@nb.njit(cache=True)
def _triangle(x0x, x0y, u0, f0x, f0y, x1x, x1y, u1, f1x, f1y, xx, xy, fxx, fxy):
    """min over lambda in [0, 1] of U_lambda + S(x_lambda -> x); inf if no interior minimum."""
    qx, qy = x1x - x0x, x1y - x0y
    px, py = xx - x0x, xy - x0y
    A = qx * qx + qy * qy
    B = px * qx + py * qy
    C = px * px + py * py
    D = A * C - B * B
    D = max(D, 0.0)
    du = u1 - u0
    lam = 0.5
    for _ in range(3):
        wx = 0.5 * (fxx + (1.0 - lam) * f0x + lam * f1x)
        wy = 0.5 * (fxy + (1.0 - lam) * f0y + lam * f1y)
        c = du + wx * qx + wy * qy
        w2 = wx * wx + wy * wy
        den = A * w2 - c * c
        if den <= 0.0:
            return np.inf
        t = -c * math.sqrt(D / den) if c != 0.0 else 0.0
        lam = (t + B) / A
        if lam <= 0.0 or lam >= 1.0:
            return np.inf
    wx = 0.5 * (fxx + (1.0 - lam) * f0x + lam * f1x)
    wy = 0.5 * (fxy + (1.0 - lam) * f0y + lam * f1y)
    return u0 + lam * du + _seg_action(px - lam * qx, py - lam * qy, wx, wy)


@nb.njit(cache=True)
def olim_sweep(U, status, fx, fy, x0, y0, hx, hy, K, u_max):
    """Run the ordered sweep in place. ``U``/``status`` are flat (nx*ny), row = x index."""
    nx = fx.shape[0]
    ny = fx.shape[1]
    n = nx * ny
    heap = np.empty(n, np.int64)
    pos = np.full(n, -1, np.int64)
    best1 = np.full(n, np.inf)
    src = np.full(n, -1, np.int64)
    size = 0
    for k in range(n):
        if status[k] == CONSIDERED:
            heap[size] = k
            pos[k] = size
            size += 1
            _sift_up(heap, pos, U, size - 1)
    K2 = K * K
    while size > 0:
        k0 = heap[0]
        size -= 1
        if size > 0:
            heap[0] = heap[size]
            pos[heap[0]] = 0
            _sift_down(heap, pos, U, 0, size)
        pos[k0] = -1
        status[k0] = ACCEPTED
        u0 = U[k0]
        if u0 > u_max:
            break
        i0 = k0 // ny
        j0 = k0 - i0 * ny
        X0x = x0 + i0 * hx
        X0y = y0 + j0 * hy
        f0x = fx[i0, j0]
        f0y = fy[i0, j0]
        for di in range(-K, K + 1):
            i = i0 + di
            if i < 0 or i >= nx:
                continue
            for dj in range(-K, K + 1):
                if di * di + dj * dj > K2 or (di == 0 and dj == 0):
                    continue
                j = j0 + dj
                if j < 0 or j >= ny:
                    continue
                k = i * ny + j
                if status[k] == ACCEPTED:
                    continue
                Xx = x0 + i * hx
                Xy = y0 + j * hy
                fxx = fx[i, j]
                fxy = fy[i, j]
                q1 = u0 + _seg_action(Xx - X0x, Xy - X0y, 0.5 * (f0x + fxx), 0.5 * (f0y + fxy))
                cand = q1
                if q1 < best1[k]:
                    best1[k] = q1
                    src[k] = k0
                    # triangles (x0, x1) with x1 an accepted grid neighbour of x0
                    for ai in range(-1, 2):
                        i1 = i0 + ai
                        if i1 < 0 or i1 >= nx:
                            continue
                        for aj in range(-1, 2):
                            if ai == 0 and aj == 0:
                                continue
                            j1 = j0 + aj
                            if j1 < 0 or j1 >= ny:
                                continue
                            k1 = i1 * ny + j1
                            if status[k1] != ACCEPTED:
                                continue
                            if (i - i1) * (i - i1) + (j - j1) * (j - j1) > K2:
                                continue
                            v = _triangle(X0x, X0y, u0, f0x, f0y, x0 + i1 * hx, y0 + j1 * hy,
                                          U[k1], fx[i1, j1], fy[i1, j1], Xx, Xy, fxx, fxy)
                            cand = min(cand, v)
                else:
                    ks = src[k]
                    if ks >= 0:
                        i1 = ks // ny
                        j1 = ks - i1 * ny
                        if abs(i1 - i0) <= 1 and abs(j1 - j0) <= 1:
                            v = _triangle(x0 + i1 * hx, y0 + j1 * hy, U[ks], fx[i1, j1],
                                          fy[i1, j1], X0x, X0y, u0, f0x, f0y, Xx, Xy, fxx, fxy)
                            cand = min(cand, v)
                if cand < U[k]:
                    U[k] = cand
                    if status[k] == FAR:
                        status[k] = CONSIDERED
                        heap[size] = k
                        pos[k] = size
                        size += 1
                        _sift_up(heap, pos, U, size - 1)
                    else:
                        _sift_up(heap, pos, U, pos[k])
    return size
