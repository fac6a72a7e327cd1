"""`composite.masks`: occlusion (XSeg) and region (BiSeNet) masks, the kept mouth,
and their smoothing over time, with stand-in models that mark known pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from face_fixtures import astronaut, astronaut_actor, grace_hopper, line_path, write_actor_clip
from PIL import Image

from clipswap_video.bench.mask_standins import GREEN, HAIR_CLASS, RED, write_parser, write_xseg
from clipswap_video.config import load_settings
from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.media import Frame
from clipswap_video.pipeline import run_video
from clipswap_video.swap import CropBatch, FaceSwapper
from clipswap_video.swap.bisenet import BiSeNet
from clipswap_video.swap.composite import paste
from clipswap_video.swap.masks import (
    MOUTH_CLASS,
    OCCLUDERS,
    PARSERS,
    FaceParser,
    Masked,
    MaskModels,
    Occluder,
    find_mask_model,
)
from clipswap_video.swap.stage import SwapStage, _TrackState


def _crops_with_marks() -> np.ndarray:
    crops = np.full((3, 256, 256, 3), 140, np.uint8)
    crops[:, 100:150, 50:80] = GREEN
    crops[1, 10:30, 10:40] = RED
    crops[2] = cv2.GaussianBlur(astronaut()[40:296, 100:356], (0, 0), 1)  # a real face
    return crops


def test_occluder_marks_its_pixels_batched_or_one_face_per_call(tmp_path: Path) -> None:
    crops = _crops_with_marks()
    batched = Occluder(write_xseg(tmp_path / "xseg_1.onnx"), "cpu")
    single = Occluder(write_xseg(tmp_path / "fixed.onnx", batch=1), "cpu")
    assert batched.batched and not single.batched
    found = batched(crops)
    np.testing.assert_array_equal(found, single(crops))
    assert found.shape == (3, 256, 256) and found.dtype == np.float32
    assert found[:2, 100:150, 50:80].max() == 0  # the green bar is covered
    assert found[:2, :90].min() == 1 and found[2].min() == 1


def test_parser_onnx_classes_and_the_pytorch_checkpoint(tmp_path: Path) -> None:
    crops = _crops_with_marks()
    labels = FaceParser(write_parser(tmp_path / "bisenet_resnet_18.onnx"), "cpu")(crops)
    assert labels.shape == (3, 256, 256) and labels.dtype == np.uint8
    assert (labels[:2, 105:145, 55:75] == HAIR_CLASS).all()
    assert (labels[1, 12:28, 12:38] == MOUTH_CLASS).all() and labels[0, 200, 200] == 1
    # The PyTorch checkpoint, found under its published name in a weights folder.
    folder = tmp_path / "weights"
    (folder / "res" / "cp").mkdir(parents=True)
    torch.save(BiSeNet().state_dict(), folder / "res" / "cp" / "79999_iter.pth")
    path = find_mask_model("", PARSERS, "region", folder)
    assert path.name == "79999_iter.pth"
    parsed = FaceParser(path, "cpu")(crops[:1])
    assert parsed.shape == (1, 256, 256) and parsed.max() < 19


def test_mask_models_are_found_in_the_weights_folders(tmp_path: Path) -> None:
    write_xseg(tmp_path / "xseg_2.onnx")
    assert find_mask_model("", OCCLUDERS, "occlusion", tmp_path).name == "xseg_2.onnx"
    settings = load_settings(overrides=["composite.masks=landmarks,occlusion"]).composite
    models = MaskModels.load(settings, "cpu", tmp_path)
    assert models is not None and models.occluder is not None and models.parser is None
    assert MaskModels.load(load_settings().composite, "cpu", tmp_path) is None


def test_mask_model_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="xseg_1.onnx") as missing:
        find_mask_model("", OCCLUDERS, "occlusion", tmp_path)
    assert "composite.occluder" in str(missing.value)
    with pytest.raises(MissingWeightsError, match="not a file"):
        find_mask_model(str(tmp_path / "nope.onnx"), PARSERS, "region", tmp_path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a model" * 50)
    parser_file = write_parser(tmp_path / "bisenet_resnet_34.onnx", size=64)
    xseg_file = write_xseg(tmp_path / "xseg_1.onnx", size=64)
    cases = [
        (lambda: Occluder(garbage, "cpu"), "cannot be loaded by onnxruntime"),
        (lambda: Occluder(parser_file, "cpu"), "not an XSeg occlusion model"),
        (lambda: FaceParser(xseg_file, "cpu"), "not a BiSeNet face parser"),
    ]
    corrupt = tmp_path / "79999_iter.pth"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    cases.append((lambda: FaceParser(corrupt, "cpu"), "cannot be read"))
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 1, 1)}, other)
    cases.append((lambda: FaceParser(other, "cpu"), "not a BiSeNet"))
    for load, message in cases:
        with pytest.raises(CorruptWeightsError, match=message) as error:
            load()
        assert "\n" not in str(error.value)
    settings = load_settings(overrides=["composite.masks=region", "composite.regions=[]"])
    with pytest.raises(ConfigValueError, match="regions is empty"):
        MaskModels.load(settings.composite, "cpu", tmp_path)


def test_a_missing_occluder_stops_the_job_before_any_output(
    cli,  # type: ignore[no-untyped-def]
    source_image: Path,
    tmp_path: Path,
) -> None:
    clip = tmp_path / "in.mp4"
    write_actor_clip(
        clip, [astronaut_actor(line_path((320, 180), (320, 180), 1, 1.25))], seconds=0.1
    )
    out = tmp_path / "out.mp4"
    args = ["--swapper", "classic", "--weights", tmp_path, "--set", "composite.masks=occlusion"]
    code, err = cli(source_image, clip, out, *args)
    assert code == 13 and err.count("\n") == 1 and "xseg_1.onnx" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def _bar(index: int, frame: np.ndarray, landmarks: list[np.ndarray | None]) -> np.ndarray:
    """A pure green bar over the right cheek, from the eyes to below the mouth."""
    points = landmarks[0]
    assert points is not None
    nose, mouth_right = points[2], points[4]
    x0, y0 = int(nose[0]) + 6, int(points[1][1]) - 4
    frame[y0 : int(mouth_right[1]) + 24, x0 : x0 + 16] = GREEN
    return frame


def _swapped_with(tmp_path: Path, clip: Path, *overrides: str) -> list[np.ndarray]:
    """Per frame, |output - decoded| (H x W) after the classic swap."""
    changes: list[np.ndarray] = []

    def record(frame: Frame) -> None:
        original = frame.decoded.to_ndarray(format="rgb24").astype(int)
        changes.append(np.abs(frame.rgb().astype(int) - original).max(axis=2))

    source = tmp_path / "grace.png"
    Image.fromarray(grace_hopper()).save(source)
    settings = load_settings(overrides=["swap.swapper=classic", *overrides])
    run_video(source, clip, tmp_path / "out.mp4", settings, stages=[record])
    return changes


@pytest.mark.parametrize("mask", ["occlusion", "region"])
def test_a_bar_over_the_face_keeps_the_frame(tmp_path: Path, mask: str) -> None:
    """The bar is an occluder to the XSeg stand-in and hair (not swapped) to the
    parser stand-in: its pixels leave the stage as they came in; the face around
    it is swapped; without the mask the swap paints over the bar."""
    clip = tmp_path / "in.mp4"
    path = line_path((318, 180), (324, 180), 0.2, 1.25)
    truth = write_actor_clip(clip, [astronaut_actor(path)], seconds=0.2, edit=_bar)
    model = (
        write_xseg(tmp_path / "xseg.onnx")
        if mask == "occlusion"
        else write_parser(tmp_path / "parser.onnx")
    )
    key = "composite.occluder" if mask == "occlusion" else "composite.parser"
    masked = _swapped_with(tmp_path, clip, f"composite.masks=landmarks,{mask}", f"{key}={model}")
    plain = _swapped_with(tmp_path, clip)
    assert len(masked) == len(plain) == len(truth)
    for with_mask, without, landmarks in zip(masked, plain, truth, strict=True):
        drawn = _bar(0, np.zeros((360, 640, 3), np.uint8), landmarks)[..., 1] == 255
        inside = cv2.erode(drawn.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        face = np.zeros((360, 640), bool)
        (x0, y0), (x1, y1) = landmarks[0].min(0).astype(int), landmarks[0].max(0).astype(int)
        face[y0:y1, x0:x1] = True
        assert with_mask[inside].max() == 0  # inside the codec's blur of the bar's edge
        assert without[inside].max() > 30
        assert with_mask[face & ~drawn].max() > 30  # the rest of the face swapped


def _stage(source_image: Path, *overrides: str) -> SwapStage:
    settings = load_settings(overrides=["swap.swapper=classic", *overrides])
    return SwapStage(FaceSwapper(settings, [source_image]))


def _face_points(mouth_open: int) -> np.ndarray:
    """68 points of a face filling the 256 crop: a jaw ellipse, the rest inside,
    an inner lip contour (60-67) `mouth_open` pixels tall around (128, 190)."""
    points = np.zeros((68, 2), np.float32)
    angles = np.linspace(np.pi * 1.05, -0.05 * np.pi, 17)
    points[:17] = np.stack([128 + 100 * np.cos(angles), 120 - 110 * np.sin(angles)], 1)
    points[17:60] = (128, 120)
    ring = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    points[60:68] = np.stack([128 + 24 * np.cos(ring), 190 + mouth_open / 2 * np.sin(ring)], 1)
    return points


def test_keep_mouth_leaves_the_targets_open_mouth(source_image: Path) -> None:
    target = _crops_with_marks()[2]
    swapped = np.full_like(target, 30)
    points = _face_points(mouth_open=20)
    mouth = np.zeros((256, 256), np.uint8)
    cv2.fillPoly(mouth, [np.round(points[60:68]).astype(np.int32)], 1)
    for keep_mouth in (True, False):
        stage = _stage(source_image, f"composite.keep_mouth={str(keep_mouth).lower()}")
        hidden = stage._hidden(target[None], None, points[None])
        keep = None if hidden is None else ~hidden[0]
        blended, alpha = stage._blend(swapped, target, points, keep, _TrackState(0))
        frame = target.copy()
        paste(frame, blended, alpha, np.eye(2, 3))
        inside = cv2.erode(mouth, np.ones((3, 3), np.uint8)).astype(bool)
        if keep_mouth:
            np.testing.assert_array_equal(frame[inside], target[inside])
        else:
            assert hidden is None and alpha[inside].min() > 0.8


def test_the_parser_gives_the_mouth_when_region_is_a_mask(
    source_image: Path, tmp_path: Path
) -> None:
    """The mask models run in the engine's batches (the outermost backend wrapper),
    on the target crops; the stage then adds no lip contour of its own."""
    parser = write_parser(tmp_path / "parser.onnx", size=128)
    stage = _stage(source_image, "composite.masks=landmarks,region", f"composite.parser={parser}")
    backend = stage.swapper.backend
    assert isinstance(backend, Masked)
    targets = _crops_with_marks()[:2]  # a red patch at rows 10-30, columns 10-40 in the second
    tensor = torch.from_numpy(targets).permute(0, 3, 1, 2).float()
    found = backend.swap(CropBatch(tensor)).hidden
    assert found is not None and found.shape == (2, 256, 256)
    hidden = stage._hidden(targets, found, _face_points(mouth_open=20)[None].repeat(2, 0))
    assert hidden is not None
    assert hidden[1, 12:28, 12:38].all() and not hidden[0, 12:28, 12:38].any()  # parser's mouth
    assert not hidden[:, 185:195, 120:136].any()  # not the landmarks' contour
    assert hidden[:, 105:145, 55:75].all()  # the green bar: hair, not a region swapped
    without = _stage(
        source_image,
        "composite.masks=landmarks,region",
        f"composite.parser={parser}",
        "composite.keep_mouth=false",
    )
    assert not without.swapper.backend.swap(CropBatch(tensor)).hidden[1, 12:28, 12:38].any()


def test_smoothing_never_paints_over_what_is_hidden_now(source_image: Path) -> None:
    stage = _stage(source_image, "composite.masks=box", "composite.keep_mouth=false")
    target, swapped = _crops_with_marks()[2], np.full((256, 256, 3), 30, np.uint8)
    state, keep = _TrackState(0), np.ones((256, 256), bool)
    stage._blend(swapped, target, None, keep, state)
    covered = keep.copy()
    covered[100:150, 50:80] = False
    _, alpha = stage._blend(swapped, target, None, covered, state)
    assert alpha[~covered].max() == 0  # a hand moving in is not painted over
    _, alpha = stage._blend(swapped, target, None, keep, state)
    assert 0.1 < alpha[125, 65] < 0.9  # it leaves gradually
