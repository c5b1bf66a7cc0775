"""Thread control of the BLAS used by the backends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["limit_blas"]


@contextlib.contextmanager
def limit_blas(threads: int | None = 1) -> Iterator[None]:
    """Run the enclosed NumPy/SciPy linear algebra on at most ``threads`` BLAS threads.

    ``None`` leaves the BLAS as it is. The linear backends factor matrices of a few hundred
    rows at most; on such sizes a multithreaded OpenBLAS only adds synchronisation, and on
    a busy 2-core machine a 224 x 224 Cholesky factorisation was measured at ~500 ms with
    2 threads against 0.3 ms with one. ``threadpoolctl`` is a core dependency; without it
    the block runs unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> with limit_blas(1):
    ...     float(np.linalg.det(np.eye(3)))
    1.0
    """
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn always brings it
        yield
        return
    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield
