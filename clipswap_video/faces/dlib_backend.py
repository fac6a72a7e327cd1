"""The embedded default detector: dlib's HOG detector, 68-point shape predictor and
128-d ResNet face descriptor (King, "Dlib-ml", JMLR 2009; the descriptor is
dlib's `dlib_face_recognition_resnet_model_v1`, 99.38% on LFW).

The model files ship inside the PyPI package `face-recognition-models`. Its own
`import face_recognition_models` needs pkg_resources, so the files are found by
the package's location instead. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import CorruptWeightsError, MissingWeightsError
from clipswap_video.faces.detect import detection_input, keep_faces, refresh_near
from clipswap_video.faces.types import Face, Landmarks, box_iou, unit

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# dlib's documented same-person threshold is a Euclidean distance of 0.6 between
# raw descriptors (norm about 1.45), i.e. a cosine distance of about
# 0.6**2 / (2 * 1.45**2) = 0.086. Different people in t1.jpg come as close as
# 0.089, and one face flipped or darkened stays under 0.011: 0.07 keeps a margin.
DLIB_MATCH_DISTANCE = 0.07

_REFRESH_FACE_SIZE = 100.0
_REFRESH_MIN_IOU = 0.3
# Where dlib's HOG box sits in the 256 px ArcFace-aligned crop (measured on the
# astronaut and Grace Hopper stills): LandmarkPredictor runs the 68-point model in it.
_CROP_FACE_RECT = (25, 67, 222, 264)


def dlib_models_dir() -> Path:
    """The folder of face-recognition-models' .dat files."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise MissingWeightsError(
            "the dlib face models are not installed; run `pip install face-recognition-models` "
            "(or `make install`), or use --set faces.detector=insightface"
        )
    return Path(spec.origin).parent / "models"


def landmarks_5_from_68(points: Landmarks) -> Landmarks:
    """ArcFace's 5 points from dlib's 68: eye centres (36-41, 42-47), nose tip (30),
    mouth corners (48, 54)."""
    return np.stack(
        [points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]]
    ).astype(np.float32)


class DlibDetector:
    """HOG detection on a downscaled frame, landmarks and descriptors at full size."""

    name = "dlib"

    def __init__(self, settings: FaceSettings, weights_dir: Path | None = None) -> None:
        import dlib  # deferred: importing the interface must not load dlib

        self._dlib = dlib
        self.settings = settings
        self.match_distance = settings.match_distance or DLIB_MATCH_DISTANCE
        folder = dlib_models_dir()
        self._hog = _frontal_face_detector()
        self._predictor = _load(dlib.shape_predictor, folder / PREDICTOR_FILE)
        self._descriptor = _load(dlib.face_recognition_model_v1, folder / DESCRIPTOR_FILE)

    def detect(self, image: RgbImage, *, still: bool = False) -> list[Face]:
        small = detection_input(image, self.settings, still=still)
        scale = small.shape[1] / image.shape[1]
        rects, scores, _ = self._hog.run(
            small, self.settings.hog_upsample, self.settings.hog_threshold
        )
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float32)
            faces.append(self._landmarks(image, box / scale, float(score)))
        return keep_faces(faces, min_size=self.settings.min_size)

    def refresh(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """Re-finds each face near its box with HOG on a small crop, then its landmarks.

        Faces no longer there (gone, turned away, hidden) are left out, so a
        cut or an occlusion between full detections is noticed at once. Each
        crop is scaled so the face is about 100 px, the HOG window's comfort zone.
        """
        return refresh_near(faces, lambda face: self._find_near(image, face))

    def _find_near(self, image: RgbImage, face: Face) -> Face | None:
        height, width = image.shape[:2]
        centre = (face.box[:2] + face.box[2:]) / 2
        half = 1.25 * face.size  # room for the motion since the last frame, and HOG's margin
        x0, y0 = (max(0, int(v)) for v in centre - half)
        x1, y1 = min(width, int(centre[0] + half)), min(height, int(centre[1] + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = _REFRESH_FACE_SIZE / max(face.size, 1.0)  # small faces are enlarged
        crop = cv2.resize(
            image[y0:y1, x0:x1],
            None,
            fx=scale,
            fy=scale,
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        rects, scores, _ = self._hog.run(crop, 0, self.settings.hog_threshold)
        if not len(rects):
            return None
        factor, offset = (x1 - x0) / crop.shape[1], np.array([x0, y0, x0, y0], np.float32)
        boxes = (
            np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32)
            * factor
            + offset
        )
        # The box that overlaps the track's, not the best-scoring one: near a
        # crossing, the window also holds the other face.
        overlap = box_iou(boxes, face.box)[:, 0]
        best = int(np.argmax(overlap))
        if overlap[best] < _REFRESH_MIN_IOU:
            return None
        return self._landmarks(image, boxes[best], float(scores[best]))

    def embed(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        if not faces:
            return []
        shapes = self._dlib.full_object_detections([self._shape(image, face) for face in faces])
        descriptors = self._descriptor.compute_face_descriptor(np.ascontiguousarray(image), shapes)
        return [
            face.with_(embedding=unit(descriptor))
            for face, descriptor in zip(faces, descriptors, strict=True)
        ]

    def _landmarks(self, image: RgbImage, box: np.ndarray, score: float) -> Face:
        rect = self._rect(box)
        shape = self._predictor(image, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        return Face(
            box=box.astype(np.float32),
            score=score,
            landmarks_5=landmarks_5_from_68(points),
            landmarks_dense=points,
        )

    def _shape(self, image: RgbImage, face: Face) -> object:
        points = face.landmarks_dense
        if points is None or len(points) != 68:  # e.g. a face another backend found
            points = self._landmarks(image, face.box, face.score).landmarks_dense
            assert points is not None
        parts = [self._dlib.point(int(round(x)), int(round(y))) for x, y in points]
        return self._dlib.full_object_detection(self._rect(face.box), parts)

    def _rect(self, box: np.ndarray) -> object:
        left, top, right, bottom = (int(round(float(v))) for v in box)
        return self._dlib.rectangle(left, top, right, bottom)


class LandmarkPredictor:
    """dlib's 68-point shape predictor on ArcFace-aligned crops (no detection: the
    face sits where the alignment put it)."""

    crop_size = 256
    """The side of the crops it takes (the face rect was measured in them)."""

    def __init__(self) -> None:
        import dlib  # deferred: importing the interface must not load dlib

        self._predictor = _load(dlib.shape_predictor, dlib_models_dir() / PREDICTOR_FILE)
        self._rect = dlib.rectangle(*_CROP_FACE_RECT)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        shape = self._predictor(np.ascontiguousarray(crop), self._rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


# dlib's models never change once loaded, and this program calls them from one
# thread at a time: one copy a process, not one a detector (half a second
# each, and a batch worker, an evaluate after a swap or the bench makes many).
@functools.cache
def _frontal_face_detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def _load(loader: type, path: Path) -> Any:
    """The dlib model file at `path`, read by `loader`; a missing or unreadable file
    is a weights error naming the file, not dlib's RuntimeError."""
    if not path.is_file():
        raise MissingWeightsError(
            f"dlib model file {path} is missing; reinstall face-recognition-models "
            "(`pip install --force-reinstall face-recognition-models`)"
        )
    try:
        return loader(str(path))
    except RuntimeError as error:
        raise CorruptWeightsError(
            f"dlib model file {path} cannot be loaded ({error}); reinstall face-recognition-models"
        ) from None


__all__ = [
    "DLIB_MATCH_DISTANCE",
    "DlibDetector",
    "LandmarkPredictor",
    "dlib_models_dir",
    "landmarks_5_from_68",
]
