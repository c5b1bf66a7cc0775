"""Training step time of the neural learners on whatever device is present.

The neural orthogonal decomposition (float32 Adam steps, the default recipe) is trained on
Example 1 data for ``a`` and for ``b`` steps without L-BFGS; the time per step is the
difference of the two wall times over ``b - a`` (set-up, data transfer and the first-call
costs cancel). Measured on the CPU (the peer) and, when torch sees a CUDA device, on it;
the same for the Hamiltonian potential network (float64, Bhat's double well).

Figures: ``gpu.cpu_ms_per_step``, ``gpu.device_ms_per_step`` (the CUDA device when
present, else the CPU figure), ``gpu.device_is_cuda`` (1 or 0), ``gpu.speedup_vs_cpu``, and
``gpu.hamiltonian.cpu_ms_per_step`` / ``.device_ms_per_step``; ``gpu.load_avg`` is the
1-minute load average at the start.

Run: ``python benchmarks/gpu.py [--quick]``.
"""

from __future__ import annotations

import os
import sys
import time


def _per_step(fit, a: int, b: int, repeats: int) -> float:
    """Milliseconds per training step: (wall(b steps) - wall(a steps)) / (b - a).

    One warm-up fit first (imports, kernel loading, CUDA context); each wall time is the
    least of ``repeats`` runs, the usual estimate on a machine shared with other work.
    """
    fit(a)
    walls = []
    for steps in (a, b):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fit(steps)
            best = min(best, time.perf_counter() - t0)
        walls.append(best)
    return 1e3 * max(walls[1] - walls[0], 1e-9) / (b - a)


def _decomposition_fit(pairs, device: str):
    from symqp.decompose import NeuralDecomposition

    def fit(steps: int) -> None:
        NeuralDecomposition(steps=steps, lbfgs_steps=0, patience=None, device=device, seed=0, verbose=False,
                            threads=1 if device == "cpu" else None).fit(pairs)  # fmt: skip

    return fit


def _hamiltonian_fit(data, device: str):
    from symqp.decompose import HamiltonianPotential

    def fit(steps: int) -> None:
        HamiltonianPotential(steps=steps, lbfgs_steps=0, device=device, seed=0).fit(data)

    return fit


def run(quick: bool = False) -> dict[str, float]:
    import symqp
    from symqp._optional import require

    torch = require("torch")
    cuda = bool(torch.cuda.is_available())
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else "no CUDA device: CPU"
    figures: dict[str, float] = {"gpu.load_avg": os.getloadavg()[0], "gpu.device_is_cuda": float(cuda)}
    n_traj, n_pairs = (200, 20) if quick else (5000, 50)
    a, b = (5, 25) if quick else (50, 250)
    reps = 1 if quick else 3
    pairs = symqp.data.sample_pairs(symqp.systems.archetypal3d(), n_traj=n_traj, n_pairs=n_pairs, h=0.01, dt=0.1,
                                    seed=0)  # fmt: skip
    ham = symqp.data.sample_hamiltonian(symqp.systems.get_system("double_well"), 20 if quick else 200, 200, 0.01,
                                        seed=0)  # fmt: skip
    cpu = _per_step(_decomposition_fit(pairs, "cpu"), a, b, reps)
    h_cpu = _per_step(_hamiltonian_fit(ham, "cpu"), a, b, reps)
    # without CUDA the device is the CPU: the same measurement, not taken twice
    dev = _per_step(_decomposition_fit(pairs, device), a, b, reps) if cuda else cpu
    h_dev = _per_step(_hamiltonian_fit(ham, device), a, b, reps) if cuda else h_cpu
    figures.update({
        "gpu.cpu_ms_per_step": cpu, "gpu.device_ms_per_step": dev, "gpu.speedup_vs_cpu": cpu / dev,
        "gpu.hamiltonian.cpu_ms_per_step": h_cpu, "gpu.hamiltonian.device_ms_per_step": h_dev,
    })  # fmt: skip
    print(f"device: {name}; Example 1 data {n_traj}x{n_pairs} pairs; steps {a} and {b}")
    print(f"gpu.cpu_ms_per_step                 {cpu:10.3f}")
    print(f"gpu.device_ms_per_step ({device:4s})      {dev:10.3f}  ({cpu / dev:.3g}x faster than the CPU)")
    print(f"gpu.hamiltonian.cpu_ms_per_step     {h_cpu:10.3f}")
    print(f"gpu.hamiltonian.device_ms_per_step  {h_dev:10.3f}  ({h_cpu / h_dev:.3g}x faster than the CPU)")
    print(f"load average at start: {figures['gpu.load_avg']:.2f}")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
