"""Named array types shared by every layer (the shapes are in the names' docs).

A leaf: numpy only, so media, faces, models and the demo agree on one alias
for the same kind of array without importing each other.
"""

import numpy as np
import numpy.typing as npt

RgbImage = npt.NDArray[np.uint8]
"""H x W x 3, uint8, RGB: a decoded frame or photo."""

Rgb16Image = npt.NDArray[np.uint16]
"""H x W x 3, uint16, RGB: a picture of more than 8 bits (16-bit PNG/TIFF, 10-bit DPX)
at the full 16-bit scale."""

FloatRgbImage = npt.NDArray[np.float32]
"""H x W x 3, float32, RGB: a float picture (an EXR's), 1.0 at white, unclipped."""

FloatArray = npt.NDArray[np.float64]
"""Float64 points, matrices and filter states."""

__all__ = ["FloatArray", "FloatRgbImage", "Rgb16Image", "RgbImage"]
