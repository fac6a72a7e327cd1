"""The inswapper backend with stand-in ONNX files in the real signatures
(tests/inswapper_fixtures.py, tests/onnx_fixtures.py), run by insightface's own
model zoo: loading, insightface's 128 px alignment, the source latent against
one computed by hand, batched against per-crop calls, the fp16 file, broken
files, `auto`'s order and a run end to end."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from face_fixtures import (
    GRACE_LANDMARKS_5,
    assert_first_face_swapped,
    grace_hopper,
    grace_identity,
    line_path,
    write_actor_clip,
)
from face_fixtures import astronaut_actor as actor
from inswapper_fixtures import inswapper_arrays, inswapper_reference, write_inswapper
from onnx_fixtures import arcface_reference, write_arcface
from PIL import Image

from clipswap_video.config import load_settings
from clipswap_video.errors import ClipswapError, CorruptWeightsError, ExitCode
from clipswap_video.faces import alignment_matrices, warp_crops
from clipswap_video.swap import CropBatch, create_backend, resolve_swapper
from clipswap_video.swap.inswapper import InswapperBackend
from media_fixtures import rgb_frames

SETTINGS = load_settings(overrides=["swap.device=cpu"]).swap


def _weights(folder: Path, **swapper: object) -> Path:
    """inswapper_128.onnx and buffalo_l/w600k_r50.onnx stand-ins in `folder`."""
    (folder / "buffalo_l").mkdir(parents=True, exist_ok=True)
    write_inswapper(folder / "inswapper_128.onnx", **swapper)  # type: ignore[arg-type]
    write_arcface(folder / "buffalo_l" / "w600k_r50.onnx")
    return folder


def _crops(count: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(3).uniform(0, 255, (count, 3, 128, 128)))


def test_insightface_model_zoo_loads_the_stand_ins(tmp_path: Path) -> None:
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.inswapper import INSwapper

    backend = InswapperBackend(_weights(tmp_path), SETTINGS)
    assert isinstance(backend.model, INSwapper) and isinstance(backend.recogniser, ArcFaceONNX)
    assert backend.batched and backend.crop_size == 128 and backend.alignment == "insightface"
    np.testing.assert_array_equal(backend.emap, inswapper_arrays()["emap"])


def test_128_crops_are_insightface_norm_crop() -> None:
    """The engine's matrices are estimate_norm's, and its warp gives norm_crop's pixels
    (cv2 interpolates in 1/32 px steps and rounds: within one grey level)."""
    from insightface.utils import face_align

    image, points = grace_hopper(), np.array(GRACE_LANDMARKS_5, np.float32)
    for size in (112, 128, 256):
        ours = alignment_matrices(points, size, "insightface")[0]
        # insightface keeps its template in float32: equal to 1e-5 px
        np.testing.assert_allclose(ours, face_align.estimate_norm(points, size), atol=1e-4)
    assert not np.allclose(alignment_matrices(points, 128)[0], ours, atol=1)  # not arcface's
    matrix = alignment_matrices(points, 128, "insightface")
    frame = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    crop = warp_crops(frame, matrix, 128)[0].permute(1, 2, 0).numpy()
    expected = face_align.norm_crop(image, points, 128).astype(np.float32)
    difference = np.abs(crop.round() - expected)  # cv2 rounds to uint8
    assert difference.max() <= 1.0 and difference.mean() < 0.05


def test_source_latent_is_the_normed_embedding_through_emap(tmp_path: Path) -> None:
    """By hand: the stand-in recogniser on norm_crop(112) of the photo, unit length,
    @ emap, unit length. Catches BGR/RGB, the arcface crop, a missing normalisation."""
    from insightface.utils import face_align

    backend = InswapperBackend(_weights(tmp_path), SETTINGS)
    identity = grace_identity()
    backend.prepare_source(identity)
    crop = face_align.norm_crop(identity.images[0], identity.faces[0].landmarks_5, 112)
    embedding = arcface_reference(crop)
    latent = (embedding / np.linalg.norm(embedding)) @ inswapper_arrays()["emap"]
    expected = latent / np.linalg.norm(latent)
    assert backend.latent is not None and backend.latent.shape == (1, 512)
    np.testing.assert_allclose(backend.latent[0], expected, atol=1e-4)
    swapped = backend.swap(CropBatch(_crops(2))).crops
    reference = inswapper_reference(_crops(2).float().numpy() / 255, backend.latent) * 255
    np.testing.assert_allclose(swapped.numpy(), reference, atol=1e-2)


def test_batched_equals_per_face_calls(tmp_path: Path) -> None:
    free = InswapperBackend(_weights(tmp_path / "free"), SETTINGS)
    fixed = InswapperBackend(_weights(tmp_path / "fixed", batch=1), SETTINGS)
    assert free.batched and not fixed.batched
    for backend in (free, fixed):
        backend.prepare_source(grace_identity())
    crops = _crops(5)
    together = free.swap(CropBatch(crops)).crops
    one_by_one = fixed.swap(CropBatch(crops)).crops
    assert together.shape == (5, 3, 128, 128) and together.dtype == torch.float32
    np.testing.assert_allclose(together.numpy(), one_by_one.numpy(), atol=1e-3)


def test_fp16_file_on_the_cpu_runs_or_fails_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    _weights(folder)
    (folder / "inswapper_128.onnx").unlink()
    write_inswapper(folder / "inswapper_128_fp16.onnx", fp16=True)
    try:
        backend = create_backend("inswapper", folder, SETTINGS)
        backend.prepare_source(grace_identity())
        half = backend.swap(CropBatch(_crops(2))).crops
    except ClipswapError as error:
        assert "\n" not in str(error)
        return
    full = InswapperBackend(_weights(tmp_path / "full"), SETTINGS)
    full.prepare_source(grace_identity())
    reference = full.swap(CropBatch(_crops(2))).crops
    assert np.abs(half.numpy() - reference.numpy()).max() < 0.02 * 255


@pytest.mark.parametrize("damage", ["random", "truncated", "no emap", "a recogniser"])
def test_broken_swapper_file_is_one_line_and_nothing_written(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    damage: str,
) -> None:
    folder = _weights(tmp_path / "w")
    path = folder / "inswapper_128.onnx"
    if damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "no emap":
        write_inswapper(path, emap=False)
    else:
        write_arcface(path)
    with pytest.raises(CorruptWeightsError):
        InswapperBackend(folder, SETTINGS)
    output = tmp_path / "out.mp4"
    code, err = cli(_source(tmp_path), _clip(tmp_path), output, "--swapper", "inswapper",
                    "--weights", folder)  # fmt: skip
    assert code == ExitCode.CORRUPT_WEIGHTS and err.count("\n") == 1, err
    assert "inswapper_128.onnx" in err and ("emap" in err) == (damage == "no emap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grace.png", "in.mp4", "w"]


def test_auto_prefers_clipswap_then_inswapper_then_classic(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "w")
    name, note = resolve_swapper("auto", folder)
    assert name == "inswapper" and note and "inswapper" in note and "ClipSwap.h5" in note
    (folder / "ClipSwap.h5").write_bytes(b"")  # found by name: auto does not open them
    (folder / "ArcFace-Res50.h5").write_bytes(b"")
    assert resolve_swapper("auto", folder) == ("clipswap", None)
    (folder / "ClipSwap.h5").unlink()
    (folder / "buffalo_l" / "w600k_r50.onnx").unlink()
    name, note = resolve_swapper("auto", folder)
    assert name == "classic" and note and "no w600k_r50.onnx" in note
    assert "inswapper_128.onnx" not in note  # that one is there
    assert "no ClipSwap.h5 or ArcFace-Res50.h5" not in note  # ArcFace-Res50.h5 is there


def _clip(tmp_path: Path) -> Path:
    clip = tmp_path / "in.mp4"
    write_actor_clip(clip, [actor(line_path((260, 180), (380, 180), 1, 1.25))], seconds=0.5)
    return clip


def _source(tmp_path: Path) -> Path:
    path = tmp_path / "grace.png"
    Image.fromarray(grace_hopper()).save(path)
    return path


def test_inswapper_end_to_end(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, clip, output = _weights(tmp_path / "w"), _clip(tmp_path), tmp_path / "out.mp4"
    code, err = cli(_source(tmp_path), clip, output, "--swapper", "inswapper", "--weights", folder)
    assert code == 0, err
    assert_first_face_swapped(rgb_frames(output), rgb_frames(clip))


def test_mask_landmarks_of_128_crops_are_the_256_ones_mapped() -> None:
    """dlib's predictor reads 256 px ArcFace crops: on inswapper's 128 px crop the
    stage finds the 68 points in that frame and maps them back (x 112/256, 8 px right)."""
    import cv2

    from clipswap_video.faces.dlib_backend import LandmarkPredictor
    from clipswap_video.swap.stage import SwapStage

    image, points = grace_hopper(), np.array(GRACE_LANDMARKS_5, np.float64)
    stage = SwapStage.__new__(SwapStage)  # only the predictor and the backend's crop are used
    stage.swapper = SimpleNamespace(backend=SimpleNamespace(crop_size=128, alignment="insightface"))  # type: ignore[assignment]
    stage._landmarks = None
    crop = cv2.warpAffine(image, alignment_matrices(points, 128, "insightface")[0], (128, 128))
    found = stage._landmarks_68(crop[None])[0]
    arcface_256 = cv2.warpAffine(image, alignment_matrices(points, 256)[0], (256, 256))
    expected = LandmarkPredictor()(arcface_256) * (112 / 256) + np.array([8.0, 0.0])
    assert found.shape == (68, 2) and np.abs(found - expected).mean() < 1.5


def test_files_named_in_upper_case_load(tmp_path: Path) -> None:
    """Found in any letter case, loaded too: insightface's get_model would take a
    name not ending in ".onnx" for a model pack under ~/.insightface."""
    folder = _weights(tmp_path / "w")
    (folder / "inswapper_128.onnx").rename(folder / "INSWAPPER_128.ONNX")
    (folder / "buffalo_l" / "w600k_r50.onnx").rename(folder / "buffalo_l" / "W600K_R50.ONNX")
    backend = InswapperBackend(folder, SETTINGS)
    backend.prepare_source(grace_identity())
    assert backend.swap(CropBatch(_crops(1))).crops.shape == (1, 3, 128, 128)
