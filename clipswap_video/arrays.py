"""Named array types shared by every layer (the shapes are in the names' docs).

A leaf: numpy only, so media, faces, models and the demo agree on one alias
for the same kind of array without importing each other.
"""

import numpy as np
import numpy.typing as npt

RgbImage = npt.NDArray[np.uint8]
"""H x W x 3, uint8, RGB: a decoded frame or photo."""

FloatArray = npt.NDArray[np.float64]
"""Float64 points, matrices and filter states."""

__all__ = ["FloatArray", "RgbImage"]
