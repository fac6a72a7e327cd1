"""The `insightface` detector: the ONNX files of insightface's buffalo_l pack,
run with onnxruntime (CUDA when it has it).

- det_10g.onnx: SCRFD-10GF (Guo et al., "Sample and Computation Redistribution
  for Efficient Face Detection", ICLR 2022): boxes, scores and 5 keypoints.
- w600k_r50.onnx: ArcFace ResNet-50 (Deng et al., CVPR 2019) on WebFace600K,
  512-d identity embeddings of 112 x 112 aligned crops.
- 2d106det.onnx: 106 dense landmarks; optional, used for the per-frame refresh
  between detections and for the 5 points (the same source on every frame
  avoids a jump each time a full detection comes round).

Only the file layout and the tensor conventions are insightface's; the
decoding below is written from the model signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config import FaceSettings
from clipswap_video.errors import CorruptWeightsError, MissingWeightsError
from clipswap_video.faces.align import alignment_matrices
from clipswap_video.faces.detect import follow_landmarks, keep_faces, score_threshold
from clipswap_video.faces.onnx_session import load_errors, onnx_providers, session_options
from clipswap_video.faces.types import Face, box_iou, unit
from clipswap_video.weights import find_weight, load_manifest, looked_for

PACK_NAME = "insightface.buffalo_l"
DETECTOR_FILE = "det_10g.onnx"
RECOGNISER_FILE = "w600k_r50.onnx"
LANDMARK_FILE = "2d106det.onnx"
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
NMS_IOU = 0.4
LANDMARK_INPUT = 192
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


@dataclass(frozen=True)
class Signature:
    """The tensor shapes a buffalo_l file must have (None = any size)."""

    input_shape: tuple[int | None, ...]
    output_widths: tuple[int, ...]
    """The last dimension of each output, in order."""


# Scores, boxes, keypoints per stride 8, 16, 32 (rows x 1, 4, 10).
SCRFD_SIGNATURE = Signature((None, 3, None, None), (1, 1, 1, 4, 4, 4, 10, 10, 10))
ARCFACE_SIGNATURE = Signature((None, 3, 112, 112), (512,))
LANDMARK_SIGNATURE = Signature((None, 3, LANDMARK_INPUT, LANDMARK_INPUT), (212,))

# Cosine distance of ArcFace embeddings: two crops of one person usually have
# cosine similarity above 0.4, two people near 0, so 1 - 0.4 keeps one person
# across pose and light changes without joining two people.
ARCFACE_MATCH_DISTANCE = 0.6
MIN_SCORE = 0.5
"""Lowest SCRFD probability kept when `faces.min_score` is 0 (insightface's own)."""


class InsightfaceDetector:
    """SCRFD detection, ArcFace embeddings and 106-point landmarks from ONNX files."""

    name = "insightface"

    def __init__(self, settings: FaceSettings, weights_dir: Path | None = None) -> None:
        import onnxruntime  # deferred: importing the interface must not load it

        self.settings = settings
        self.match_distance = settings.match_distance or ARCFACE_MATCH_DISTANCE
        # SCRFD's file stores no threshold: "file" means insightface's own.
        self.min_score = score_threshold(settings.min_score, MIN_SCORE)
        folder = _pack_folder(weights_dir)
        providers = onnx_providers(settings.device, onnxruntime.get_available_providers())
        self._detector = _session(folder / DETECTOR_FILE, providers, SCRFD_SIGNATURE)
        self._recogniser = _session(folder / RECOGNISER_FILE, providers, ARCFACE_SIGNATURE)
        landmark_path = folder / LANDMARK_FILE
        self._landmarks = (
            _session(landmark_path, providers, LANDMARK_SIGNATURE)
            if landmark_path.is_file()
            else None
        )
        self.providers: list[str] = list(self._detector.get_providers())
        """The onnxruntime providers the sessions run on, first preferred."""

    def detect(self, image: RgbImage, *, still: bool = False) -> list[Face]:
        """SCRFD faces in `image` pixels, best score first (106 points when
        available); photos and frames alike fill its one input size."""
        del still
        canvas, factor = self._letterbox(image)
        blob = np.ascontiguousarray(((canvas - np.float32(127.5)) / 128).transpose(2, 0, 1)[None])
        outputs = self._detector.run(None, {self._detector.get_inputs()[0].name: blob})
        boxes, scores, points = decode_scrfd(outputs, canvas.shape[:2], self.min_score)
        keep = nms(boxes, scores, NMS_IOU)
        faces = [
            Face(box=boxes[i] / factor, score=float(scores[i]), landmarks_5=points[i] / factor)
            for i in keep
        ]
        faces = keep_faces(faces, min_size=self.settings.min_size)
        return self._dense(image, faces) if self._landmarks is not None else faces

    def refresh(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """Landmarks re-measured in each box with 2d106det; without it, unchanged.

        Unlike dlib's refresh this does not notice a face that has gone: the
        next full detection does (within `faces.detect_every` frames).
        """
        if self._landmarks is None or not faces:
            return list(faces)
        measured = self._dense(image, list(faces))
        return [
            new.with_(box=follow_landmarks(old.box, old.landmarks_5, new.landmarks_5))
            for old, new in zip(faces, measured, strict=True)
        ]

    def embed(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """`faces` with ArcFace embeddings of their aligned 112 px crops, in one batch."""
        if not faces:
            return []
        matrices = alignment_matrices(np.stack([face.landmarks_5 for face in faces]), 112)
        crops = np.stack(
            [
                cv2.warpAffine(image, m, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
                for m in matrices
            ]
        )
        blob = ((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        name = self._recogniser.get_inputs()[0].name
        embeddings = self._recogniser.run(None, {name: np.ascontiguousarray(blob)})[0]
        return [face.with_(embedding=unit(e)) for face, e in zip(faces, embeddings, strict=True)]

    def _letterbox(self, image: RgbImage) -> tuple[RgbImage, float]:
        """The image scaled into the detector's canvas at the top left, and the factor."""
        height, width = image.shape[:2]
        # SCRFD's own input is 640 px: the papers' rule ("paper") asks for about that.
        longest = 0 if self.settings.detect_size == "paper" else self.settings.detect_size
        canvas_h, canvas_w = detector_canvas(
            self._detector.get_inputs()[0].shape, (height, width), longest
        )
        factor = min(canvas_h / height, canvas_w / width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        canvas = np.zeros((canvas_h, canvas_w, 3), np.uint8)
        # INTER_AREA averages when shrinking; it would repeat pixels when enlarging.
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        canvas[: size[1], : size[0]] = cv2.resize(image, size, interpolation=interpolation)
        return canvas, factor

    def _dense(self, image: RgbImage, faces: list[Face]) -> list[Face]:
        """Faces with 106 landmarks and the 5 points taken from them."""
        assert self._landmarks is not None
        if not faces:
            return []
        matrices = [_landmark_crop_matrix(face.box) for face in faces]
        crops = np.stack(
            [
                cv2.warpAffine(
                    image, m, (LANDMARK_INPUT,) * 2, flags=cv2.INTER_LINEAR, borderValue=0
                )
                for m in matrices
            ]
        )
        blob = crops.astype(np.float32).transpose(0, 3, 1, 2)  # raw 0..255 (mean 0, std 1)
        name = self._landmarks.get_inputs()[0].name
        predicted = self._landmarks.run(None, {name: np.ascontiguousarray(blob)})[0]
        result = []
        for face, matrix, row in zip(faces, matrices, predicted, strict=True):
            in_crop = (row.reshape(-1, 2)[-106:] + 1.0) * (LANDMARK_INPUT / 2)
            points = ((in_crop - matrix[:, 2]) / matrix[0, 0]).astype(np.float32)
            result.append(face.with_(landmarks_dense=points, landmarks_5=five_points(points)))
        return result


def detector_canvas(
    input_shape: Sequence[Any], image_size: tuple[int, int], detect_size: int
) -> tuple[int, int]:
    """(height, width) of the detector input: the model's fixed size, or for a
    dynamic model the image fitted into `detect_size` (640 when 0), rounded up
    to the 32-pixel stride."""
    fixed = input_shape[2:4]
    if all(isinstance(side, int) and side > 0 for side in fixed):
        return int(fixed[0]), int(fixed[1])
    longest = detect_size or 640
    height, width = image_size
    factor = min(1.0, longest / max(height, width))
    return _stride_multiple(height * factor), _stride_multiple(width * factor)


def _stride_multiple(side: float) -> int:
    return max(32, int(np.ceil(side / 32)) * 32)


def decode_scrfd(
    outputs: Sequence[np.ndarray], canvas_size: tuple[int, int], min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCRFD's 9 outputs -> boxes (N, 4), scores (N,), keypoints (N, 5, 2) in canvas pixels.

    Per stride s (8, 16, 32) the rows are the cells of the (H/s, W/s) grid in
    row-major order, each twice (two anchors); distances are in units of s
    from the cell's corner point (x*s, y*s).
    """
    boxes, scores, points = [], [], []
    for level, stride in enumerate(STRIDES):
        score = np.asarray(outputs[level]).reshape(-1)
        distance = np.asarray(outputs[level + 3]).reshape(-1, 4) * stride
        offset = np.asarray(outputs[level + 6]).reshape(-1, 5, 2) * stride
        centres = _anchor_centres(canvas_size, stride)
        if len(score) != len(centres):
            raise CorruptWeightsError(
                f"{DETECTOR_FILE}: stride {stride} gives {len(score)} scores for "
                f"{len(centres)} anchors; not an SCRFD model with 2 anchors per cell"
            )
        keep = score >= min_score
        centre = centres[keep]
        boxes.append(np.hstack([centre - distance[keep, :2], centre + distance[keep, 2:]]))
        scores.append(score[keep])
        points.append(centre[:, None, :] + offset[keep])
    return (
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(scores).astype(np.float32),
        np.concatenate(points).astype(np.float32),
    )


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


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = list(np.argsort(-scores, kind="stable"))
    kept: list[int] = []
    while order:
        best, order = order[0], order[1:]
        kept.append(int(best))
        if order:
            overlap = box_iou(boxes[best], boxes[order])[0]
            order = [index for index, o in zip(order, overlap, strict=True) if o <= iou]
    return kept


def _anchor_centres(canvas_size: tuple[int, int], stride: int) -> np.ndarray:
    rows, cols = canvas_size[0] // stride, canvas_size[1] // stride
    y, x = np.mgrid[:rows, :cols]
    centres = np.stack([x, y], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, ANCHORS_PER_CELL, axis=0)


def _landmark_crop_matrix(box: np.ndarray) -> np.ndarray:
    """Scale + translation taking a square of 1.5 x the box's longer side,
    centred on the box, onto the 192 x 192 landmark input."""
    centre = (box[:2] + box[2:]) / 2
    side = 1.5 * float(max(box[2] - box[0], box[3] - box[1], 1.0))
    scale = LANDMARK_INPUT / side
    shift = LANDMARK_INPUT / 2 - scale * centre
    return np.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]]])


def signature_problem(
    inputs: Sequence[tuple[Any, ...]], outputs: Sequence[tuple[Any, ...]], signature: Signature
) -> str:
    """What in a model's input and output shapes contradicts `signature` ("" = nothing).

    Symbolic or unknown dimensions (str, None) match anything; an output is
    checked on its last dimension only, since SCRFD exports differ in a batch dim.
    """
    if len(inputs) != 1 or len(outputs) != len(signature.output_widths):
        return (
            f"has {len(inputs)} input(s) and {len(outputs)} output(s), "
            f"expected 1 and {len(signature.output_widths)}"
        )
    shape, expected = inputs[0], signature.input_shape
    if len(shape) != len(expected) or not all(map(_fits, shape, expected)):
        return f"has input shape {_shape_text(shape)}, expected {_shape_text(expected)}"
    for index, (output, width) in enumerate(zip(outputs, signature.output_widths, strict=True)):
        if not output or not _fits(output[-1], width):
            return f"has output {index} of shape {_shape_text(output)}, expected (..., {width})"
    return ""


def _fits(actual: Any, expected: int | None) -> bool:
    return expected is None or not isinstance(actual, int) or actual == expected


def _shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("?" if not isinstance(d, int) else str(d) for d in shape) + ")"


def _pack_folder(weights_dir: Path | None) -> Path:
    entry = next(entry for entry in load_manifest() if entry.name == PACK_NAME)
    folder = find_weight(entry, weights_dir)
    required = [DETECTOR_FILE, RECOGNISER_FILE]
    missing = required if folder is None else [f for f in required if not (folder / f).is_file()]
    if folder is None or missing:
        searched = f"in {folder}" if folder is not None else f"for {looked_for(entry, weights_dir)}"
        raise MissingWeightsError(
            f"insightface detector needs {' and '.join(missing)} of the buffalo_l pack; "
            f"looked {searched}; unzip insightface's buffalo_l.zip into weights/buffalo_l/ "
            "or use --set faces.detector=dlib"
        )
    return folder


def _session(path: Path, providers: list[Any], signature: Signature) -> Any:
    """An onnxruntime session of `path`, checked against the buffalo_l file's signature."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), session_options(), providers=providers)
    except load_errors() as error:
        message = " ".join(str(error).split())[:200]
        raise CorruptWeightsError(
            f"{path} cannot be loaded by onnxruntime ({message}); download it again"
        ) from None
    problem = signature_problem(
        [tuple(i.shape) for i in session.get_inputs()],
        [tuple(o.shape) for o in session.get_outputs()],
        signature,
    )
    if problem:
        raise CorruptWeightsError(f"{path} {problem}: not the buffalo_l file of that name")
    return session


__all__ = [
    "ARCFACE_MATCH_DISTANCE",
    "InsightfaceDetector",
    "Signature",
    "decode_scrfd",
    "detector_canvas",
    "five_points",
    "nms",
    "signature_problem",
]
