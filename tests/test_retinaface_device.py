"""The retinaface detectors on a device (issue 18): refresh windows on one canvas
shape while faces drift, with the landmarks of the window alone; a detector made
from a network in memory, which reads no file, not even dlib's until `embed`.
The `cuda` tests (`clipswap-video gpu-check`): CUDA's faces equal the CPU's, and
a detect or refresh waits for the device once, for its one copy back."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.data import astronaut, brick

from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import MissingWeightsError
from clipswap_video.faces import dlib_backend
from clipswap_video.faces.backends import create_detector
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.faces.retinaface_backend import (
    REFRESH_CANVAS,
    RetinaFaceDetector,
    _canvas_side,
    _overlapping,
    _window,
)
from clipswap_video.faces.rolled import transform_face
from clipswap_video.faces.types import Face
from clipswap_video.models.retinaface import RESNET50_SPEC, RetinaFace, RetinaFaceSpec

TINY = RetinaFaceSpec(
    blocks=(1, 1, 1, 1),
    widths=(8, 8, 8, 8),
    features=("conv3_block1_out", "conv4_block1_out", "conv5_block1_out"),
    out_channels=16,
)
FACE = np.array([178, 57, 273, 177], np.float32)
"""The astronaut's face box in skimage's 512 px photo (x1, y1, x2, y2)."""


def _settings(device: str) -> FaceSettings:
    return dataclasses.replace(FaceSettings(), detector="retinaface", device=device, min_size=0)


def _network(spec: RetinaFaceSpec, seed: int = 0) -> RetinaFace:
    torch.manual_seed(seed)
    return RetinaFace(spec).eval()


def _track(x: float, y: float, size: float) -> Face:
    return Face(
        box=np.array([x, y, x + size, y + size], np.float32),
        score=0.9,
        landmarks_5=np.zeros((5, 2), np.float32),
    )


def _frame(seed: int, size: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)


# One canvas for the refresh windows -------------------------------------------


def _astronaut_frame(height: float) -> np.ndarray:
    """The astronaut's face `height` px tall, centred on a 640x360 brick frame."""
    scale = height / float(FACE[3] - FACE[1])
    matrix = cv2.getRotationMatrix2D(tuple(map(float, (FACE[:2] + FACE[2:]) / 2)), 0, scale)
    matrix[:, 2] += np.array([320, 180]) - (FACE[:2] + FACE[2:]) / 2
    drawn = cv2.warpAffine(astronaut(), matrix, (640, 360))
    covered = cv2.warpAffine(np.ones((512, 512), np.uint8), matrix, (640, 360)) > 0
    backdrop = cv2.resize(np.stack([brick()] * 3, axis=-1), (640, 360))
    return np.where(covered[..., None], drawn, backdrop)


@pytest.fixture(scope="module")
def mobile() -> FaceDetector:
    return create_detector(FaceSettings(detector="retinaface_mobile", min_size=0))


@pytest.mark.parametrize("height", [40, 160, 300])
def test_landmarks_on_the_canvas_are_the_window_alones(mobile: FaceDetector, height: int) -> None:
    """The black the canvas adds moves the landmarks by 0.01-0.3% of the face
    (0.3% for the 300 px face, whose window the frame's edge halves) against the
    window run alone, as before the canvas."""
    assert isinstance(mobile, RetinaFaceDetector)
    image = _astronaut_frame(height)
    [face] = mobile.detect(image)
    [refreshed] = mobile.refresh(image, [face])
    window = _window(image, face)
    assert window is not None and max(window.pixels.shape[:2]) < REFRESH_CANVAS
    [found] = mobile._run([window.pixels])  # its own size: no canvas
    alone = _overlapping([transform_face(f, window.to_frame) for f in found], face)
    assert alone is not None
    shift = np.abs(refreshed.landmarks_5 - alone.landmarks_5).max()
    assert shift <= 0.005 * face.size
    assert refreshed.score == pytest.approx(alone.score, abs=1e-3)


