"""Snapshot pairs: sampling against scipy references, files, validation of every bad input."""

import doctest
import importlib
import os
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.stats import kstest

from symqp._errors import DataError
from symqp.data import (
    Pairs,
    load_pairs,
    pairs_from_arrays,
    pairs_from_csv,
    sample_pairs,
    save_pairs,
    simulate_sde,
)
from symqp.systems import archetypal3d, double_well, linear_nongradient

A_LIN = np.array([[-2.0, -1.0], [2.0, -1.0]])  # linear_nongradient(a=1)


@pytest.mark.parametrize(
    "module", ["symqp.data._pairs", "symqp.data._sampling", "symqp.data._files", "symqp.data._sde"]
)
def test_doctests(module):
    res = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert res.attempted > 0
    assert res.failed == 0


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


# ------------------------------------------------------------------ sampling
@pytest.mark.parametrize("dt", [0.1, 0.123, 0.004])
def test_sample_pairs_matches_solve_ivp(dt):
    """Every snapshot and its partner a time h later agree with a tight DOP853 solution."""
    s = archetypal3d()
    n_traj, n_pairs, h = 6, 8, 0.01
    p = sample_pairs(s, n_traj=n_traj, n_pairs=n_pairs, h=h, dt=dt, seed=3)
    assert p.n == n_traj * n_pairs and p.d == 3 and p.names == ("x", "y", "z") and p.h == h
    np.testing.assert_array_equal(p.traj, np.repeat(np.arange(n_traj), n_pairs))
    f = s.f_numpy()
    x0 = p.x0.reshape(n_traj, n_pairs, 3)
    xh = p.xh.reshape(n_traj, n_pairs, 3)
    t_rel = dt * np.arange(n_pairs)  # snapshot times relative to t_1
    t_eval = np.sort(np.concatenate([t_rel, t_rel + h]))
    for i in range(n_traj):
        sol = solve_ivp(
            lambda _t, v: f(v[None, :])[0], (0.0, t_eval[-1]), x0[i, 0], method="DOP853",
            t_eval=t_eval, rtol=1e-12, atol=1e-13,
        )
        ys = sol.y.T
        np.testing.assert_allclose(x0[i], ys[np.searchsorted(t_eval, t_rel)], atol=1e-8, rtol=0)
        np.testing.assert_allclose(xh[i], ys[np.searchsorted(t_eval, t_rel + h)], atol=1e-8, rtol=0)


def test_sample_pairs_initial_states_are_uniform_in_the_box():
    """Run a linear flow backwards exactly (matrix exponential) from t_1 to recover x(0)."""
    s = linear_nongradient()
    dt, h = 0.1, 0.01
    p = sample_pairs(s, n_traj=600, n_pairs=2, h=h, dt=dt, seed=11)
    first = p.x0[::2]
    x_init = first @ expm(-A_LIN * dt).T
    assert np.all(np.abs(x_init) <= 1 + 1e-9)
    for k in range(2):
        assert kstest((x_init[:, k] + 1) / 2, "uniform").pvalue > 1e-3
    # the partner of every snapshot is the exact flow map over h
    np.testing.assert_allclose(p.xh, p.x0 @ expm(A_LIN * h).T, atol=1e-13, rtol=0)
    # successive snapshots are dt apart
    np.testing.assert_allclose(p.x0[1::2], first @ expm(A_LIN * dt).T, atol=1e-12, rtol=0)


def _rk4_matrix(M, s):
    """One classical RK4 step of size s for x' = Mx is the matrix Taylor polynomial of degree 4."""
    S = M * s
    return np.eye(len(M)) + S + S @ S / 2 + S @ S @ S / 6 + S @ S @ S @ S / 24


