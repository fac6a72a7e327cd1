"""The whole-frame enhancer (`--frame-enhancer FILE`, `enhance.frame_model`): any
spandrel image model (Real-ESRGAN, SwinIR, SCUNet, ...) run on every output frame
after compositing, in tiles so that memory stays the same at any resolution.

A super-resolution model's result is averaged back down to the frame's size: the
output keeps the input's resolution (and every stream and tag the writer copies),
with the detail the model drew. `enhance.frame_blend` mixes it over the frame.

Tiles overlap by `_OVERLAP` pixels and only their centres are kept, so a model
whose receptive field is under twice the overlap gives what it would give on the
whole frame at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from clipswap_video.errors import CorruptWeightsError
from clipswap_video.swap.device import autocast
from clipswap_video.swap.enhance import FORWARDS, load_spandrel

_OVERLAP = 16  # input pixels each tile reaches past its share, each side


class FrameEnhancer:
    """One spandrel image model on whole RGB frames, tile by tile."""

    def __init__(
        self,
        path: Path,
        device: torch.device,
        precision: str = "fp32",
        tile: int = 512,
        blend: float = 1.0,
    ) -> None:
        descriptor = load_spandrel(path, "an image model (super-resolution or restoration)")
        architecture = descriptor.architecture.id
        if architecture in FORWARDS:
            raise CorruptWeightsError(
                f"{path} is a face restorer ({architecture}): use --enhancer, which runs it on "
                "aligned faces"
            )
        channels = (descriptor.input_channels, descriptor.output_channels)
        if channels != (3, 3) or not hasattr(descriptor, "scale"):
            raise CorruptWeightsError(
                f"{path} is a {architecture} model that does not map RGB images to RGB images"
            )
        self.descriptor: Any = descriptor.to(device).eval()
        self.scale: int = descriptor.scale
        self.device, self.precision = device, precision
        self.tile, self.blend = tile, blend

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB in, the enhanced frame at the same size out."""
        height, width = image.shape[:2]
        enhanced = np.zeros((height * self.scale, width * self.scale, 3), np.float32)
        for inner, outer in _tiles(height, width, self.tile):  # one tile at a time: the bound
            self._place(
                enhanced, self._run(image[outer[0] : outer[1], outer[2] : outer[3]]), inner, outer
            )
        if self.scale != 1:
            enhanced = cv2.resize(enhanced, (width, height), interpolation=cv2.INTER_AREA)
        mixed = self.blend * enhanced + (1 - self.blend) * image.astype(np.float32)
        return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)

    def _run(self, crop: np.ndarray) -> np.ndarray:
        """The model's output for one tile with its overlap (spandrel pads it to the
        architecture's size rules and crops the result back)."""
        pixels = torch.from_numpy(np.ascontiguousarray(crop))
        tensor = pixels.permute(2, 0, 1)[None].float().div(255).to(self.device)
        with torch.inference_mode(), autocast(self.precision, self.device):
            output = self.descriptor(tensor)
        return np.asarray(output[0].float().clamp(0, 1).mul(255).permute(1, 2, 0).cpu().numpy())

    def _place(self, canvas: np.ndarray, result: np.ndarray, inner: _Box, outer: _Box) -> None:
        """The part of `result` (the outer box, scaled) that is the tile's own."""
        s = self.scale
        y0, y1, x0, x1 = inner
        oy, ox = (y0 - outer[0]) * s, (x0 - outer[2]) * s
        canvas[y0 * s : y1 * s, x0 * s : x1 * s] = result[
            oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s
        ]


_Box = tuple[int, int, int, int]  # y0, y1, x0, x1


def _tiles(height: int, width: int, side: int) -> list[tuple[_Box, _Box]]:
    """(own box, box with the overlap) of each tile covering the frame."""
    boxes = []
    for y0 in range(0, height, side):
        for x0 in range(0, width, side):
            y1, x1 = min(y0 + side, height), min(x0 + side, width)
            outer = (
                max(0, y0 - _OVERLAP),
                min(height, y1 + _OVERLAP),
                max(0, x0 - _OVERLAP),
                min(width, x1 + _OVERLAP),
            )
            boxes.append(((y0, y1, x0, x1), outer))
    return boxes


__all__ = ["FrameEnhancer"]
