import os

import numpy as np
import pytest

# Keep generated kernels of the test run out of the user's cache.
os.environ.setdefault("SYMQP_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".symqp_cache"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