def test_sample_pairs_uses_five_rk4_steps_of_h_over_5():
    """On a linear flow RK4 is a known matrix: pairs use exactly 5 steps of h/5, and each dt
    interval the fewest equal steps not longer than h/5."""
    h, dt = 0.5, 0.75
    p = sample_pairs(linear_nongradient(), n_traj=4, n_pairs=3, h=h, dt=dt, seed=2)
    R_h = np.linalg.matrix_power(_rk4_matrix(A_LIN, h / 5), 5)
    np.testing.assert_allclose(p.xh, p.x0 @ R_h.T, atol=1e-14, rtol=0)
    assert np.abs(p.xh - p.x0 @ expm(A_LIN * h).T).max() > 1e-7  # the check can tell them apart
    R_dt = np.linalg.matrix_power(_rk4_matrix(A_LIN, dt / 8), 8)  # ceil(0.75 / 0.1) = 8 steps
    x0 = p.x0.reshape(4, 3, 2)
    np.testing.assert_allclose(x0[:, 1:], x0[:, :-1] @ R_dt.T, atol=1e-14, rtol=0)


def test_sample_pairs_seed_noise_and_box_override():
    s = linear_nongradient()
    kw = dict(n_traj=400, n_pairs=10, h=0.01, dt=0.05)
    a = sample_pairs(s, seed=5, **kw)
    b = sample_pairs(s, seed=5, **kw)
    c = sample_pairs(s, seed=6, **kw)
    np.testing.assert_array_equal(a.x0, b.x0)
    assert not np.allclose(a.x0, c.x0)
    noisy = sample_pairs(s, seed=5, noise=0.02, **kw)
    for clean, dirty in ((a.x0, noisy.x0), (a.xh, noisy.xh)):
        e = dirty - clean
        assert abs(e.std() - 0.02) < 0.002 and abs(e.mean()) < 0.002
    boxed = sample_pairs(s, box=[[5, 6], [5, 6]], n_traj=20, n_pairs=1, h=0.01, dt=1e-6)
    assert np.all((boxed.x0 > 4.9) & (boxed.x0 < 6.1))


def test_unnamed_variables_are_counted_from_one():
    from symqp.data import HamiltonianData, StationaryData
    from symqp.data._pairs import default_names

    assert default_names(1) == ("x",) and default_names(3) == ("x1", "x2", "x3")
    z = np.zeros((4, 1))
    assert Pairs(z, z, 0.1).names == ("x",)
    assert StationaryData(np.zeros((4, 2)), np.zeros((4, 2)), 0.1).names == ("x1", "x2")
    assert HamiltonianData(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), 0.1).names == ("q1", "q2")


@pytest.mark.parametrize("bad", ["0.01", True, np.array([0.01, 0.02])])
def test_steps_must_be_numbers_everywhere(bad):
    from symqp.data import HamiltonianData, sample_stationary

    z = np.zeros((1, 3, 1))
    for call in (lambda: sample_pairs(linear_nongradient(), n_traj=2, n_pairs=2, h=bad, dt=0.1),
                 lambda: simulate_sde(linear_nongradient(), np.zeros((2, 2)), eps=0.1, dt=bad, n_steps=2),
                 lambda: sample_stationary(lambda X: -X, 4, 0.5, dt=bad, box=[[-1, 1]]),
                 lambda: HamiltonianData(z, z, bad)):
        with pytest.raises(DataError, match="must be a positive number"):
            call()


def test_sample_pairs_accepts_a_callable_and_hamiltonian_systems():
    p = sample_pairs(lambda X: X @ A_LIN.T, box=[[-1, 1], [-1, 1]], n_traj=5, n_pairs=3, h=0.02, dt=0.1)
    np.testing.assert_allclose(p.xh, p.x0 @ expm(A_LIN * 0.02).T, atol=1e-12)
    assert p.names == ("x1", "x2")
    dw = double_well()
    q = sample_pairs(dw, n_traj=20, n_pairs=5, h=0.01, dt=0.05)
    assert q.names == ("q", "p")

    def energy(X):
        qq, pp = X[:, 0], X[:, 1]
        return pp**2 / 2 - 1 + 2 * qq + 3 * qq**2 - 4 * qq**3 + qq**4

    np.testing.assert_allclose(energy(q.xh), energy(q.x0), atol=1e-9)


def test_sample_pairs_progress_is_reported():
    calls = []
    sample_pairs(linear_nongradient(), n_traj=3, n_pairs=4, h=0.01, dt=0.1,
                 progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(n_traj=0), "n_traj must be a positive integer"),
        (dict(n_traj=2.5), "n_traj must be a positive integer"),
        (dict(n_pairs=True), "n_pairs must be a positive integer"),
        (dict(h=0.0), "h must be a positive"),
        (dict(h=-1.0), "h must be a positive"),
        (dict(dt=float("nan")), "dt must be a positive"),
        (dict(dt="a"), "dt must be a positive"),
        (dict(noise=-0.1), "noise must be a non-negative"),
        (dict(box=[[-1, 1]]), "box must have shape"),
        (dict(box=[[1, -1], [0, 1]]), "low < high"),
    ],
)
def test_sample_pairs_bad_arguments(kw, match):
    args = dict(n_traj=3, n_pairs=3, h=0.01, dt=0.1) | kw
    with pytest.raises(DataError, match=match) as info:
        sample_pairs(linear_nongradient(), **args)
    _one_line(info)


def test_sample_pairs_bad_system_and_divergence():
    with pytest.raises(DataError, match="expected a System") as info:
        sample_pairs("archetypal3d", n_traj=3, n_pairs=3, h=0.01, dt=0.1)
    _one_line(info)
    with pytest.raises(DataError, match="a box"):
        sample_pairs(lambda X: -X, n_traj=3, n_pairs=3, h=0.01, dt=0.1)
    with pytest.raises(DataError, match="returned shape"):
        sample_pairs(lambda X: X[:, :1], box=[[0, 1], [0, 1]], n_traj=3, n_pairs=3, h=0.01, dt=0.1)
    with pytest.raises(DataError, match="diverged") as info:
        sample_pairs(lambda X: X**3, box=[[5, 6], [5, 6]], n_traj=3, n_pairs=3, h=0.1, dt=1.0)
    _one_line(info)


# ------------------------------------------------------------------ Pairs
def _arrays(n=6, d=2, seed=0):
    r = np.random.default_rng(seed)
    return r.normal(size=(n, d)), r.normal(size=(n, d))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda a, b: Pairs(a[:, 0], b[:, 0], 0.1), r"x0 must have shape \(n, d\)"),
        (lambda a, b: Pairs(a, b[:-1], 0.1), "xh has shape"),
        (lambda a, b: Pairs(a, b[:, :1], 0.1), "xh has shape"),
        (lambda a, b: Pairs(a[:2], b[:2], 0.1), r"at least d \+ 1 = 3 pairs, got 2"),
        (lambda a, b: Pairs(a, b, 0.0), "h must be a positive finite"),
        (lambda a, b: Pairs(a, b, -0.1), "h must be a positive finite"),
        (lambda a, b: Pairs(a, b, float("inf")), "h must be a positive finite"),
        (lambda a, b: Pairs(a, b, "0.1"), "h must be a positive number"),
        (lambda a, b: Pairs(a, b, [0.1, 0.2]), "h must be a positive number"),
        (lambda a, b: Pairs(a.astype(str), b, 0.1), "x0 must be a numeric"),
        (lambda a, b: Pairs(a, b > 0, 0.1), "xh must be a numeric"),
        (lambda a, b: Pairs(a, b, 0.1, names=("x",)), "got 1 names"),
        (lambda a, b: Pairs(a, b, 0.1, names=("x", "x")), "distinct"),
        (lambda a, b: Pairs(a, b, 0.1, names=("x", "y z")), "identifiers"),
        (lambda a, b: Pairs(a, b, 0.1, traj=np.arange(5)), r"traj must have shape \(6,\)"),
        (lambda a, b: Pairs(a, b, 0.1, traj=np.linspace(0, 1, 6)), "integer trajectory ids"),
        (lambda a, b: Pairs(a, b, 0.1, traj=np.array(list("abcdef"))), "integer trajectory ids"),
        (lambda a, b: Pairs(np.where(np.eye(6, 2) > 0, np.nan, a), b, 0.1), "x0 has 2 rows with NaN/Inf"),
        (lambda a, b: Pairs(a, np.where(np.eye(6, 2) > 0, np.inf, b), 0.1), "nan_policy='drop'"),
        (lambda a, b: pairs_from_arrays(a, b, 0.1, nan_policy="ignore"), "nan_policy must be"),
    ],
)
def test_pairs_reject_bad_input(make, match):
    a, b = _arrays()
    with pytest.raises(DataError, match=match) as info:
        make(a, b)
    _one_line(info)


