"""The insightface (buffalo_l ONNX) backend, on small models with the real
signatures that insightface's own model zoo loads as SCRFD, ArcFaceONNX and
Landmark: the detector must give what those classes give, mapped onto our faces."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from insightface.app.common import Face as InsightfaceFace
from insightface.model_zoo import get_model
from onnx_fixtures import write_arcface, write_landmark106, write_scrfd

from clipswap_video.cli import main
from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import (
    ConfigValueError,
    CorruptWeightsError,
    ExitCode,
    MissingWeightsError,
)
from clipswap_video.faces.insightface_backend import InsightfaceDetector, scrfd_input_size
from clipswap_video.faces.onnx_session import onnx_providers
from clipswap_video.faces.types import Face

CANVAS = (640, 640)
POINTS = np.array([[320, 170], [360, 170], [340, 190], [325, 210], [355, 210]], np.float32)
KEPT = {
    "stride": 16,
    "cell": (21, 11),
    "anchor": 1,
    "score": 0.9,
    "box": (300, 140, 380, 230),
    "points": POINTS,
}
DUPLICATE = {
    **KEPT,
    "stride": 8,
    "cell": (42, 23),
    "anchor": 0,
    "score": 0.8,
    "box": (302, 142, 382, 228),
}
UNSURE = {**KEPT, "cell": (5, 5), "score": 0.3, "box": (60, 60, 140, 150)}
TINY = {
    **KEPT,
    "stride": 8,
    "cell": (10, 40),
    "score": 0.95,
    "box": (78, 318, 88, 328),
    "points": np.full((5, 2), 83.0),
}
DENSE = np.random.default_rng(1).uniform(-0.6, 0.6, (106, 2)).astype(np.float32)


def _pack(
    root: Path, *, landmarks: bool = False, faces: list[dict[str, Any]] | None = None
) -> Path:
    folder = root / "buffalo_l"
    folder.mkdir(parents=True, exist_ok=True)
    write_scrfd(folder / "det_10g.onnx", CANVAS, [KEPT] if faces is None else faces)
    write_arcface(folder / "w600k_r50.onnx")
    if landmarks:
        write_landmark106(folder / "2d106det.onnx", DENSE)
    return root


def _detector(root: Path, **settings: Any) -> InsightfaceDetector:
    face_settings = dataclasses.replace(FaceSettings(), detector="insightface", **settings)
    return InsightfaceDetector(face_settings, root)


def _frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)


def _five(dense: np.ndarray) -> np.ndarray:
    """The 5 points as the backend must take them from the 106 (eyes: contour means)."""
    return np.stack(
        [
            dense[[33, 35, 40, 39]].mean(0),
            dense[[87, 89, 94, 93]].mean(0),
            dense[86],
            dense[52],
            dense[61],
        ]
    )


def _zoo(path: Path) -> Any:
    """insightface's own model for a stand-in file, loaded the plain way."""
    return get_model(str(path), providers=["CPUExecutionProvider"])


def test_detection_letterboxes_thresholds_and_suppresses(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path, faces=[KEPT, DUPLICATE, UNSURE, TINY]), device="cpu")
    faces = detector.detect(_frame())  # 1280 x 720 into the fixed 640 canvas: factor 0.5
    assert len(faces) == 1  # duplicate suppressed, unsure below 0.5, tiny under 24 px
    assert np.allclose(faces[0].box, np.array(KEPT["box"]) * 2)
    assert np.allclose(faces[0].landmarks_5, POINTS * 2)
    assert faces[0].score == pytest.approx(0.9)
    assert faces[0].landmarks_dense is None  # no 2d106det in the pack
    assert detector.match_distance == pytest.approx(0.6)
    assert _detector(tmp_path, match_distance=0.3).match_distance == pytest.approx(0.3)
    lenient = _detector(tmp_path, min_score=0.2, min_size=0).detect(_frame())
    assert [face.score for face in lenient] == pytest.approx([0.95, 0.9, 0.3])


