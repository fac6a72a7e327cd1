"""The ClipSwap source identity computed by hand for the small test identity network.

The released model's rules are restated here, not imported from the package,
so that a fault in its alignment or pre-processing cannot hide in the expected
values: the 5 detected landmarks are mapped onto the ArcFace template by a
least-squares similarity (scikit-image's estimate, not the package's), the
photo is warped with `cv2.warpAffine` (bilinear, zero border), and the crop is
fed RGB in [0, 1]; the identity is the network's raw output (no L2 norm), the
plain mean over several photos. The network is the one `identity_net_weights`
parameterises, run in NumPy: Conv2D 3x3 stride 2 valid + ReLU, 2x2 average
pooling, Flatten in Keras's NHWC order, Dense 512.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
from skimage.transform import SimilarityTransform

# Left eye, right eye, nose tip, left and right mouth corner in a 112 px crop.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
POOLED_SIZE = 27  # 112 -> conv 3x3 stride 2 valid: 55 -> pool 2x2: 27
CONV_FILTERS = 4
Float64Array = npt.NDArray[np.float64]


def identity_net_weights() -> dict[str, npt.NDArray[np.float32]]:
    """The identity network's weights by Keras name (the kernels random, the biases zero)."""
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(POOLED_SIZE * POOLED_SIZE * CONV_FILTERS, 512)).astype(np.float32)
    conv = rng.normal(size=(3, 3, 3, CONV_FILTERS)).astype(np.float32)
    return {
        "conv/kernel:0": conv,
        "conv/bias:0": np.zeros(CONV_FILTERS, np.float32),
        "embedding/kernel:0": dense,
        "embedding/bias:0": np.zeros(512, np.float32),
    }


def aligned_crop(image: np.ndarray, landmarks_5: npt.ArrayLike, size: int) -> np.ndarray:
    """`image` warped so that its 5 landmarks best fit the ArcFace template at `size` px."""
    template = ARCFACE_TEMPLATE_112 * (size / 112)
    transform = SimilarityTransform.from_estimate(np.asarray(landmarks_5, np.float64), template)
    return cv2.warpAffine(image, transform.params[:2], (size, size))


def identity_net_output(crop: np.ndarray) -> Float64Array:
    """The identity network's raw 512-d output for one 112 px uint8 RGB crop."""
    weights = identity_net_weights()
    pixels = crop.astype(np.float64) / 255.0
    # (55, 55, 3, 3, 3): output row, output column, channel, kernel row, kernel column.
    windows = np.lib.stride_tricks.sliding_window_view(pixels, (3, 3), axis=(0, 1))[::2, ::2]
    conv = np.einsum("ijcuv,uvco->ijo", windows, weights["conv/kernel:0"].astype(np.float64))
    conv = np.maximum(conv + weights["conv/bias:0"], 0.0)
    cut = 2 * POOLED_SIZE  # valid pooling drops the last row and column
    pooled = conv[:cut, :cut].reshape(POOLED_SIZE, 2, POOLED_SIZE, 2, -1).mean(axis=(1, 3))
    dense = weights["embedding/kernel:0"].astype(np.float64)
    return np.asarray(pooled.reshape(-1) @ dense + weights["embedding/bias:0"], np.float64)


__all__ = [
    "ARCFACE_TEMPLATE_112",
    "aligned_crop",
    "identity_net_output",
    "identity_net_weights",
]