def test_pairs_are_immutable_copies_with_a_summary():
    a, b = _arrays()
    p = Pairs(a, b, 0.5, names="u v", traj=[0, 0, 1, 1, 2, 2])
    a[0, 0] = 99.0
    assert p.x0[0, 0] != 99.0
    with pytest.raises(ValueError):
        p.x0[0, 0] = 1.0
    assert (p.n, p.d, len(p), p.n_traj, p.names) == (6, 2, 6, 3, ("u", "v"))
    assert repr(p) == "Pairs(n=6, d=2, h=0.5, names=('u', 'v'), n_traj=3)"
    q = Pairs(a.astype(np.float32), b.astype(np.int32), np.float32(0.25))
    assert q.x0.dtype == np.float64 and q.h == 0.25 and q.names == ("x1", "x2")


def test_pairs_from_arrays_drops_nan_rows_with_a_warning():
    a, b = _arrays(8)
    a[1, 0] = np.nan
    b[5, 1] = -np.inf
    traj = np.arange(8)
    with pytest.warns(UserWarning, match="dropped 2 of 8 pairs"):
        p = pairs_from_arrays(a, b, 0.1, traj=traj, nan_policy="drop")
    np.testing.assert_array_equal(p.traj, [0, 2, 3, 4, 6, 7])
    np.testing.assert_array_equal(p.x0, a[p.traj])
    with pytest.raises(DataError, match="NaN/Inf"):
        pairs_from_arrays(a, b, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clean data: no warning
        pairs_from_arrays(*_arrays(), 0.1, nan_policy="drop")


def test_split_by_trajectory():
    a, b = _arrays(40)
    traj = np.repeat(np.arange(10), 4)
    p = Pairs(a, b, 0.1, traj=traj)
    train, test = p.split(0.7, seed=3)
    tr, te = set(train.traj.tolist()), set(test.traj.tolist())
    assert len(tr) == 7 and len(te) == 3 and not tr & te and tr | te == set(range(10))
    assert train.n == 28 and test.n == 12
    # every pair goes to exactly one side, unchanged
    rows = {tuple(r) for r in np.vstack([train.x0, test.x0])}
    assert rows == {tuple(r) for r in a}
    again, _ = p.split(0.7, seed=3)
    np.testing.assert_array_equal(again.traj, train.traj)
    other, _ = p.split(0.7, seed=4)
    assert set(other.traj.tolist()) != tr or not np.array_equal(other.x0, train.x0)
    # without traj: split by pair
    u, v = Pairs(a, b, 0.1).split(0.5)
    assert u.n == v.n == 20
    for frac in (0, 1, 1.5, "x"):
        with pytest.raises(DataError, match="frac"):
            p.split(frac)
    with pytest.raises(DataError, match="single trajectory"):
        Pairs(a, b, 0.1, traj=np.zeros(40, int)).split()


def test_subset_validation():
    p = Pairs(*_arrays(), 0.1)
    assert p.subset([0, 2, 4]).n == 3
    with pytest.raises(DataError, match="mask must have shape"):
        p.subset(np.ones(3, bool))
    with pytest.raises(DataError, match="out of range"):
        p.subset([0, 1, 9])
    with pytest.raises(DataError, match="boolean mask or an integer"):
        p.subset([0.5])


# ------------------------------------------------------------------ npz files
def test_npz_round_trip(tmp_path):
    p = sample_pairs(archetypal3d(), n_traj=4, n_pairs=3, h=0.01, dt=0.1, seed=1)
    f = tmp_path / "sub" / "pairs.npz"
    save_pairs(p, f)
    q = load_pairs(f)
    np.testing.assert_array_equal(q.x0, p.x0)
    np.testing.assert_array_equal(q.xh, p.xh)
    np.testing.assert_array_equal(q.traj, p.traj)
    assert (q.h, q.names) == (p.h, p.names)
    with np.load(f, allow_pickle=False) as z:
        assert set(z.files) == {"x0", "xh", "h", "names", "traj"}
    # a minimal file written by hand: default names, no traj
    g = tmp_path / "min.npz"
    np.savez(g, x0=p.x0, xh=p.xh, h=0.01)
    r = load_pairs(g)
    assert r.names == ("x1", "x2", "x3") and r.traj is None
    assert [x.name for x in f.parent.iterdir()] == ["pairs.npz"]


E = np.arange(10.0).reshape(5, 2)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        (dict(x0=E, xh=E), "missing key 'h'"),
        (dict(xh=E, h=0.1), "missing key 'x0'"),
        (dict(x0=E, xh=E[:4], h=0.1), "xh has shape"),
        (dict(x0=E, xh=E, h=-0.1), "h must be a positive finite"),
        (dict(x0=E, xh=E, h=0.0), "h must be a positive finite"),
        (dict(x0=E, xh=E, h=np.array([0.1, 0.2])), "'h' must be a scalar"),
        (dict(x0=E, xh=E, h="0.1"), "h must be a positive number"),
        (dict(x0=E.astype(str), xh=E, h=0.1), "x0 must be a numeric"),
        (dict(x0=E, xh=E, h=0.1, names=np.array(["x", "y", "z"])), "got 3 names"),
        (dict(x0=E, xh=E, h=0.1, names=np.arange(2)), "'names' must be a 1-D array of strings"),
        (dict(x0=E, xh=E, h=0.1, names=np.array(["x", "x"])), "distinct"),
        (dict(x0=E, xh=E, h=0.1, traj=np.arange(4)), "traj must have shape"),
        (dict(x0=E, xh=np.full((5, 2), np.nan), h=0.1), "NaN/Inf"),
        (dict(x0=np.eye(2), xh=np.eye(2), h=0.1), "at least d"),
        (dict(x0=np.array([None, 1.0], dtype=object), xh=E, h=0.1), "object .pickled. arrays"),
    ],
)
def test_load_pairs_rejects_bad_files(tmp_path, arrays, match):
    f = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=match) as info:
        load_pairs(f)
    assert _one_line(info).startswith("bad.npz: ")