def test_detections_are_insightface_scrfd_detect_on_the_bgr_image(tmp_path: Path) -> None:
    """The stand-in scales its scores by how much redder than blue its input is,
    so an RGB frame handed to insightface without the BGR swap loses its face."""
    folder = _pack(tmp_path, faces=[KEPT, DUPLICATE, TINY]) / "buffalo_l"
    write_scrfd(folder / "det_10g.onnx", CANVAS, [KEPT, DUPLICATE, TINY], colour_gate=True)
    frame = _frame()
    frame[..., 0], frame[..., 2] = 150, 110  # reddish: gate 0.68 on the letterboxed canvas
    detector = _detector(tmp_path, min_size=0)
    scrfd = _zoo(folder / "det_10g.onnx")
    boxes, points = scrfd.detect(np.ascontiguousarray(frame[..., ::-1]), max_num=0)
    expected = [
        Face(box=row[:4], score=float(row[4]), landmarks_5=five)
        for row, five in zip(boxes, points, strict=True)
    ]
    faces = detector.detect(frame)
    assert len(faces) == len(expected) == 2  # the tiny face and the kept one, not the duplicate
    for face, want in zip(faces, expected, strict=True):
        np.testing.assert_array_equal(face.box, want.box)
        np.testing.assert_array_equal(face.landmarks_5, want.landmarks_5)
        assert face.score == want.score
    assert faces[1].score == pytest.approx(0.9 * 0.68, abs=0.01)
    assert detector.detect(np.ascontiguousarray(frame[..., ::-1])) == []  # bluish: gate 0.32


def test_dynamic_detector_follows_detect_size_with_batched_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "buffalo_l"
    folder.mkdir()
    # 1280 x 720 at detect_size 640 -> 640 x 360, padded to the stride: 640 x 384.
    # The constant outputs only fit that input, so other sizes show in the anchors.
    write_scrfd(folder / "det_10g.onnx", (384, 640), [KEPT], dynamic=True, batch_dim=True)
    write_arcface(folder / "w600k_r50.onnx")
    [face] = _detector(tmp_path, detect_size=640).detect(_frame())
    assert np.allclose(face.box, np.array(KEPT["box"]) * 2)
    assert np.allclose(face.landmarks_5, POINTS * 2)
    with pytest.raises(CorruptWeightsError, match="960 x 544 input: not the file") as caught:
        _detector(tmp_path, detect_size=960).detect(_frame())
    assert "do not fit SCRFD's anchors" in str(caught.value) and "\n" not in str(caught.value)


def test_scrfd_input_size_of_a_dynamic_detector() -> None:
    assert scrfd_input_size((720, 1280), 960) == (960, 544)
    assert scrfd_input_size((720, 1280), 0) == (640, 384)  # "paper" and 0: SCRFD's own 640
    assert scrfd_input_size((100, 200), 960) == (224, 128)  # never enlarged


def test_dense_landmarks_give_the_five_points(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path, landmarks=True))
    [face] = detector.detect(_frame())
    box = np.array(KEPT["box"], np.float32) * 2
    centre, side = (box[:2] + box[2:]) / 2, float(max(box[2:] - box[:2]))
    expected = centre + DENSE * 0.75 * side  # the crop spans 1.5 x the longer side
    assert face.landmarks_dense is not None and face.landmarks_dense.shape == (106, 2)
    assert np.allclose(face.landmarks_dense, expected, atol=1e-3)
    assert np.allclose(face.landmarks_5, _five(expected), atol=1e-3)
    assert np.allclose(face.box, box)  # detection keeps the detector's box
    landmark = _zoo(tmp_path / "buffalo_l" / "2d106det.onnx")
    found = InsightfaceFace(bbox=box)
    landmark.get(np.ascontiguousarray(_frame()[..., ::-1]), found)
    np.testing.assert_array_equal(face.landmarks_dense, found.landmark_2d_106)


