"""The `insightface` detector: the ONNX files of insightface's buffalo_l pack,
loaded and run by insightface's own model zoo (`insightface.model_zoo.get_model`)
on onnxruntime (CUDA when it has it).

- det_10g.onnx: SCRFD-10GF (Guo et al., "Sample and Computation Redistribution
  for Efficient Face Detection", ICLR 2022), insightface's `SCRFD`: boxes,
  scores and 5 keypoints, with its letterbox, anchor decoding and NMS.
- w600k_r50.onnx: ArcFace ResNet-50 (Deng et al., CVPR 2019) on WebFace600K,
  insightface's `ArcFaceONNX`: 512-d identity embeddings of its `norm_crop`.
- 2d106det.onnx: 106 dense landmarks, insightface's `Landmark`; optional, used
  for the per-frame refresh between detections and for the 5 points (the same
  source on every frame avoids a jump each time a full detection comes round).

Ours is the glue: the detection input size (`faces.detect_size`), the
thresholds, the 5 points taken from the 106 and the refresh that moves a
tracked box with them. insightface takes cv2's BGR images; ours are RGB,
converted once per call.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import CorruptWeightsError, MissingWeightsError
from clipswap_video.faces.detect import follow_landmarks, keep_faces, score_threshold
from clipswap_video.faces.insightface_zoo import load_zoo_model
from clipswap_video.faces.onnx_session import onnx_providers
from clipswap_video.faces.types import Face, unit
from clipswap_video.weights import find_weight, load_manifest, search_dirs

DETECTOR = "insightface.det_10g"
RECOGNISER = "insightface.w600k_r50"
LANDMARKS = "insightface.2d106det"
"""Manifest entries; the landmark file is optional."""
SCRFD_STRIDE = 32
"""SCRFD's coarsest feature stride: a dynamic input's sides are multiples of it."""
EMBEDDING_WIDTH = 512
# The 5 points from 2d106det's 106 (insightface's layout: 33-42 image-left eye,
# 87-96 image-right eye, 72-86 nose, 52-71 mouth). Eye centre = mean of four
# eye-contour points (two corners, upper and lower lid), the sets LivePortrait's
# parse_pt2_from_pt106 labels "eye center" (KwaiVGI/LivePortrait,
# src/utils/crop.py); the common [38, 88, 86, 52, 61] mapping (e.g. code that
# feeds insightface's norm_crop) takes the pupil points 38, 88 instead. Nose tip
# 86 and mouth corners 52, 61 are from that common mapping.
LEFT_EYE_OF_106 = (33, 35, 40, 39)
RIGHT_EYE_OF_106 = (87, 89, 94, 93)
NOSE_TIP_OF_106 = 86
MOUTH_CORNERS_OF_106 = (52, 61)

# Cosine distance of ArcFace embeddings: two crops of one person usually have
# cosine similarity above 0.4, two people near 0, so 1 - 0.4 keeps one person
# across pose and light changes without joining two people.
ARCFACE_MATCH_DISTANCE = 0.6
MIN_SCORE = 0.5
"""Lowest SCRFD probability kept when `faces.min_score` is 0 (insightface's own)."""


class InsightfaceDetector:
    """insightface's SCRFD, ArcFaceONNX and 106-point Landmark on the buffalo_l files."""

    name = "insightface"

    def __init__(self, settings: FaceSettings, weights_dir: Path | None = None) -> None:
        import onnxruntime  # deferred: importing the interface must not load it

        self.settings = settings
        self.match_distance = settings.match_distance or ARCFACE_MATCH_DISTANCE
        # SCRFD's file stores no threshold: "file" means insightface's own.
        self.min_score = score_threshold(settings.min_score, MIN_SCORE)
        detector_path, recogniser_path, landmark_path = _files(weights_dir)
        providers = onnx_providers(settings.device, onnxruntime.get_available_providers())
        # One session for every input size: by default SCRFD builds and keeps a
        # fixed-shape copy of the model for each size it meets (each photo size).
        self._detector = load_zoo_model(
            detector_path, "SCRFD", providers, static_shape_sessions=False
        )
        if not self._detector.use_kps:
            raise CorruptWeightsError(
                f"{detector_path} is read by insightface as SCRFD without keypoints "
                f"({len(self._detector.output_names)} outputs, expected 9): "
                "not the file of that name"
            )
        self._detector.prepare(0, det_thresh=self.min_score)  # ctx_id >= 0 keeps our providers
        self._recogniser = load_zoo_model(recogniser_path, "ArcFaceONNX", providers)
        width = self._recogniser.output_shape[-1]
        if isinstance(width, int) and width != EMBEDDING_WIDTH:
            raise CorruptWeightsError(
                f"{recogniser_path} gives {width}-d embeddings, expected {EMBEDDING_WIDTH}: "
                "not the file of that name"
            )
        self._landmarks = (
            None if landmark_path is None else _landmark_model(landmark_path, providers)
        )
        self.providers: list[str] = list(self._detector.session.get_providers())
        """The onnxruntime providers the sessions run on, first preferred."""

    def detect(self, image: RgbImage, *, still: bool = False) -> list[Face]:
        """SCRFD faces in `image` pixels, best score first (106 points when
        available); photos and frames alike are fitted into its input size."""
        del still
        bgr = _bgr(image)
        # SCRFD's own input is 640 px: the papers' rule ("paper") asks for about that.
        longest = 0 if self.settings.detect_size == "paper" else self.settings.detect_size
        size = scrfd_input_size(image.shape[:2], longest)
        try:
            boxes, points = self._detector.detect(bgr, input_size=size, max_num=0)
        except (ValueError, IndexError):  # its outputs and its anchors disagree in length
            raise CorruptWeightsError(
                f"{self._detector.model_file} gives outputs that do not fit SCRFD's anchors "
                f"for a {size[0]} x {size[1]} input: not the file of that name"
            ) from None
        faces = [
            Face(box=row[:4], score=float(row[4]), landmarks_5=five)
            for row, five in zip(boxes, points, strict=True)
        ]
        faces = keep_faces(faces, min_size=self.settings.min_size)
        return self._dense(bgr, faces) if self._landmarks is not None else faces

    def refresh(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """Landmarks re-measured in each box with 2d106det; without it, unchanged.

        Unlike dlib's refresh this does not notice a face that has gone: the
        next full detection does (within `faces.detect_every` frames).
        """
        if self._landmarks is None or not faces:
            return list(faces)
        measured = self._dense(_bgr(image), list(faces))
        return [
            new.with_(box=follow_landmarks(old.box, old.landmarks_5, new.landmarks_5))
            for old, new in zip(faces, measured, strict=True)
        ]

    def embed(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """`faces` with ArcFace embeddings of insightface's aligned crops, in one batch."""
        if not faces:
            return []
        from insightface.utils.face_align import norm_crop

        bgr = _bgr(image)
        size = self._recogniser.input_size[0]
        with warnings.catch_warnings():  # norm_crop calls a scikit-image API it deprecated
            warnings.simplefilter("ignore", FutureWarning)
            crops = [norm_crop(bgr, landmark=face.landmarks_5, image_size=size) for face in faces]
        embeddings = self._recogniser.get_feat(crops)
        return [face.with_(embedding=unit(e)) for face, e in zip(faces, embeddings, strict=True)]

    def _dense(self, bgr: np.ndarray, faces: list[Face]) -> list[Face]:
        """Faces with 106 landmarks and the 5 points taken from them."""
        from insightface.app.common import Face as InsightfaceFace

        assert self._landmarks is not None
        result = []
        for face in faces:
            # Landmark.get scales its crop by the box's longer side: at 0 px it gives NaN.
            box = np.concatenate([face.box[:2], np.maximum(face.box[2:], face.box[:2] + 1)])
            points = self._landmarks.get(bgr, InsightfaceFace(bbox=box)).astype(np.float32)
            result.append(face.with_(landmarks_dense=points, landmarks_5=five_points(points)))
        return result


def scrfd_input_size(image_size: tuple[int, int], detect_size: int) -> tuple[int, int]:
    """SCRFD's (width, height) input for an image of (height, width): the image
    fitted into `detect_size` (640 when 0), never enlarged, each side rounded up
    to the 32-pixel stride. A model with a fixed input size keeps its own."""
    longest = detect_size or 640
    height, width = image_size
    factor = min(1.0, longest / max(height, width))
    return _stride_multiple(width * factor), _stride_multiple(height * factor)


def _stride_multiple(side: float) -> int:
    return max(SCRFD_STRIDE, int(np.ceil(side / SCRFD_STRIDE)) * SCRFD_STRIDE)


def five_points(dense: np.ndarray) -> np.ndarray:
    """(5, 2) eye centres, nose tip and mouth corners from 2d106det's (106, 2) points."""
    return np.stack(
        [
            dense[list(LEFT_EYE_OF_106)].mean(0),
            dense[list(RIGHT_EYE_OF_106)].mean(0),
            dense[NOSE_TIP_OF_106],
            *dense[list(MOUTH_CORNERS_OF_106)],
        ]
    ).astype(np.float32)


def _bgr(image: RgbImage) -> np.ndarray:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _landmark_model(path: Path, providers: list[Any]) -> Any:
    """insightface's Landmark for `path`, checked to give 106 2-d points."""
    model = load_zoo_model(path, "Landmark", providers)
    if model.taskname != "landmark_2d_106":
        raise CorruptWeightsError(
            f"{path} is read by insightface as Landmark with {model.lmk_num} "
            f"{model.lmk_dim}-d points, expected 106 2-d: not the file of that name"
        )
    return model


def _files(weights_dir: Path | None) -> tuple[Path, Path, Path | None]:
    """The detector's, the recogniser's and (when found) the landmark model's files.

    Raises:
        MissingWeightsError: no detector or no recogniser file.
        AmbiguousWeightsError: a folder holds two files for one of them.
    """
    entries = {entry.name: entry for entry in load_manifest()}
    detector, recogniser, landmarks = (
        find_weight(entries[name], weights_dir) for name in (DETECTOR, RECOGNISER, LANDMARKS)
    )
    if detector is None or recogniser is None:
        lacking = " and no ".join(
            entries[name].file
            for name, path in ((DETECTOR, detector), (RECOGNISER, recogniser))
            if path is None
        )
        folders = ", ".join(str(folder) for folder in search_dirs(weights_dir))
        raise MissingWeightsError(
            f"the insightface detector cannot load: no {lacking} in {folders} "
            "(insightface's buffalo_l files; `weights list` shows where each may sit); "
            "use --set faces.detector=dlib without them"
        )
    return detector, recogniser, landmarks


__all__ = [
    "ARCFACE_MATCH_DISTANCE",
    "InsightfaceDetector",
    "five_points",
    "scrfd_input_size",
]