def test_load_pairs_unreadable_and_drop(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_pairs(tmp_path / "nothing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip archive")
    with pytest.raises(DataError, match="not a .npz archive") as info:
        load_pairs(junk)
    _one_line(info)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.eye(3))  # a plain .npy under an .npz name
    with pytest.raises(DataError, match="not a .npz archive"):
        load_pairs(npy)
    x0 = np.arange(12.0).reshape(6, 2)
    xh = x0 + 1
    xh[2, 0] = np.nan
    f = _npz(tmp_path / "nan.npz", x0=x0, xh=xh, h=0.1, traj=np.arange(6))
    with pytest.warns(UserWarning, match="dropped 1 of 6"):
        p = load_pairs(f, nan_policy="drop")
    np.testing.assert_array_equal(p.traj, [0, 1, 3, 4, 5])


def test_save_pairs_is_atomic(tmp_path, monkeypatch):
    p = Pairs(*_arrays(), 0.1)
    target = tmp_path / "out.npz"
    with pytest.raises(DataError, match="expects a Pairs"):
        save_pairs({"x0": 1}, target)
    assert not target.exists()
    save_pairs(p, target)
    before = target.read_bytes()

    def broken(fh, **_):
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(DataError, match="cannot write pairs to .*out.npz: disk full") as info:
        save_pairs(Pairs(*_arrays(seed=1), 0.2), target)
    _one_line(info)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.npz"]
    with pytest.raises(DataError, match="it is a folder"):
        save_pairs(p, tmp_path)


