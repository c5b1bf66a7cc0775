"""Thread control of the BLAS used by the linear backends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["single_threaded_blas"]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed NumPy/SciPy linear algebra on one BLAS thread.

    The linear backends factor matrices of a few hundred rows at most; on such sizes a
    multithreaded OpenBLAS only adds synchronisation, and on a busy 2-core machine a
    224 x 224 Cholesky factorisation was measured at ~500 ms with 2 threads against
    0.3 ms with one. ``threadpoolctl`` ships with scikit-learn (a core dependency);
    without it the block runs unchanged.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