def test_refresh_moves_the_box_with_the_landmarks(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path, landmarks=True))
    box = np.array([600, 300, 760, 480], np.float32)
    centre, side = (box[:2] + box[2:]) / 2, 180.0
    measured = centre + DENSE * 0.75 * side
    before = (_five(measured) - [10.0, -5.0]).astype(np.float32)  # moved 10 px right, 5 up
    old = Face(box=box, score=0.9, landmarks_5=before, track_id=4)
    [new] = detector.refresh(_frame(), [old])
    assert new.landmarks_dense is not None
    assert np.allclose(new.landmarks_dense, measured, atol=1e-3)
    assert np.allclose(new.landmarks_5, _five(measured), atol=1e-3)
    assert new.track_id == 4 and new.score == pytest.approx(0.9)
    assert np.allclose(new.box, box + [10, -5, 10, -5], atol=1e-3)
    point = np.full((5, 2), 500.0, np.float32)
    collapsed = Face(box=np.full(4, 500.0, np.float32), score=0.9, landmarks_5=point)
    [measured_there] = detector.refresh(_frame(), [collapsed])  # a box of 0 px
    assert measured_there.landmarks_dense is not None
    assert np.isfinite(measured_there.landmarks_dense).all()
    without = _detector(_pack(tmp_path / "plain"))
    assert without.refresh(_frame(), [old]) == [old]  # no landmark model: unchanged
    assert detector.refresh(_frame(), []) == []


def _synthetic_image() -> np.ndarray:
    y, x = np.mgrid[:720, :1280].astype(np.float32)
    image = np.stack([x / 5 % 256, y / 3 % 256, (x + y) / 7 % 256], axis=-1).astype(np.uint8)
    for index in range(40):
        centre = (int(index * 97 % 1280), int(index * 53 % 720))
        cv2.circle(image, centre, 25, (index * 37 % 256, 255 - index * 11, 90), -1)
    return image


def _embedding(face: Face) -> np.ndarray:
    assert face.embedding is not None
    return face.embedding


def test_embeddings_are_arcface_onnx_normed_embeddings(tmp_path: Path) -> None:
    """Each embedding is what ArcFaceONNX.get gives for the BGR image (its
    norm_crop of the 5 points); several faces go through in one batch."""
    detector = _detector(_pack(tmp_path))
    recogniser = _zoo(tmp_path / "buffalo_l" / "w600k_r50.onnx")
    image = _synthetic_image()
    template = np.array(
        [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]],
        np.float32,
    )
    placed = [(2.0, (500.0, 120.0)), (1.2, (760.0, 60.0))]  # template scaled and moved
    faces = [
        Face(box=np.zeros(4, np.float32), score=1.0, landmarks_5=template * k + shift)
        for k, shift in placed
    ]
    batched = detector.embed(image, [*faces, faces[0]])
    for face in batched:
        found = InsightfaceFace(kps=face.landmarks_5)
        with warnings.catch_warnings():  # norm_crop calls a scikit-image API it deprecated
            warnings.simplefilter("ignore", FutureWarning)
            recogniser.get(np.ascontiguousarray(image[..., ::-1]), found)
        assert np.linalg.norm(_embedding(face)) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(_embedding(face), found.normed_embedding, atol=1e-5)
    one_by_one = [_embedding(detector.embed(image, [face])[0]) for face in faces]
    together = [_embedding(face) for face in batched]
    assert np.allclose(np.stack(together[:2]), np.stack(one_by_one), atol=1e-5)
    assert np.allclose(together[0], together[2])  # same face, same vector
    assert not np.allclose(together[0], together[1], atol=1e-2)
    assert detector.embed(image, []) == []


