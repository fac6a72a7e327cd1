"""Faces of every size a viewer sees: the astronaut's face scaled to 24..300 px
tall on a textured 640x360 frame, at 10 random places, found by the bundled
RetinaFace-MobileNet with a box that overlaps the true one (IoU >= 0.5) and
landmarks inside it. dlib's HOG, the old default, finds none under ~80 px
(docs/benchmarks.md has both tables)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from face_fixtures import T1_IMAGE
from PIL import Image
from skimage.data import astronaut, brick

from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import CorruptWeightsError
from clipswap_video.faces.backends import create_detector
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.faces.types import box_iou

FACE = np.array([178, 57, 273, 177], np.float32)
"""The astronaut's face box in skimage's 512 px photo (x1, y1, x2, y2)."""


def face_frame(height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 640x360 frame with the face `height` px tall somewhere on bricks, and its box."""
    scale = height / float(FACE[3] - FACE[1])
    photo = cv2.resize(astronaut(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    face = FACE * scale
    top = int(max(0, min(face[1] - 0.1 * (face[3] - face[1]), photo.shape[0] - 360)))
    left = int(max(0, min(face[0] - 0.5 * (face[2] - face[0]), photo.shape[1] - 640)))
    crop = photo[top : top + 360, left : left + 640]
    canvas = cv2.resize(np.stack([brick()] * 3, axis=-1), (640, 360))
    x = int(rng.integers(0, 640 - crop.shape[1] + 1))
    y = int(rng.integers(0, 360 - crop.shape[0] + 1))
    canvas[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    return canvas, face + np.array([x - left, y - top, x - left, y - top], np.float32)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector(FaceSettings(detector="retinaface_mobile", min_size=0))


@pytest.mark.parametrize("height", [24, 32, 48, 64, 128, 300])
def test_faces_of_every_size_are_found(detector: FaceDetector, height: int) -> None:
    rng = np.random.default_rng(height)
    found = 0
    for _ in range(10):
        image, truth = face_frame(height, rng)
        faces = detector.detect(image)
        if not faces:
            continue
        best = faces[int(np.argmax(box_iou(np.stack([f.box for f in faces]), truth)[:, 0]))]
        inside = (best.landmarks_5 >= truth[:2]).all() and (best.landmarks_5 <= truth[2:]).all()
        found += float(box_iou(best.box[None], truth)[0, 0]) >= 0.5 and bool(inside)
    assert found >= 10 * 0.95


def test_min_score_file_is_its_own_threshold_for_the_bundled_graph() -> None:
    detector = create_detector(FaceSettings(min_score="file"))
    assert detector.min_score == 0.8  # type: ignore[attr-defined]  # it stores none


def test_a_broken_bundled_graph_is_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import clipswap_video.faces.mobile_retinaface as mobile

    monkeypatch.setattr(mobile, "bundled_graph", lambda: b"not an onnx graph")
    with pytest.raises(CorruptWeightsError, match="reinstall it: pip install --force-reinstall"):
        create_detector(FaceSettings(detector="retinaface_mobile"))


def test_the_windows_of_a_group_are_refreshed_in_one_run(detector: FaceDetector) -> None:
    with Image.open(T1_IMAGE) as photo:
        group = np.asarray(photo.convert("RGB"))
    faces = [face.with_(track_id=index) for index, face in enumerate(detector.detect(group))]
    assert len(faces) == 6
    together = detector.refresh(group, faces)
    alone = [face for single in faces for face in detector.refresh(group, [single])]
    assert [face.track_id for face in together] == list(range(6))
    for batched, single in zip(together, alone, strict=True):  # padding changes nothing
        assert np.abs(batched.landmarks_5 - single.landmarks_5).max() < 0.5