# ------------------------------------------------------------------ CSV trajectories
def _write_csv(path, rows, header="traj,t,x,y"):
    lines = [header] + [",".join(f"{v!r}" if isinstance(v, float) else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _linear_csv_rows(step=0.05, n_t=11, n_traj=3, seed=0):
    x_init = np.random.default_rng(seed).uniform(-1, 1, size=(n_traj, 2))
    rows = []
    for i, xi in enumerate(x_init):
        for k in range(n_t):
            t = k * step
            xt = expm(A_LIN * t) @ xi
            rows.append([i, t, float(xt[0]), float(xt[1])])
    return rows


@pytest.mark.parametrize("k", [1, 3])
def test_csv_round_trip_against_the_exact_flow(tmp_path, k):
    rows = _linear_csv_rows()
    order = np.random.default_rng(1).permutation(len(rows))
    f = _write_csv(tmp_path / "traj.csv", [rows[i] for i in order])  # any row order
    h = 0.05 * k
    p = pairs_from_csv(f, h)
    assert p.names == ("x", "y") and p.h == h
    assert p.n == 3 * (11 - k) and p.n_traj == 3
    np.testing.assert_allclose(p.xh, p.x0 @ expm(A_LIN * h).T, atol=1e-12)
    # the same data through save/load
    save_pairs(p, tmp_path / "p.npz")
    q = load_pairs(tmp_path / "p.npz")
    np.testing.assert_array_equal(q.x0, p.x0)
    # a chosen subset / order of columns
    r = pairs_from_csv(f, h, columns=["y"])
    assert r.names == ("y",)
    np.testing.assert_array_equal(r.x0[:, 0], p.x0[:, 1])


def test_csv_nan_policy(tmp_path):
    rows = _linear_csv_rows(n_traj=1)
    rows[4][2] = float("nan")
    f = _write_csv(tmp_path / "nan.csv", rows)
    with pytest.raises(DataError, match="NaN/Inf"):
        pairs_from_csv(f, 0.05)
    with pytest.warns(UserWarning, match="dropped 2 of 10"):
        p = pairs_from_csv(f, 0.05, nan_policy="drop")
    assert p.n == 8


@pytest.mark.parametrize(
    ("content", "h", "match"),
    [
        ("traj,t,x\n0,0,1\n0,0.1,2\n0,0.25,3\n0,0.35,4\n", 0.1, "non-uniform time steps"),
        ("traj,t,x\n0,0,1\n0,0.1,2\n0,0.2,3\n0,0.3,4\n", 0.15, "not a positive multiple"),
        ("traj,t,x\n0,0,1\n0,0.1,2\n0,0.2,3\n0,0.3,4\n", 0.05, "not a positive multiple"),
        ("traj,t,x\n0,0,1\n0,0.1,2\n0,0.2,3\n0,0.3,4\n", -0.1, "h must be a positive finite"),
        ("traj,t,x\n0,0,1\n0,0.1,2\n0,0.2,3\n", 0.5, "too short"),
        ("t,x\n0,1\n0.1,2\n", 0.1, "missing column 'traj'"),
        ("traj,x\n0,1\n0,2\n", 0.1, "missing column 't'"),
        ("traj,t\n0,0\n0,0.1\n", 0.1, "no state columns"),
        ("traj,t,x,x\n0,0,1,1\n", 0.1, "duplicate column"),
        ("traj,t,x\n0,0,1\n0,0.1,abc\n", 0.1, "line 3: 'abc' is not a number"),
        ("traj,t,x\n0,0,1\n0,0.1\n", 0.1, "line 3 has 2 fields"),
        ("", 0.1, "empty file"),
        ("traj,t,x\n", 0.1, "no data rows"),
        ("traj,t,x\n0,0,1\n1,0,2\n", 0.1, "single row"),
        ("traj,t,x\n0,0,1\n0,0,2\n0,0.1,3\n", 0.1, "repeated time"),
        ("traj,t,x\n0.5,0,1\n0.5,0.1,2\n", 0.1, "integer trajectory ids"),
        ("traj,t,x\n0,0,1\n0,nan,2\n", 0.1, "must not contain NaN"),
        ("traj,t,x,y\n0,0,1,1\n0,0.1,2,2\n0,0.2,3,3\n", 0.1, "at least d"),
    ],
)
def test_csv_rejects_bad_files(tmp_path, content, h, match):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        pairs_from_csv(f, h)
    _one_line(info)


def test_csv_unknown_column_and_missing_file(tmp_path):
    f = _write_csv(tmp_path / "t.csv", _linear_csv_rows(n_traj=1))
    with pytest.raises(DataError, match="unknown column 'z'"):
        pairs_from_csv(f, 0.05, columns=["x", "z"])
    with pytest.raises(DataError, match="no such file"):
        pairs_from_csv(tmp_path / "none.csv", 0.05)


# ------------------------------------------------------------------ SDE paths
def test_simulate_sde_without_noise_is_explicit_euler():
    x0 = np.random.default_rng(0).uniform(-1, 1, size=(5, 2))
    out = simulate_sde(linear_nongradient(), x0, eps=0.0, dt=0.01, n_steps=7)
    want = x0.copy()
    for _ in range(7):
        want = want + 0.01 * want @ A_LIN.T
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-15)
    rec = simulate_sde(lambda X: X @ A_LIN.T, x0, eps=0.0, dt=0.01, n_steps=7, record_every=3)
    assert rec.shape == (3, 5, 2)
    np.testing.assert_array_equal(rec[0], x0)


def test_simulate_sde_ou_stationary_variance():
    """dX = -X dt + sqrt(eps) dW has stationary variance eps / 2 (Euler: eps / (2 - dt))."""
    eps, dt = 0.2, 0.01
    out = simulate_sde(lambda X: -X, np.zeros((4000, 1)), eps=eps, dt=dt, n_steps=800, seed=4)
    var = out.var()
    assert abs(var - eps / (2 - dt)) < 0.1 * eps / 2
    again = simulate_sde(lambda X: -X, np.zeros((4000, 1)), eps=eps, dt=dt, n_steps=800, seed=4)
    np.testing.assert_array_equal(out, again)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(x0=np.zeros((3, 3))), r"x0 must have shape \(n, 2\)"),
        (dict(x0=np.full((3, 2), np.nan)), "NaN/Inf"),
        (dict(x0=[["a", "b"]]), "numeric"),
        (dict(eps=-1.0), "eps must be a non-negative"),
        (dict(dt=0.0), "dt must be a positive"),
        (dict(n_steps=1.5), "n_steps must be a non-negative integer"),
        (dict(record_every=0), "record_every must be a positive integer"),
        (dict(dt=10.0, n_steps=400), "diverged"),
    ],
)
def test_simulate_sde_bad_input(kw, match):
    args = dict(x0=np.zeros((3, 2)), eps=0.1, dt=0.01, n_steps=5) | kw
    x0 = args.pop("x0")
    with pytest.raises(DataError, match=match) as info:
        simulate_sde(linear_nongradient(), x0, **args)
    _one_line(info)


# ------------------------------------------------------------------ property: npz round-trip
@st.composite
def _pairs_strategy(draw):
    d = draw(st.integers(1, 4))
    n = draw(st.integers(d + 1, 12))
    finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
    x0 = draw(arrays(np.float64, (n, d), elements=finite))
    xh = draw(arrays(np.float64, (n, d), elements=finite))
    h = draw(st.floats(1e-9, 1e6, allow_nan=False, allow_infinity=False))
    traj = draw(st.none() | arrays(np.int64, (n,), elements=st.integers(0, 5)))
    return Pairs(x0, xh, h, names=tuple(f"v{k}" for k in range(d)), traj=traj)


@settings(max_examples=30, deadline=None)
@given(_pairs_strategy())
def test_npz_round_trip_property(p):
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "p.npz")
        save_pairs(p, f)
        q = load_pairs(f)
    np.testing.assert_array_equal(q.x0, p.x0)
    np.testing.assert_array_equal(q.xh, p.xh)
    assert q.h == p.h and q.names == p.names
    if p.traj is None:
        assert q.traj is None
    else:
        np.testing.assert_array_equal(q.traj, p.traj)