def test_missing_files_name_files_folders_and_next_step(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    with pytest.raises(MissingWeightsError) as caught:
        _detector(root)
    message = str(caught.value)
    assert f"no det_10g.onnx and no w600k_r50.onnx in {root}, weights " in message
    assert "`weights list` shows where each may sit" in message and "buffalo_l" in message
    assert "--set faces.detector=dlib" in message and "\n" not in message
    _pack(root)
    (root / "buffalo_l" / "w600k_r50.onnx").unlink()
    with pytest.raises(MissingWeightsError, match=r"cannot load: no w600k_r50\.onnx in "):
        _detector(root)


@pytest.mark.parametrize("layout", ["buffalo_l", ".", "models/buffalo_l"])
def test_the_files_are_found_in_each_layout(tmp_path: Path, layout: str) -> None:
    """weights/buffalo_l/, --weights the buffalo_l folder itself, --weights an
    insightface root (~/.insightface holds models/buffalo_l/)."""
    folder = tmp_path / "root" / layout
    folder.mkdir(parents=True, exist_ok=True)
    write_scrfd(folder / "det_10g.onnx", CANVAS, [KEPT])
    write_arcface(folder / "w600k_r50.onnx")
    write_landmark106(folder / "2d106det.onnx", DENSE)
    [face] = _detector(tmp_path / "root").detect(_frame())
    assert face.landmarks_dense is not None  # 2d106det found beside them
    assert np.allclose(face.box, np.array(KEPT["box"]) * 2)


def test_corrupt_or_wrong_files_are_refused(tmp_path: Path) -> None:
    folder = _pack(tmp_path) / "buffalo_l"
    good = (folder / "det_10g.onnx").read_bytes()
    (folder / "det_10g.onnx").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(CorruptWeightsError, match=r"det_10g\.onnx cannot be loaded") as caught:
        _detector(tmp_path)
    assert "\n" not in str(caught.value)
    (folder / "det_10g.onnx").write_bytes(good[: len(good) // 2])  # a cut-off download
    with pytest.raises(CorruptWeightsError, match=r"det_10g\.onnx cannot be loaded"):
        _detector(tmp_path)
    write_arcface(folder / "det_10g.onnx")  # the recogniser under the detector's name
    with pytest.raises(CorruptWeightsError, match="as ArcFaceONNX, expected SCRFD"):
        _detector(tmp_path)
    write_scrfd(folder / "det_10g.onnx", CANVAS, [], outputs=6)  # a detector without keypoints
    with pytest.raises(CorruptWeightsError, match=r"SCRFD without keypoints \(6 outputs"):
        _detector(tmp_path)
    write_scrfd(folder / "det_10g.onnx", CANVAS, [])
    write_arcface(folder / "w600k_r50.onnx", width=128)
    with pytest.raises(CorruptWeightsError, match=r"w600k_r50\.onnx gives 128-d embeddings"):
        _detector(tmp_path)
    write_arcface(folder / "w600k_r50.onnx")
    write_arcface(folder / "2d106det.onnx")  # the recogniser under the landmark name
    with pytest.raises(CorruptWeightsError, match="as ArcFaceONNX, expected Landmark"):
        _detector(tmp_path)
    write_landmark106(folder / "2d106det.onnx", DENSE[:68])  # 68 points, not 106
    with pytest.raises(CorruptWeightsError, match="Landmark with 68 2-d points, expected 106"):
        _detector(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "another model"])
def test_a_broken_detector_file_is_one_line_and_its_exit_code(
    cli, tmp_path: Path, damage: str
) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), _frame())
    path = _pack(tmp_path / "weights") / "buffalo_l" / "det_10g.onnx"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        write_landmark106(path, DENSE)
    code, err = cli("faces", photo, "--detector", "insightface", "--weights", tmp_path / "weights")
    assert code == ExitCode.CORRUPT_WEIGHTS == CorruptWeightsError.exit_code
    assert str(path) in err and err.count("\n") == 1


def test_device_choices(tmp_path: Path) -> None:
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cpu_only = ["CPUExecutionProvider"]
    assert onnx_providers("cpu", cuda) == cpu_only
    assert onnx_providers("auto", cpu_only) == cpu_only
    with pytest.raises(ConfigValueError, match="no CUDA provider"):
        onnx_providers("cuda", cpu_only)
    assert onnx_providers("auto", cuda) == [("CUDAExecutionProvider", {"device_id": 0}), *cpu_only]
    assert onnx_providers("cuda:1", cuda)[0] == ("CUDAExecutionProvider", {"device_id": 1})
    for bad in ("gpu", "cuda:x", "cpu:1", "cuda:"):
        with pytest.raises(ConfigValueError, match="auto, cpu, cuda"):
            onnx_providers(bad, cuda)
    assert _detector(_pack(tmp_path), device="cpu").providers == cpu_only
    with pytest.raises(ConfigValueError, match="faces.device = 'tpu'"):
        _detector(tmp_path, device="tpu")


def test_faces_command_with_the_insightface_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), _frame())
    root = _pack(tmp_path / "weights")
    arguments = ["faces", str(photo), "--detector", "insightface", "--weights", str(root), "--json"]
    assert main(arguments) == 0
    [face] = json.loads(capsys.readouterr().out)["frames"][0]["faces"]
    assert face["box"] == [600.0, 280.0, 760.0, 460.0]
