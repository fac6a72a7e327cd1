"""The insightface (buffalo_l ONNX) backend, on small models with the real signatures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from identity_reference import ARCFACE_TEMPLATE_112
from onnx_fixtures import (
    arcface_reference,
    scrfd_outputs,
    write_arcface,
    write_landmark106,
    write_scrfd,
)

from clipswap_video.cli import main
from clipswap_video.config import FaceSettings
from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.faces.insightface_backend import (
    ARCFACE_SIGNATURE,
    SCRFD_SIGNATURE,
    InsightfaceDetector,
    decode_scrfd,
    detector_canvas,
    nms,
    signature_problem,
)
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


def test_detection_decodes_letterboxes_thresholds_and_suppresses(tmp_path: Path) -> None:
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


def test_dynamic_detector_follows_detect_size_with_batched_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "buffalo_l"
    folder.mkdir()
    # 1280 x 720 at detect_size 640 -> 640 x 360, padded to the stride: 640 x 384.
    # The constant outputs only fit that canvas, so decoding checks its size too.
    write_scrfd(folder / "det_10g.onnx", (384, 640), [KEPT], dynamic=True, batch_dim=True)
    write_arcface(folder / "w600k_r50.onnx")
    [face] = _detector(tmp_path, detect_size=640).detect(_frame())
    assert np.allclose(face.box, np.array(KEPT["box"]) * 2)
    assert np.allclose(face.landmarks_5, POINTS * 2)
    with pytest.raises(CorruptWeightsError, match="2 anchors per cell"):
        _detector(tmp_path, detect_size=960).detect(_frame())  # a 960 x 544 canvas


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
    without = _detector(_pack(tmp_path / "plain"))
    assert without.refresh(_frame(), [old]) == [old]  # no landmark model: unchanged
    assert detector.refresh(_frame(), []) == []


def _similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    angle = np.deg2rad(degrees)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


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


def test_embeddings_come_from_aligned_crops(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path))
    image = _synthetic_image()
    # Frame -> crop similarities chosen here; the landmarks are the template
    # mapped back, so the right crop is known without the backend's Umeyama.
    matrices = [_similarity(0.5, 12.0, (-250.0, -60.0)), _similarity(0.8, -20.0, (-600.0, -50.0))]
    faces = []
    for matrix in matrices:
        inverse = cv2.invertAffineTransform(matrix)
        points = ARCFACE_TEMPLATE_112 @ inverse[:, :2].T + inverse[:, 2]
        faces.append(Face(box=np.zeros(4, np.float32), score=1.0, landmarks_5=points))
    batched = detector.embed(image, [*faces, faces[0]])
    for face, matrix in zip(batched, matrices, strict=False):
        crop = cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
        expected = arcface_reference(crop)
        assert np.linalg.norm(_embedding(face)) == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(_embedding(face), expected / np.linalg.norm(expected), atol=1e-4)
    one_by_one = [_embedding(detector.embed(image, [face])[0]) for face in faces]
    together = [_embedding(face) for face in batched]
    assert np.allclose(np.stack(together[:2]), np.stack(one_by_one), atol=1e-5)
    assert np.allclose(together[0], together[2])  # same face, same vector
    assert not np.allclose(together[0], together[1], atol=1e-2)
    assert detector.embed(image, []) == []


def test_missing_pack_names_files_folders_and_next_step(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    with pytest.raises(MissingWeightsError) as caught:
        _detector(root)
    message = str(caught.value)
    assert "det_10g.onnx and w600k_r50.onnx" in message
    assert f"looked for buffalo_l (any case) in {root}, weights;" in message
    assert "weights/buffalo_l" in message and "--set faces.detector=dlib" in message
    assert "\n" not in message
    _pack(root)
    (root / "buffalo_l" / "w600k_r50.onnx").unlink()
    with pytest.raises(MissingWeightsError, match=r"needs w600k_r50\.onnx of") as caught:
        _detector(root)
    assert f"looked in {root / 'buffalo_l'};" in str(caught.value)  # the pack's own folder


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
    write_scrfd(folder / "det_10g.onnx", CANVAS, [], outputs=6)  # a detector without keypoints
    with pytest.raises(CorruptWeightsError, match="6 output"):
        _detector(tmp_path)
    write_scrfd(folder / "det_10g.onnx", CANVAS, [])
    write_arcface(folder / "w600k_r50.onnx", width=128)
    with pytest.raises(CorruptWeightsError, match=r"w600k_r50\.onnx has output 0 .*512"):
        _detector(tmp_path)
    write_arcface(folder / "w600k_r50.onnx")
    write_arcface(folder / "2d106det.onnx")  # the recogniser under the landmark name
    with pytest.raises(CorruptWeightsError, match=r"2d106det\.onnx has input shape"):
        _detector(tmp_path)


def test_signatures_accept_symbolic_and_batched_shapes() -> None:
    scrfd_inputs = [("None", 3, "?", "?")]
    rows = [(12800, 1)] * 3 + [(12800, 4)] * 3 + [("?", 10)] * 3
    assert signature_problem(scrfd_inputs, rows, SCRFD_SIGNATURE) == ""
    assert signature_problem(scrfd_inputs, [(1, *r) for r in rows], SCRFD_SIGNATURE) == ""
    assert "input shape (?, 1, ?, ?)" in signature_problem(
        [("N", 1, "H", "W")], rows, SCRFD_SIGNATURE
    )
    swapped = rows[3:6] + rows[:3] + rows[6:]
    assert "output 0" in signature_problem(scrfd_inputs, swapped, SCRFD_SIGNATURE)
    assert signature_problem([(None, 3, 112, 112)], [(None, 512)], ARCFACE_SIGNATURE) == ""
    assert "input shape" in signature_problem([(1, 3, 128, 128)], [(1, 512)], ARCFACE_SIGNATURE)
    with pytest.raises(CorruptWeightsError, match="not an SCRFD model"):
        decode_scrfd(scrfd_outputs((320, 320), []), (640, 640), 0.5)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 4]], np.float32)
    scores = np.array([0.7, 0.9, 0.8, 0.6], np.float32)
    # Box 0 overlaps the best box 1 by IoU 0.82: dropped. Box 3 overlaps box 1 by
    # 0.35 (kept), and box 0 by 0.4, which does not count as box 0 is gone.
    assert nms(boxes, scores, 0.4) == [1, 2, 3]


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


def test_canvas_of_a_dynamic_detector() -> None:
    assert detector_canvas([1, 3, 640, 640], (720, 1280), 960) == (640, 640)
    assert detector_canvas(["N", 3, "H", "W"], (720, 1280), 960) == (544, 960)
    assert detector_canvas(["N", 3, "H", "W"], (720, 1280), 0) == (384, 640)
    assert detector_canvas(["N", 3, None, None], (100, 200), 960) == (128, 224)


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
