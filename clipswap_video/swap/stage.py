"""The swap stage of the pipeline: faces found and tracked, the chosen ones
swapped in cross-frame batches by the engine, composited back, frames handed
on in order.

`FaceSwapper` holds what a job loads once (detector, backend, source
identity); `stage_for(video)` makes the per-video stage, whose per-track state
(smoothed mask and colour statistics) lives as long as the video.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

from clipswap_video.config import Settings
from clipswap_video.errors import ConfigValueError, MissingWeightsError
from clipswap_video.faces import (
    Face,
    FaceAnalyzer,
    FaceDetector,
    FaceSelector,
    SourceIdentity,
    alignment_matrices,
    alignment_template,
    create_detector,
    invert_affine,
    parse_selection,
    source_identity,
)
from clipswap_video.faces.backends import resolve_detector
from clipswap_video.faces.coverage import FaceCoverage
from clipswap_video.faces.dlib_backend import LandmarkPredictor
from clipswap_video.faces.pose import facing
from clipswap_video.media import Frame, MediaInfo
from clipswap_video.swap.backends import create_backend
from clipswap_video.swap.choice import resolve_swapper
from clipswap_video.swap.composite import (
    ColourStats,
    box_mask,
    composites_on_device,
    crop_footprint,
    face_mask,
    lab_stats,
    mouth_interior,
    multiband_blend,
    paper_mask,
    paste,
    soft_inside,
    transfer_colour,
)
from clipswap_video.swap.engine import FrameSwap, SwapEngine
from clipswap_video.swap.enhance import with_enhancer
from clipswap_video.swap.frame_enhance import FrameEnhancer
from clipswap_video.swap.masks import Masked, with_masks
from clipswap_video.swap.quality import QualityLog

log = logging.getLogger(__name__)

_FORGET_AFTER = 150  # frames after which a track's smoothing state is dropped


class FaceSwapper:
    """A swap job's models and source identity, loaded once for any number of
    videos; `use_sources` changes the identity and keeps the models.
    `detector`: the face backend to use instead of the one the settings name."""

    def __init__(
        self,
        settings: Settings,
        sources: Sequence[Path],
        weights_dir: Path | None = None,
        *,
        detector: FaceDetector | None = None,
    ) -> None:
        if settings.enhance.enhancer != "none" and composites_on_device(settings.composite):
            raise ConfigValueError(
                "an enhancer needs the landmark mask: the paper's composite (composite.masks = "
                "[paper], alpha blend, no colour transfer) is the authors' inference, which has "
                "none"
            )
        name, note = resolve_swapper(settings.swap.swapper, weights_dir)
        if note:
            log.warning(note)
        detector_name, _ = resolve_detector(settings.faces, name, weights_dir)
        settings = replace(settings, faces=replace(settings.faces, detector=detector_name))
        self.settings = settings
        self.selection = parse_selection(settings.faces.select)
        self.detector = (
            detector if detector is not None else create_detector(settings.faces, weights_dir)
        )
        self.identity = self._identity(sources)
        backend = create_backend(name, weights_dir, settings.swap)
        backend = with_enhancer(backend, settings.enhance, settings.swap, weights_dir)
        # Outermost: the mask models read the crops the stage composites in.
        self.backend = with_masks(backend, settings.composite, settings.swap.device, weights_dir)
        self.backend.prepare_source(self.identity)
        self.frame_enhancer = _frame_enhancer(settings, self.backend.device)

    def use_sources(self, sources: Sequence[Path]) -> None:
        """Swaps the face of other source photos from now on, with the models
        already loaded (a batch worker moving to a job of another identity: no
        reload, no recompile). Unchanged when the new photos fail."""
        identity = self._identity(sources)
        self.backend.prepare_source(identity)
        self.identity = identity

    def _identity(self, sources: Sequence[Path]) -> SourceIdentity:
        identity = source_identity(
            self.detector,
            sources,
            self.settings.faces.source_face,
            one_pass=not self.settings.faces.refine,  # the papers' scripts: one pass
        )
        for line in identity.notes:
            log.warning(line)
        return identity

    def stage_for(self, info: MediaInfo, measure_quality: bool = False) -> SwapStage:
        """The frame stage for one video (its rotation, its own tracks); with
        `measure_quality`, the per-second figures of a batch's quality record."""
        return SwapStage(self, info.video.rotation, measure_quality)


