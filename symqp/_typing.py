"""Array aliases used in signatures across symqp."""

from __future__ import annotations

from typing import Union

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "BoolArray", "IntArray", "ArrayLike"]

FloatArray = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.integer]
ArrayLike = Union[npt.ArrayLike, FloatArray]
