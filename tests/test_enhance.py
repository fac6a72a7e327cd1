"""The face enhancer (`--enhancer`): restorers found and loaded from the state dicts
their authors publish (stand-ins, tests/enhancer_fixtures.py), run on [-1, 1] crops,
batched as per face, wrapped around a swap backend on FFHQ-aligned crops, and every
bad file one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from enhancer_fixtures import (
    restoreformer,
    write_codeformer,
    write_compact_sr,
    write_gfpgan,
    write_restoreformer,
)
from face_fixtures import GRACE_LANDMARKS_5, grace_hopper

from clipswap_video.config import load_settings
from clipswap_video.config_sections import EnhanceSettings
from clipswap_video.errors import (
    ConfigValueError,
    CorruptWeightsError,
    ExitCode,
    MissingExtraError,
    MissingWeightsError,
)
from clipswap_video.faces import SourceIdentity, alignment_matrices, warp_crops
from clipswap_video.swap import CropBatch, SwappedBatch
from clipswap_video.swap.enhance import SIZES, Enhanced, FaceEnhancer, find_enhancer
from media_fixtures import packets, rgb_frames

CPU = torch.device("cpu")


def _crops(count: int, size: int = 256) -> torch.Tensor:
    rng = np.random.default_rng(5)
    return torch.from_numpy(rng.uniform(0, 255, (count, 3, size, size)).astype(np.float32))


@pytest.fixture(scope="module")
def restorer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_restoreformer(tmp_path_factory.mktemp("w") / "RestoreFormer.pth")


def test_found_under_the_authors_name_and_run_on_minus_one_to_one(restorer: Path) -> None:
    assert find_enhancer(EnhanceSettings(enhancer="restoreformer"), restorer.parent) == restorer
    enhancer = FaceEnhancer(restorer, CPU, size=256)
    assert enhancer.architecture == "RestoreFormer"
    crops = _crops(1)
    with torch.inference_mode():
        expected = (restoreformer()(crops / 127.5 - 1)[0].clamp(-1, 1) + 1) * 127.5
    np.testing.assert_allclose(enhancer(crops).numpy(), expected.numpy(), atol=1e-3)


def test_batched_equals_per_face(restorer: Path) -> None:
    enhancer = FaceEnhancer(restorer, CPU, size=256)
    crops = _crops(3)
    together = enhancer(crops)
    one_by_one = torch.cat([enhancer(crop[None]) for crop in crops])
    np.testing.assert_allclose(together.numpy(), one_by_one.numpy(), atol=0.05)


class _Constant:
    """A swap backend that paints its whole crop one grey."""

    name, crop_size, alignment, device = "constant", 128, "insightface", CPU

    def prepare_source(self, identity: SourceIdentity) -> None:
        del identity

    def swap(self, batch: CropBatch) -> SwappedBatch:
        return SwappedBatch(torch.full_like(batch.crops, 100.0))


def test_the_swap_goes_inside_the_larger_crop_and_blend_zero_keeps_it(restorer: Path) -> None:
    """On the 256 px FFHQ crop the 128 px insightface crop of the same face is a
    smaller square in the middle: the swap fills it, the rest is the crop as it was;
    with blend 0 the restorer changes nothing."""
    enhanced = Enhanced(_Constant(), FaceEnhancer(restorer, CPU, size=256), 256, blend=0.0)
    crops = _crops(2)
    out = enhanced.swap(CropBatch(crops)).crops
    assert out.shape == crops.shape
    centre = (slice(None), slice(None), slice(110, 146), slice(110, 146))
    np.testing.assert_allclose(out[centre].numpy(), 100.0, atol=1e-3)
    corner = (slice(None), slice(None), slice(0, 8), slice(0, 8))
    np.testing.assert_array_equal(out[corner].numpy(), crops[corner].numpy())
    restored = Enhanced(_Constant(), FaceEnhancer(restorer, CPU, size=256), 256, blend=1.0)
    assert not torch.allclose(restored.swap(CropBatch(crops)).crops, out, atol=1.0)


def test_the_inner_crop_is_the_one_the_stage_would_cut() -> None:
    """Cut from the FFHQ crop, the swap backend's crop matches the one cut from the
    frame with its own alignment (two bilinear resamplings of a detailed photo: 3
    grey levels apart on average, measured)."""
    seen: list[torch.Tensor] = []

    class Keep(_Constant):
        crop_size, alignment = 256, "arcface"

        def swap(self, batch: CropBatch) -> SwappedBatch:
            seen.append(batch.crops)
            return SwappedBatch(batch.crops)

    image, points = grace_hopper(), np.array(GRACE_LANDMARKS_5)
    frame = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    ffhq = warp_crops(frame, alignment_matrices(points, 512, "ffhq"), 512)
    enhanced = Enhanced(Keep(), _Identity(), 512, blend=1.0)  # type: ignore[arg-type]
    enhanced.swap(CropBatch(ffhq))
    direct = warp_crops(frame, alignment_matrices(points, 256, "arcface"), 256)
    difference = (seen[0] - direct).abs()[:, :, 8:-8, 8:-8]
    assert difference.mean() < 3.5


class _Identity:
    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return crops


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "no restorer", "other keys"])
def test_a_bad_file_is_one_line(tmp_path: Path, restorer: Path, damage: str) -> None:
    path = tmp_path / "RestoreFormer.pth"
    if damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "truncated":
        path.write_bytes(restorer.read_bytes()[:100_000])
    elif damage == "no restorer":
        write_compact_sr(path)
    else:
        torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(CorruptWeightsError) as caught:
        FaceEnhancer(path, CPU)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    said = {"no restorer": "not a face restorer", "other keys": "no model spandrel knows"}
    assert said.get(damage, "cannot be read") in message


def test_missing_file_and_unsuitable_size_are_one_line(tmp_path: Path, restorer: Path) -> None:
    with pytest.raises(MissingWeightsError) as missing:
        find_enhancer(EnhanceSettings(enhancer="gfpgan"), tmp_path)
    assert "GFPGANv1.4.pth or GFPGANv1.3.pth" in str(missing.value)
    with pytest.raises(ConfigValueError) as size:
        FaceEnhancer(restorer, CPU, size=500)
    assert "enhance.size = 500" in str(size.value)


@pytest.mark.slow
def test_gfpgan_as_published_loads_and_restores_at_512(tmp_path: Path) -> None:
    """GFPGANv1.4.pth's layout ({"params_ema": ...}, the full-size network): found,
    detected, run at 512 only, and the same on every call (its stored noise, not
    fresh noise per frame)."""
    path = write_gfpgan(tmp_path / "GFPGANv1.4.pth")
    assert find_enhancer(EnhanceSettings(enhancer="gfpgan"), tmp_path) == path
    with pytest.raises(ConfigValueError):
        FaceEnhancer(path, CPU, size=256)
    enhancer = FaceEnhancer(path, CPU)
    assert enhancer.architecture == "GFPGAN"
    crops = _crops(1, 512)
    first, second = enhancer(crops), enhancer(crops)
    assert first.shape == crops.shape and torch.equal(first, second)


@pytest.mark.slow
def test_codeformer_as_published_loads_and_weighs_fidelity(tmp_path: Path) -> None:
    """codeformer.pth's layout, through the optional extra (make install adds it):
    found under its published folder, detected, run at 512 with the fidelity weight
    w passed to the network (w = 0 and w = 1 restore differently)."""
    path = write_codeformer(tmp_path / "weights" / "CodeFormer" / "codeformer.pth")
    assert find_enhancer(EnhanceSettings(enhancer="codeformer"), tmp_path) == path
    assert not SIZES["CodeFormer"](256) and SIZES["CodeFormer"](1024)  # multiples of 512
    enhancer = FaceEnhancer(path, CPU, fidelity=0.0)
    assert enhancer.architecture == "CodeFormer"
    crops = _crops(1, 512)
    quality = enhancer(crops)
    assert quality.shape == crops.shape and 0 <= quality.min() and quality.max() <= 255
    enhancer.fidelity = 1.0
    assert (quality - enhancer(crops)).abs().max() > 1


def _demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    from clipswap_video.demo import write_demo_media

    return write_demo_media(tmp_path / "demo", seconds=0.3, width=640, height=360, fps=10)


def test_enhancer_end_to_end(cli, tmp_path: Path, restorer: Path) -> None:  # type: ignore[no-untyped-def]
    """The classic swap, then the restorer, on every frame; audio and the tag kept."""
    from clipswap_video.media import probe

    media, output, plain = _demo(tmp_path), tmp_path / "out.mp4", tmp_path / "plain.mp4"
    args = (media.source_image, media.video)
    assert cli(*args, plain, "--swapper", "classic")[0] == 0
    code, err = cli(*args, output, "--swapper", "classic", "--enhancer", "restoreformer",
                    "--weights", restorer.parent, "--set", "enhance.size=256")  # fmt: skip
    assert code == 0, err
    frames, swapped = rgb_frames(output), rgb_frames(plain)
    assert len(frames) == len(swapped) == 3
    assert packets(output, "audio") == packets(media.video, "audio")
    assert probe(output).metadata["comment"].startswith("synthetic: face swapped by")
    assert all(np.abs(a.astype(int) - b).mean() > 0.2 for a, b in zip(frames, swapped, strict=True))


def test_enhancer_with_the_paper_composite_is_refused(cli, tmp_path: Path, restorer: Path) -> None:  # type: ignore[no-untyped-def]
    media, output = _demo(tmp_path), tmp_path / "out.mp4"
    flags = ["--mode", "paper", "--swapper", "classic", "--enhancer", "restoreformer"]
    code, err = cli(media.source_image, media.video, output, *flags, "--weights", restorer.parent)
    assert code == ExitCode.BAD_CONFIG_VALUE and "landmark mask" in err and err.count("\n") == 1
    assert not output.exists()


def test_settings_name_the_enhancer() -> None:
    settings = load_settings(overrides=["enhance.enhancer=codeformer", "enhance.blend=0.3"])
    assert settings.enhance == EnhanceSettings(enhancer="codeformer", blend=0.3)


def test_codeformer_without_its_extra_says_which_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "spandrel_extra_arches", None)  # import fails
    path = tmp_path / "codeformer.pth"
    # The keys spandrel_extra_arches recognises CodeFormer by, with the layout's shapes.
    state = {"position_emb": torch.zeros(256, 64), "idx_pred_layer.1.weight": torch.zeros(64, 64)}
    torch.save({"params_ema": state}, path)
    with pytest.raises(MissingExtraError, match=r"clipswap-video\[codeformer\]"):
        FaceEnhancer(path, torch.device("cpu"))
