"""The swap stage of the pipeline: faces found and tracked, the chosen ones
swapped by the backend, composited back, frame by frame.

`FaceSwapper` holds what a job loads once (detector, backend, source
identity); `stage_for(video)` makes the per-video stage, whose per-track state
(smoothed mask and colour statistics) lives as long as the video.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from clipswap_video.config import Settings
from clipswap_video.faces import (
    Face,
    FaceAnalyzer,
    FaceSelector,
    alignment_matrices,
    create_detector,
    parse_selection,
    source_identity,
    warp_crops,
)
from clipswap_video.media import Frame, MediaInfo
from clipswap_video.swap.backend import CropBatch, create_backend, resolve_swapper
from clipswap_video.swap.composite import (
    ColourStats,
    crop_footprint,
    face_mask,
    in_region,
    lab_stats,
    multiband_blend,
    paper_mask,
    paste,
    transfer_colour,
)

log = logging.getLogger(__name__)

_FORGET_AFTER = 150  # frames after which a track's smoothing state is dropped


class FaceSwapper:
    """A swap job's models and source identity, loaded once for any number of videos."""

    def __init__(
        self, settings: Settings, sources: Sequence[Path], weights_dir: Path | None = None
    ) -> None:
        name, note = resolve_swapper(settings.swap.swapper, weights_dir)
        if note:
            log.warning(note)
        self.settings = settings
        self.selection = parse_selection(settings.faces.select)
        self.detector = create_detector(settings.faces, weights_dir)
        self.identity = source_identity(self.detector, sources, settings.faces.source_face)
        for line in self.identity.notes:
            log.warning(line)
        self.backend = create_backend(
            name, weights_dir, device=settings.swap.device, precision=settings.swap.precision
        )
        self.backend.prepare_source(self.identity)

    def stage_for(self, info: MediaInfo) -> SwapStage:
        """The frame stage for one video (its rotation, its own tracks)."""
        return SwapStage(self, info.video.rotation)


@dataclass
class _TrackState:
    last_seen: int
    mask: np.ndarray | None = None
    colours: dict[str, ColourStats] = field(default_factory=dict)


class SwapStage:
    """Swaps the selected faces of each frame, in place."""

    def __init__(self, swapper: FaceSwapper, rotation: int = 0) -> None:
        settings = swapper.settings
        self.swapper, self.composite = swapper, settings.composite
        self.analyzer = FaceAnalyzer(swapper.detector, settings.faces, settings.track, rotation)
        self.selector = FaceSelector(
            swapper.selection, swapper.detector, settings.faces.source_face
        )
        self.tracks: dict[int | None, _TrackState] = {}
        self.swapped_faces = 0

    def __call__(self, frame: Frame) -> None:
        image = frame.rgb()
        faces = self.selector.select(self.analyzer.analyse(image))
        self._forget(frame.index)
        if not faces:
            return  # the frame goes to the encoder untouched
        output = image.copy()
        for face, (crop, target, matrix, points) in zip(
            faces, self._swap(image, faces), strict=True
        ):
            state = self.tracks.setdefault(face.track_id, _TrackState(frame.index))
            state.last_seen = frame.index
            blended, alpha = self._blend(crop, target, points, state)
            paste(output, blended, alpha, matrix)
            self.swapped_faces += 1
        frame.replace_pixels(output)

    def _swap(
        self, image: np.ndarray, faces: list[Face]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        size = self.swapper.backend.crop_size
        matrices = alignment_matrices(np.stack([face.landmarks_5 for face in faces]), size)
        # Only the region the crops cover is converted to a float tensor, not the frame.
        boxes = [crop_footprint(m, size, image.shape) for m in matrices]
        found = np.array([box for box in boxes if box is not None] or [(0, 0, 1, 1)])
        x0, y0 = found[:, :2].min(0)
        x1, y1 = found[:, 2:].max(0)
        region = torch.from_numpy(image[y0:y1, x0:x1]).permute(2, 0, 1)[None]
        crops = warp_crops(
            region, in_region(matrices, x0, y0), size, torch.zeros(len(faces), dtype=torch.long)
        )
        targets = crops.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        swapped = self.swapper.backend.swap(CropBatch(targets))
        return list(zip(swapped.crops, targets, matrices, swapped.landmarks_68, strict=True))

    def _blend(
        self, crop: np.ndarray, target: np.ndarray, points: np.ndarray, state: _TrackState
    ) -> tuple[np.ndarray, np.ndarray]:
        weight = self.composite.temporal_smoothing
        if self.composite.mask == "paper":
            mask = paper_mask(crop.shape[0])
        else:
            mask = face_mask(points, crop.shape[0], self.composite)
        if state.mask is not None and weight > 0:
            mask = weight * state.mask + (1 - weight) * mask
        state.mask = mask
        if self.composite.colour_transfer:
            crop = self._match_colour(crop, target, mask, state, weight)
        if self.composite.blend == "alpha":
            return crop, mask
        blended = multiband_blend(crop, target, mask)
        # The pyramid blend already fades into the target; paste with a wider
        # alpha so its soft transition comes along instead of a hard edge.
        wide = cv2.GaussianBlur((mask > 0.02).astype(np.float32), (0, 0), 4.0)
        return blended, np.maximum(wide, mask)

    def _match_colour(
        self,
        crop: np.ndarray,
        target: np.ndarray,
        mask: np.ndarray,
        state: _TrackState,
        weight: float,
    ) -> np.ndarray:
        stats = {"source": lab_stats(crop, mask), "target": lab_stats(target, mask)}
        for key, value in stats.items():
            state.colours[key] = value.blend(state.colours.get(key), weight)
        return transfer_colour(crop, state.colours["source"], state.colours["target"])

    def _forget(self, index: int) -> None:
        stale = [k for k, s in self.tracks.items() if index - s.last_seen > _FORGET_AFTER]
        for key in stale:
            del self.tracks[key]


__all__ = ["FaceSwapper", "SwapStage"]