class FrameFaces(NamedTuple):
    """What the stage saw in one frame: every face found (with its track id)
    and those it swaps (chosen by the selection and not turned too far)."""

    found: list[Face]
    swapped: list[Face]


@dataclass
class _TrackState:
    last_seen: int
    mask: np.ndarray | None = None
    keep: np.ndarray | None = None
    colours: dict[str, ColourStats] = field(default_factory=dict)


class SwapStage:
    """Swaps the selected faces of each frame. Frames go in with `push` and come
    out, in order, once their batch is swapped and composited (see SwapEngine)."""

    def __init__(
        self, swapper: FaceSwapper, rotation: int = 0, measure_quality: bool = False
    ) -> None:
        settings = swapper.settings
        self.swapper, self.composite = swapper, settings.composite
        self.analyzer = FaceAnalyzer(swapper.detector, settings.faces, settings.track, rotation)
        self.selector = FaceSelector(
            swapper.selection, swapper.detector, settings.faces.source_face
        )
        backend = swapper.backend
        self.engine = SwapEngine(
            backend,
            batch_size=settings.swap.batch_size,
            wait_s=settings.swap.batch_wait_ms / 1000,
            paste_mask=paper_mask(backend.crop_size)
            if composites_on_device(self.composite)
            else None,
        )
        # The mask's erosion and feather are given in pixels of the 256 px ArcFace
        # crop: scaled by how large the face is in this backend's crop.
        scale = _eye_distance(alignment_template(backend.crop_size, backend.alignment)) / (
            _eye_distance(alignment_template(256))
        )
        self._mask_settings = replace(
            self.composite,
            mask_erode=round(self.composite.mask_erode * scale),
            mask_feather=round(self.composite.mask_feather * scale),
        )
        self._landmarks: LandmarkPredictor | None = None
        models = swapper.backend.models if isinstance(swapper.backend, Masked) else None
        parses_mouth = models is not None and models.parser is not None
        self._lip_mouth = self.composite.keep_mouth and not parses_mouth
        self._needs_landmarks = "landmarks" in self.composite.masks or self._lip_mouth
        self.tracks: dict[int | None, _TrackState] = {}
        self.coverage = FaceCoverage()
        self.quality = (
            QualityLog(swapper.detector, swapper.identity.embedding, settings.batch)
            if measure_quality
            else None
        )
        self._chosen: dict[int, tuple[int, int]] = {}  # frame index -> (found, selected)
        self.last_faces = FrameFaces([], [])
        """The faces of the frame pushed last (`preview --debug` draws them)."""
        self.counted_from: int | None = None
        """pts of the first frame the coverage and quality count: a segment's
        warm-up frames before it are swapped (tracks and smoothing settle) but
        belong to the segment before."""

    def push(self, frame: Frame) -> list[Frame]:
        """Analyses `frame` and queues it; returns the frames now finished, in order."""
        image = frame.rgb()
        found = self.analyzer.analyse(image)
        chosen = self.selector.select(found)
        faces = facing(chosen, self.swapper.settings.faces.max_yaw)  # too turned: left alone
        if self.engine.pastes:
            # The paper's composite pastes in detection order (best score first), so
            # where faces overlap the best-scored one is under the others.
            faces = sorted(faces, key=lambda face: -face.score)
        self._chosen[frame.index] = (len(found), len(chosen))
        self.last_faces = FrameFaces(found, faces)
        self._forget(frame.index)
        return [self._finish(work) for work in self.engine.submit(self._work(frame, image, faces))]

    def flush(self) -> list[Frame]:
        """The frames still queued, finished (at the end of the video)."""
        return [self._finish(work) for work in self.engine.flush()]

    def _work(self, frame: Frame, image: np.ndarray, faces: list[Face]) -> FrameSwap:
        if not faces:
            return FrameSwap(frame, image, [], np.zeros((0, 2, 3)), (0, 0, 0, 0))
        size, alignment = self.swapper.backend.crop_size, self.swapper.backend.alignment
        points = np.stack([face.landmarks_5 for face in faces])
        matrices = alignment_matrices(points, size, alignment)
        # Only the region the crops cover goes to the device, not the frame.
        rects = [crop_footprint(m, size, image.shape) for m in matrices]
        found = np.array([rect for rect in rects if rect is not None] or [(0, 0, 1, 1)])
        x0, y0 = found[:, :2].min(0)
        x1, y1 = found[:, 2:].max(0)
        return FrameSwap(frame, image, faces, matrices, (int(x0), int(y0), int(x1), int(y1)))

    def _finish(self, work: FrameSwap) -> Frame:
        found, selected = self._chosen.pop(work.frame.index)
        counted = self.counted_from is None or work.frame.pts >= self.counted_from
        quality = self.quality if counted else None
        if counted:
            self.coverage.count(found=found, selected=selected, swapped=len(work.faces))
        if not work.faces:
            output = work.image
            if self.swapper.frame_enhancer is not None:
                output = self.swapper.frame_enhancer(work.image)
                work.frame.replace_pixels(output)
            if quality is not None:
                quality.observe(work.frame.seconds, work.image, output, [], selected)
            return work.frame  # goes to the encoder untouched, unless enhanced
        output = work.image.copy()
        for face in work.faces:
            state = self.tracks.setdefault(face.track_id, _TrackState(work.frame.index))
            state.last_seen = work.frame.index
        if work.pasted is not None:  # composited on the device already
            x0, y0, x1, y1 = work.rect
            output[y0:y1, x0:x1] = work.pasted
        else:
            assert work.targets is not None and work.swapped is not None
            landmarks = None  # the paper's fixed mask and a box need none
            if self._needs_landmarks:
                landmarks = work.landmarks_68
                if landmarks is None:
                    landmarks = self._landmarks_68(work.targets)
            hidden = self._hidden(work.targets, work.hidden, landmarks)
            for index, (face, matrix) in enumerate(zip(work.faces, work.matrices, strict=True)):
                points = None if landmarks is None else landmarks[index]
                keep = None if hidden is None else ~hidden[index]
                blended, alpha = self._blend(
                    work.swapped[index],
                    work.targets[index],
                    points,
                    keep,
                    self.tracks[face.track_id],
                )
                paste(output, blended, alpha, matrix)
        if self.swapper.frame_enhancer is not None:
            output = self.swapper.frame_enhancer(output)
        if quality is not None:
            quality.observe(work.frame.seconds, work.image, output, work.faces, selected)
        work.frame.replace_pixels(output)
        return work.frame

    def _landmarks_68(self, targets: np.ndarray) -> np.ndarray:
        """dlib's 68 points of each target crop, in crop pixels. The predictor
        reads 256 px ArcFace-aligned crops; another backend's crop is resampled
        into that frame first and the points mapped back (both crops fit the same
        5 points to similar templates, so one fixed similarity links them)."""
        predictor, backend = self._predictor(), self.swapper.backend
        size = predictor.crop_size
        if backend.crop_size == size and backend.alignment == "arcface":
            return np.stack([predictor(crop) for crop in targets])
        template = alignment_template(backend.crop_size, backend.alignment)
        link = alignment_matrices(template, size)[0]  # backend crop -> predictor crop
        back = invert_affine(link)
        points = [
            predictor(cv2.warpAffine(crop, link, (size, size), flags=cv2.INTER_LINEAR))
            for crop in targets
        ]
        return np.stack([p @ back[:, :2].T + back[:, 2] for p in points]).astype(np.float32)

    def _predictor(self) -> LandmarkPredictor:
        """dlib's 68-point predictor, loaded the first time a mask needs it."""
        if self._landmarks is None:
            self._landmarks = LandmarkPredictor()
        return self._landmarks

    def _hidden(
        self, targets: np.ndarray, found: np.ndarray | None, landmarks: np.ndarray | None
    ) -> np.ndarray | None:
        """(N, S, S) bool: where each target crop must keep the frame: what the mask
        models `found` in the engine (covered, a region not swapped, the parser's
        mouth), and the inner lip contour's mouth when no parser gave one. None
        when nothing is hidden."""
        if not self._lip_mouth:
            return found
        hidden = np.zeros(targets.shape[:3], bool) if found is None else found.copy()
        assert landmarks is not None
        size = targets.shape[1]
        return hidden | np.stack([mouth_interior(points, size) for points in landmarks])

    def _blend(
        self,
        crop: np.ndarray,
        target: np.ndarray,
        points: np.ndarray | None,
        keep: np.ndarray | None,
        state: _TrackState,
    ) -> tuple[np.ndarray, np.ndarray]:
        weight = self.composite.temporal_smoothing
        mask = self._outline(points, crop.shape[0])
        if state.mask is not None and weight > 0:
            mask = weight * state.mask + (1 - weight) * mask
        state.mask = mask
        allowed = None
        if keep is not None:
            allowed = soft_inside(keep, self._mask_settings.mask_feather)
            # Smoothed like the outline, but never over what is hidden now: a hand
            # that moves in front of the face is not painted over for a frame.
            if state.keep is not None and weight > 0:
                state.keep = weight * state.keep + (1 - weight) * allowed
                allowed = np.minimum(allowed, state.keep)
            else:
                state.keep = allowed
        inside = mask if allowed is None else mask * allowed
        if self.composite.colour_transfer:
            crop = self._match_colour(crop, target, inside, state, weight)
        if self.composite.blend == "alpha":
            return crop, inside
        blended = multiband_blend(crop, target, mask)
        # The pyramid blend already fades into the target; paste with a wider
        # alpha so its soft transition comes along instead of a hard edge. What
        # is hidden caps it: the blend's low frequencies reach over an occluder.
        wide = np.maximum(cv2.GaussianBlur((mask > 0.02).astype(np.float32), (0, 0), 4.0), mask)
        return blended, wide if allowed is None else wide * allowed

    def _outline(self, points: np.ndarray | None, size: int) -> np.ndarray:
        """Where `composite.masks`' outlines all agree (a feathered box without one)."""
        masks, settings = self.composite.masks, self._mask_settings
        outlines = []
        if "landmarks" in masks:
            assert points is not None
            outlines.append(face_mask(points, size, settings))
        if "paper" in masks:
            outlines.append(paper_mask(size))
        if "box" in masks or not outlines:
            outlines.append(box_mask(size, settings))
        return np.minimum.reduce(outlines)

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


def _frame_enhancer(settings: Settings, device: torch.device) -> FrameEnhancer | None:
    """The whole-frame enhancer `enhance.frame_model` names, on the swap's device."""
    enhance = settings.enhance
    if not enhance.frame_model:
        return None
    path = Path(enhance.frame_model).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"enhance.frame_model {path} is not a file")
    return FrameEnhancer(
        path, device, settings.swap.precision, enhance.frame_tile, enhance.frame_blend
    )


def _eye_distance(template: np.ndarray) -> float:
    return float(np.linalg.norm(template[1] - template[0]))


__all__ = ["FaceSwapper", "FrameFaces", "SwapStage"]