def _recorded_shapes(
    detector: RetinaFaceDetector, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[int, ...]]:
    """The input shapes the detector's network will be called with."""
    shapes: list[tuple[int, ...]] = []
    network = detector.model
    assert isinstance(network, RetinaFace)
    forward = network.forward

    def recording(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shapes.append(tuple(images.shape))
        return forward(images)

    monkeypatch.setattr(network, "forward", recording)
    return shapes


@pytest.mark.parametrize(
    ("device", "spec"),
    [("cpu", TINY), pytest.param("cuda", RESNET50_SPEC, marks=pytest.mark.cuda)],
)
def test_refresh_windows_keep_one_shape_while_a_face_drifts(
    device: str, spec: RetinaFaceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dataclasses.replace(_settings(device), min_score=0.999)  # no faces: no NMS
    detector = RetinaFaceDetector(settings, network=_network(spec).to(device))
    shapes = _recorded_shapes(detector, monkeypatch)
    image, windows = _frame(0, (360, 640)), set()
    for step in range(20):  # a pixel a frame, the face growing a little
        track = _track(200 + step, 100 + 0.5 * step, 40 + 0.3 * step)
        window = _window(image, track)
        assert window is not None
        windows.add(window.pixels.shape)
        detector.refresh(image, [track])
    detector.refresh(image, [_track(60, 60, 30), _track(300, 100, 90)])
    assert len(windows) > 3  # the windows drift ...
    side = REFRESH_CANVAS  # ... the graph's input does not
    assert set(shapes) == {(1, 3, side, side), (2, 3, side, side)}
    assert [_canvas_side(s) for s in (8, 336, 337, 352, 400)] == [336, 336, 352, 352, 416]


# A detector from a network in memory --------------------------------------------


def test_a_network_in_memory_reads_no_file_and_dlib_loads_on_embed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dlib_backend, "dlib_models_dir", lambda: tmp_path / "no-dlib")
    detector = RetinaFaceDetector(_settings("cpu"), tmp_path / "empty", network=_network(TINY))
    image = _frame(1, (64, 96))
    assert detector.device == torch.device("cpu") and detector.min_score == 0.5
    detector.detect(image)
    with pytest.raises(MissingWeightsError, match=dlib_backend.PREDICTOR_FILE):
        detector.embed(image, [_track(10, 10, 40)])


# On CUDA ------------------------------------------------------------------------------


@pytest.fixture
def exact_fp32() -> Iterator[None]:
    """No TF32 in convolutions or matmuls: CUDA's float32 then matches the CPU's."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _lattice(network: RetinaFace) -> RetinaFace:
    """`network` made to find a face at every 128 px anchor (stride 16, anchor 1),
    all of one score, and nothing else: the boxes stay within 0.2% of their
    anchors, so NMS keeps a lattice whose IoUs sit at least 0.005 from 0.4, while
    the landmarks come from the whole random network."""
    with torch.no_grad():
        for level, conv in enumerate(network.class_head):
            conv.weight.zero_()
            # channels: background, face of anchor 0, then of anchor 1
            faces_at = [-8.0, 8.0] if level == 1 else [8.0, -8.0]
            conv.bias.copy_(torch.tensor([8.0, -8.0, *faces_at]))
        for conv in network.bbox_head:
            conv.weight.mul_(0.002)
            conv.bias.mul_(0.002)
    return network


def _faces_close(got: list[Face], expected: list[Face]) -> None:
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(mine.box, theirs.box, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(mine.landmarks_5, theirs.landmarks_5, rtol=1e-4, atol=1e-3)
        assert mine.score == pytest.approx(theirs.score, abs=1e-5)


@pytest.mark.cuda
@pytest.mark.usefixtures("exact_fp32")
def test_cuda_faces_equal_the_cpus() -> None:
    network = _network(RESNET50_SPEC)
    on_cuda = copy.deepcopy(network).to("cuda")
    images = torch.from_numpy(_frame(2, (160, 224))).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        heads = network(images), on_cuda(images.to("cuda"))
    for cpu, cuda in zip(*heads, strict=True):  # the raw heads, random class head and all
        assert (cuda.cpu() - cpu).abs().max() <= 1e-4 * cpu.abs().max()

    frame = _frame(3, (160, 224))
    detectors = [
        RetinaFaceDetector(_settings(device), network=_lattice(net))
        for device, net in (("cpu", network), ("cuda", on_cuda))
    ]
    cpu_faces, cuda_faces = (detector.detect(frame) for detector in detectors)
    assert len(cpu_faces) > 5  # a lattice, not a single face
    _faces_close(cuda_faces, cpu_faces)
    tracks = cpu_faces[:3]
    _faces_close(detectors[1].refresh(frame, tracks), detectors[0].refresh(frame, tracks))


def _syncs(call: Callable[[], object]) -> int:
    """How many times `call()` made the host wait for the device."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(warning.message) for warning in caught)


@pytest.mark.cuda
def test_a_detect_or_refresh_waits_for_the_device_once() -> None:
    """The upload from pinned memory does not wait; the one copy back does."""
    network = _lattice(_network(RESNET50_SPEC)).to("cuda")
    detector = RetinaFaceDetector(_settings("cuda"), network=network)
    frame = _frame(4, (540, 960))
    faces = detector.detect(frame)  # warm: priors of each size, the pinned buffer
    detector.refresh(frame, faces[:4])
    assert len(faces) >= 4 and detector._staging._pinned.is_pinned()
    assert _syncs(lambda: detector.detect(frame)) == 1
    assert _syncs(lambda: detector.refresh(frame, faces[:4])) == 1
