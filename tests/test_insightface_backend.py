"""The insightface (buffalo_l ONNX) backend, on small models with the real signatures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import (
    arcface_weights,
    scrfd_outputs,
    write_arcface,
    write_landmark106,
    write_scrfd,
)

from clipswap_video.cli import main
from clipswap_video.config import FaceSettings
from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.faces import alignment_matrices, create_detector
from clipswap_video.faces.insightface_backend import (
    LANDMARK_5_OF_106,
    decode_scrfd,
    detector_canvas,
    onnx_providers,
)
from clipswap_video.faces.types import Face

POINTS = np.array([[320, 170], [360, 170], [340, 190], [325, 210], [355, 210]], np.float32)
KEPT = {"stride": 16, "cell": (21, 11), "anchor": 1, "score": 0.9,
        "box": (300, 140, 380, 230), "points": POINTS}  # fmt: skip
DUPLICATE = {**KEPT, "stride": 8, "cell": (42, 23), "anchor": 0, "score": 0.8,
             "box": (302, 142, 382, 228)}  # fmt: skip
UNSURE = {**KEPT, "cell": (5, 5), "score": 0.3, "box": (60, 60, 140, 150)}
TINY = {**KEPT, "stride": 8, "cell": (10, 60), "score": 0.95, "box": (78, 478, 88, 488),
        "points": np.full((5, 2), 83.0)}  # fmt: skip
DENSE = np.random.default_rng(1).uniform(-0.6, 0.6, (106, 2)).astype(np.float32)


def _pack(root: Path, *, landmarks: bool = False, faces: list[dict] | None = None) -> Path:
    folder = root / "buffalo_l"
    folder.mkdir(parents=True, exist_ok=True)
    write_scrfd(folder / "det_10g.onnx", 640, faces if faces is not None else [KEPT])
    write_arcface(folder / "w600k_r50.onnx")
    if landmarks:
        write_landmark106(folder / "2d106det.onnx", DENSE)
    return root


def _detector(root: Path, **settings: object):  # type: ignore[no-untyped-def]
    face_settings = dataclasses.replace(FaceSettings(), detector="insightface", **settings)
    return create_detector(face_settings, root)


def _frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)


def test_detection_decodes_letterboxes_thresholds_and_suppresses(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path, faces=[KEPT, DUPLICATE, UNSURE, TINY]), device="cpu")
    faces = detector.detect(_frame())  # 1280 x 720 into the fixed 640 canvas: factor 0.5
    assert len(faces) == 1  # duplicate suppressed, unsure below 0.5, tiny under 24 px
    assert np.allclose(faces[0].box, np.array(KEPT["box"]) * 2)
    assert np.allclose(faces[0].landmarks_5, POINTS * 2)
    assert faces[0].score == pytest.approx(0.9)
    assert detector.match_distance == pytest.approx(0.6)


def test_dense_landmarks_give_the_five_points(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path, landmarks=True))
    [face] = detector.detect(_frame())
    box = np.array(KEPT["box"], np.float32) * 2
    centre, side = (box[:2] + box[2:]) / 2, float(max(box[2:] - box[:2]))
    expected = centre + DENSE * 0.75 * side  # the crop spans 1.5 x the longer side
    assert face.landmarks_dense is not None
    assert np.allclose(face.landmarks_dense, expected, atol=1e-3)
    assert np.allclose(face.landmarks_5, expected[LANDMARK_5_OF_106], atol=1e-3)


def test_refresh_moves_the_box_with_the_landmarks(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path, landmarks=True))
    box = np.array([600, 300, 760, 480], np.float32)
    centre, side = (box[:2] + box[2:]) / 2, 180.0
    measured = (centre + DENSE * 0.75 * side)[LANDMARK_5_OF_106]
    before = (measured - [10.0, -5.0]).astype(np.float32)  # it moved 10 px right, 5 px up
    old = Face(box=box, score=0.9, landmarks_5=before, track_id=4)
    [new] = detector.refresh(_frame(), [old])
    assert np.allclose(new.landmarks_5, measured, atol=1e-3)
    assert new.track_id == 4
    assert np.allclose(new.box, box + [10, -5, 10, -5], atol=1e-3)
    without = _detector(_pack(tmp_path / "plain"))
    assert without.refresh(_frame(), [old]) == [old]  # no landmark model: unchanged


def test_embeddings_are_arcface_crops_through_the_model(tmp_path: Path) -> None:
    detector = _detector(_pack(tmp_path))
    image = _frame()
    faces = [
        Face(box=np.zeros(4, np.float32), score=1.0, landmarks_5=POINTS * scale)
        for scale in (1.0, 1.5, 2.0)
    ]
    batched = detector.embed(image, faces)
    one_by_one = [detector.embed(image, [face])[0] for face in faces]
    for together, alone, face in zip(batched, one_by_one, faces, strict=True):
        assert np.isclose(np.linalg.norm(together.embedding), 1.0, atol=1e-5)
        assert np.allclose(together.embedding, alone.embedding, atol=1e-5)
        matrix = alignment_matrices(face.landmarks_5, 112)[0]
        crop = cv2.warpAffine(image, matrix, (112, 112)).astype(np.float32)
        pooled = ((crop - 127.5) / 127.5).reshape(14, 8, 14, 8, 3).mean((1, 3))
        expected = pooled.transpose(2, 0, 1).reshape(-1) @ arcface_weights()
        assert np.allclose(together.embedding, expected / np.linalg.norm(expected), atol=1e-4)
    assert not np.allclose(batched[0].embedding, batched[1].embedding)


def test_missing_pack_names_files_and_folders(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError) as caught:
        _detector(tmp_path)
    message = str(caught.value)
    assert "det_10g.onnx and w600k_r50.onnx" in message and str(tmp_path / "buffalo_l") in message
    assert "\n" not in message
    _pack(tmp_path)
    (tmp_path / "buffalo_l" / "w600k_r50.onnx").unlink()
    with pytest.raises(MissingWeightsError, match=r"needs w600k_r50\.onnx of"):
        _detector(tmp_path)


def test_corrupt_or_wrong_files_are_refused(tmp_path: Path) -> None:
    folder = _pack(tmp_path) / "buffalo_l"
    (folder / "det_10g.onnx").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(CorruptWeightsError, match=r"det_10g\.onnx cannot be loaded"):
        _detector(tmp_path)
    write_scrfd(folder / "det_10g.onnx", 640, [], outputs=6)  # a detector without keypoints
    with pytest.raises(CorruptWeightsError, match="6 output"):
        _detector(tmp_path)
    with pytest.raises(CorruptWeightsError, match="not an SCRFD model"):
        decode_scrfd(scrfd_outputs(320, []), (640, 640), 0.5)


def test_device_choices() -> None:
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu", cuda) == ["CPUExecutionProvider"]
    assert onnx_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1", cuda)[0] == ("CUDAExecutionProvider", {"device_id": 1})
    with pytest.raises(ConfigValueError, match="no CUDA provider"):
        onnx_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ConfigValueError, match="auto, cpu, cuda"):
        onnx_providers("gpu", cuda)


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
    assert (
        main(["faces", str(photo), "--detector", "insightface", "--weights", str(root), "--json"])
        == 0
    )
    [face] = json.loads(capsys.readouterr().out)["frames"][0]["faces"]
    assert face["box"] == [600.0, 280.0, 760.0, 460.0]
