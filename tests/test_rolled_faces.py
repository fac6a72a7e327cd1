"""Faces rolled up to a quarter turn either way: found by the bundled
RetinaFace-MobileNet with the quarter-turn passes, with landmarks that align
the face upright, tracked under one id while the head rolls, and the extra
passes paid for only where a face may have been missed.

The ground truth is the upright photo's own detection, turned with the exact
matrix the rolled frame was drawn with."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from face_fixtures import grace_hopper
from skimage.data import astronaut, brick

from clipswap_video.config_sections import FaceSettings, TrackSettings
from clipswap_video.faces import FaceAnalyzer, alignment_matrices, create_detector
from clipswap_video.faces import analysis as analysis_module
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.faces.identity import detect_still
from clipswap_video.faces.pose import estimate_roll
from clipswap_video.faces.rolled import affine_points, detect_rolled, transform_face, unrotate_face
from clipswap_video.faces.types import Face, box_iou

FACE = np.array([178, 57, 273, 177], np.float32)
"""The astronaut's face box in skimage's 512 px photo (x1, y1, x2, y2)."""
FRAME = (640, 360)
BACKDROP = cv2.resize(np.stack([brick()] * 3, axis=-1), FRAME)


def rolled_frame(angle: float, face_size: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut turned `angle` degrees counter-clockwise about her face,
    which is `face_size` px and centred on bricks; and the photo -> frame matrix."""
    photo = astronaut()
    centre = (FACE[:2] + FACE[2:]) / 2
    scale = face_size / float(np.sqrt(np.prod(FACE[2:] - FACE[:2])))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += np.array(FRAME) / 2 - centre
    drawn = cv2.warpAffine(photo, matrix, FRAME, flags=cv2.INTER_LINEAR)
    covered = cv2.warpAffine(np.ones(photo.shape[:2], np.uint8), matrix, FRAME) > 0
    return np.where(covered[..., None], drawn, BACKDROP), matrix


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector(FaceSettings(detector="retinaface_mobile", min_size=0))


@pytest.fixture(scope="module")
def upright(detector: FaceDetector) -> Face:
    """The face as detected in the upright frame: the truth the rolled frames turn."""
    image, _ = rolled_frame(0)
    [face] = detector.detect(image)
    return face


def truth_at(upright: Face, angle: float, face_size: float = 100.0) -> Face:
    """`upright` turned with the frame drawn at `angle`."""
    _, to_photo = rolled_frame(0, face_size)
    _, to_frame = rolled_frame(angle, face_size)
    photo_to_frame = np.vstack([to_frame, [0, 0, 1]]) @ np.vstack(
        [cv2.invertAffineTransform(to_photo), [0, 0, 1]]
    )
    return transform_face(upright, photo_to_frame[:2])


def landmark_error(face: Face, truth: Face) -> float:
    """Mean landmark distance as a fraction of the face size."""
    return float(np.linalg.norm(face.landmarks_5 - truth.landmarks_5, axis=1).mean()) / truth.size


@pytest.mark.parametrize("angle", [-90, -60, -30, 0, 30, 60, 90])
def test_a_rolled_still_is_found_and_aligned_upright(
    detector: FaceDetector, upright: Face, angle: int
) -> None:
    image, _ = rolled_frame(angle)
    truth = truth_at(upright, angle)
    faces = detect_rolled(detector.detect, image, detector.detect(image))
    overlap = box_iou(np.stack([f.box for f in faces]), truth.box)[:, 0]
    face = faces[int(np.argmax(overlap))]
    assert overlap.max() >= 0.5
    assert landmark_error(face, truth) < 0.08
    # Aligned with the found landmarks, the face is upright: its true landmarks
    # land in the crop about where the upright photo's do (the ArcFace template).
    in_crop = affine_points(alignment_matrices(face.landmarks_5, 112)[0], truth.landmarks_5)
    upright_in_crop = affine_points(
        alignment_matrices(upright.landmarks_5, 112)[0], upright.landmarks_5
    )
    assert np.linalg.norm(in_crop - upright_in_crop, axis=1).mean() < 5.0
    assert abs(estimate_roll(in_crop) - estimate_roll(upright_in_crop)) < 12.0


def test_the_turned_refresh_window_follows_a_face_past_a_quarter_turn(
    detector: FaceDetector, upright: Face
) -> None:
    """The refresh turns its window by the roll the track's landmarks show, so
    a face rolled further than any detection pass sees upright is still measured."""
    for angle in (45, -90, 135, 180):
        image, _ = rolled_frame(angle)
        track = truth_at(upright, angle + 10).with_(track_id=3)  # last frame's roll
        [face] = detector.refresh(image, [track])
        assert face.track_id == 3
        assert landmark_error(face, truth_at(upright, angle)) < 0.02


def test_a_box_found_in_a_quarter_turned_image_maps_back_exactly() -> None:
    stored = np.zeros((100, 160), np.uint8)
    stored[20, 10], stored[80, 50] = 1, 2  # the corners of a face's box, x1 y1 and x2 y2
    box = np.array([10, 20, 50, 80], np.float32)
    for turns in range(4):
        turned = np.rot90(stored, turns)
        corners = [np.argwhere(turned == mark)[0][::-1] for mark in (1, 2)]
        found = np.concatenate([np.min(corners, 0), np.max(corners, 0)]).astype(np.float32)
        face = Face(box=found, score=1.0, landmarks_5=np.zeros((5, 2), np.float32))
        assert unrotate_face(face, turns, turned.shape).box == pytest.approx(box)


def test_a_turned_box_keeps_its_size() -> None:
    """Between quarter turns the box blends width and height and the face's
    size stays (the bounds of the turned corners would grow it)."""
    face = Face(box=np.array([0, 0, 80, 120], np.float32), score=1.0, landmarks_5=np.zeros((5, 2)))
    for angle in (0, 30, 45, 90, 135):
        turned = transform_face(face, cv2.getRotationMatrix2D((40.0, 60.0), angle, 1.0))
        assert turned.size == pytest.approx(face.size, rel=0.03)
        assert (turned.box[:2] + turned.box[2:]) / 2 == pytest.approx([40, 60], abs=1e-4)
    quarter = transform_face(face, cv2.getRotationMatrix2D((40.0, 60.0), 90, 1.0))
    assert quarter.box[2:] - quarter.box[:2] == pytest.approx([120, 80], abs=1e-4)


def rolling_head(upright: Face, face_size: float) -> Iterator[tuple[np.ndarray, Face]]:
    """The head rolls from 0 to 90 degrees, then round to -90 (40 frames)."""
    angles = [*np.linspace(0, 90, 14), *np.linspace(90, -90, 27)[1:]]
    for angle in angles:
        yield rolled_frame(angle, face_size)[0], truth_at(upright, angle, face_size)


@pytest.mark.parametrize(
    ("face_size", "max_error"),
    [
        # Upright, a 50 px face keeps good landmarks to about 30 degrees of roll
        # and is lost past about 65: the quarter-turn passes find it again.
        (50, 0.08),
        # Found by the upright pass at any roll here, with landmarks that drift:
        # the turned refresh window keeps them close between full detections.
        (100, 0.04),
    ],
)
def test_a_rolling_head_keeps_one_track(
    detector: FaceDetector, face_size: float, max_error: float
) -> None:
    [upright] = detector.detect(rolled_frame(0, face_size)[0])
    analyzer = FaceAnalyzer(detector, FaceSettings(detector="retinaface_mobile"), TrackSettings())
    found, ids, errors = 0, set(), []
    frames = list(rolling_head(upright, face_size))
    for image, truth in frames:
        faces = [f for f in analyzer.analyse(image) if box_iou(f.box[None], truth.box)[0, 0] > 0.3]
        found += len(faces) == 1
        ids.update(face.track_id for face in faces)
        errors += [landmark_error(face, truth) for face in faces]
    assert found >= 0.95 * len(frames)
    assert ids == {0}
    assert np.mean(errors) < max_error


def test_quarter_turn_passes_run_only_when_a_face_may_be_missed(
    detector: FaceDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the first full detection, and on one that no longer finds a face the
    previous one found; not on frames where nothing was lost."""
    calls: list[int] = []

    def counting(*args: object, **kwargs: object) -> list[Face]:
        calls.append(1)
        return detect_rolled(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(analysis_module, "detect_rolled", counting)
    analyzer = FaceAnalyzer(
        detector, FaceSettings(detector="retinaface_mobile", detect_every=5), TrackSettings()
    )
    face, _ = rolled_frame(0)
    frames = [face] * 12 + [BACKDROP] * 12  # the face goes at frame 12
    passes_ran = []
    for image in frames:
        before = len(calls)
        analyzer.analyse(image)
        passes_ran.append(len(calls) > before)
    # Full detections at 0, 5, 10, 15, 20: the first, and the first without the face.
    assert [index for index, ran in enumerate(passes_ran) if ran] == [0, 15]


def test_without_refine_one_detection_pass_is_all(
    detector: FaceDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faces.refine = false (the paper mode): no quarter-turn pass, no re-measure."""
    calls: list[str] = []
    monkeypatch.setattr(analysis_module, "detect_rolled", lambda *a: calls.append("turned"))
    settings = FaceSettings(detector="retinaface_mobile", detect_every=1, refine=False)
    analyzer = FaceAnalyzer(detector, settings, TrackSettings(max_gap=0))
    monkeypatch.setattr(analyzer, "_remeasured", lambda *a: calls.append("again"))
    face, _ = rolled_frame(0)
    for image in [face] * 3 + [BACKDROP] * 3:
        assert len(analyzer.analyse(image)) == (1 if image is face else 0)
    assert calls == []


def test_a_sideways_source_photo_gives_an_upright_crop() -> None:
    detector = create_detector(FaceSettings())
    upright = grace_hopper()
    sideways = np.ascontiguousarray(np.rot90(upright, 1))
    [reference] = detect_still(detector, upright)
    expected = _aligned(upright, reference)
    [found] = detect_still(detector, sideways)
    assert np.abs(_aligned(sideways, found) - expected).mean() < 2
    # The upright pass alone finds this face too, but with its landmarks off.
    [upright_pass] = detector.detect(sideways)
    assert np.abs(_aligned(sideways, upright_pass) - expected).mean() > 24


def test_one_pass_over_a_source_photo_is_the_detectors_upright_pass() -> None:
    """The paper mode (`faces.refine = false`): the photo searched once, upright
    and, with the papers' detection size, at full size."""
    sizes: list[tuple[int, ...]] = []
    inner = create_detector(FaceSettings(detect_size="paper", refine=False))
    run = inner._run  # type: ignore[attr-defined]
    inner._run = lambda images: sizes.extend(i.shape for i in images) or run(images)  # type: ignore[attr-defined]
    photo = cv2.resize(grace_hopper(), (1400, 1640))  # wider than 1279: frames would halve
    sideways = np.ascontiguousarray(np.rot90(photo, 1))
    [found] = detect_still(inner, photo, one_pass=True)
    assert sizes == [photo.shape]
    assert found.score > 0.9
    # Sideways, the one upright pass finds nothing here; the turned passes do.
    assert detect_still(inner, sideways, one_pass=True) == []
    turned = detect_still(inner, sideways)[0]  # best score first
    assert np.abs(_aligned(sideways, turned) - _aligned(photo, found)).mean() < 3


def _aligned(image: np.ndarray, face: Face) -> np.ndarray:
    matrix = alignment_matrices(face.landmarks_5, 112)[0]
    return cv2.warpAffine(image, matrix, (112, 112)).astype(np.int16)
