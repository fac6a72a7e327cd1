"""The `classic` backend: a landmark-driven face transfer that needs no neural
weights (the offline default until ClipSwap's weights are present).

In the 256 px aligned crop, dlib's 68 landmarks are found on the source and on
each target; the source face is warped piecewise-affinely onto the target's
landmarks over a Delaunay triangulation (as in the classic face-swap demos and
Bitouk et al., "Face Swapping", SIGGRAPH 2008), so the target's expression,
pose and mouth interior stay and the source's features come in. Colour and the
blend are left to the shared compositing (clipswap_video.swap.composite).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial import Delaunay

from clipswap_video.config_sections import SwapSettings
from clipswap_video.errors import NoFaceError
from clipswap_video.faces import AlignmentName, SourceIdentity, alignment_matrices
from clipswap_video.faces.dlib_backend import LandmarkPredictor
from clipswap_video.swap.backend import CropBatch, SwappedBatch

CROP_SIZE = LandmarkPredictor.crop_size


class ClassicBackend:
    """Piecewise-affine warp of the source face onto each target's landmarks."""

    name = "classic"
    crop_size = CROP_SIZE
    alignment: AlignmentName = "arcface"

    device = torch.device("cpu")  # a CPU algorithm without weights

    def __init__(
        self, weights_dir: Path | None = None, settings: SwapSettings | None = None
    ) -> None:
        del weights_dir, settings
        self.landmarks = LandmarkPredictor()
        self._source_crop: np.ndarray | None = None
        self._source_points: np.ndarray | None = None
        self._triangles: np.ndarray | None = None

    def prepare_source(self, identity: SourceIdentity) -> None:
        """Cuts the source face out of the first source photo (once per job)."""
        face, image = identity.faces[0], identity.images[0]
        matrix = alignment_matrices(face.landmarks_5, CROP_SIZE)[0]
        crop = cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)
        points = self.landmarks(crop)
        if not _plausible(points):
            raise NoFaceError(f"no usable face landmarks in source image {identity.paths[0]}")
        self._source_crop, self._source_points = crop, points
        # One triangulation for the source's points, reused for every target:
        # the same triangles then match point for point.
        self._triangles = Delaunay(points).simplices

    def swap(self, batch: CropBatch) -> SwappedBatch:
        assert self._source_crop is not None, "prepare_source() first"
        crops = batch.crops.round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        landmarks = np.stack([self.landmarks(crop) for crop in crops])
        warped = np.stack([self._warp_source(points) for points in landmarks])
        return SwappedBatch(torch.from_numpy(warped).permute(0, 3, 1, 2).float(), landmarks)

    def _warp_source(self, target_points: np.ndarray) -> np.ndarray:
        """The source crop warped so its landmarks land on `target_points`."""
        assert self._source_points is not None and self._triangles is not None
        assert self._source_crop is not None
        owner = np.full((CROP_SIZE, CROP_SIZE), -1, np.int32)
        for index, triangle in enumerate(self._triangles):
            cv2.fillConvexPoly(owner, np.round(target_points[triangle]).astype(np.int32), index)
        # Per triangle: the affine map from target pixels back to source pixels.
        maps = np.zeros((len(self._triangles) + 1, 2, 3), np.float32)
        for index, triangle in enumerate(self._triangles):
            maps[index] = cv2.getAffineTransform(
                target_points[triangle].astype(np.float32),
                self._source_points[triangle].astype(np.float32),
            )
        ys, xs = np.mgrid[0:CROP_SIZE, 0:CROP_SIZE].astype(np.float32)
        coefficients = maps[owner]  # pixels outside every triangle take the last (zero) map
        map_x = (
            coefficients[..., 0, 0] * xs + coefficients[..., 0, 1] * ys + coefficients[..., 0, 2]
        )
        map_y = (
            coefficients[..., 1, 0] * xs + coefficients[..., 1, 1] * ys + coefficients[..., 1, 2]
        )
        outside = owner < 0
        map_x[outside], map_y[outside] = xs[outside], ys[outside]
        return cv2.remap(
            self._source_crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )


def _plausible(points: np.ndarray) -> bool:
    """Landmarks spread like a face (not collapsed onto the rect's mean shape)."""
    width = float(np.ptp(points[:, 0]))
    return 60.0 < width < 2.0 * CROP_SIZE


__all__ = ["ClassicBackend"]
