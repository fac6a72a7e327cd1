"""`--frame-enhancer`: a spandrel image model on whole frames, in tiles, the output
at the input's size."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from enhancer_fixtures import write_compact_sr, write_restoreformer

from clipswap_video.errors import ConfigValueError, CorruptWeightsError, ExitCode
from clipswap_video.swap.frame_enhance import FrameEnhancer
from media_fixtures import write_clip

CPU = torch.device("cpu")


def _image(height: int = 90, width: int = 130) -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 255, (height // 10 + 1, width // 10 + 1, 3)).astype(np.uint8)
    return cv2.resize(smooth, (width, height), interpolation=cv2.INTER_CUBIC)


def test_tiles_give_what_the_whole_frame_gives_at_the_frames_size(tmp_path: Path) -> None:
    model = write_compact_sr(tmp_path / "compact_x2.pth")
    image = _image()
    whole = FrameEnhancer(model, CPU, tile=1024)
    tiled = FrameEnhancer(model, CPU, tile=40)  # 3 x 4 tiles with their overlap
    assert whole.scale == 2
    one, many = whole(image), tiled(image)
    assert one.shape == many.shape == image.shape and one.dtype == np.uint8
    assert np.abs(one.astype(int) - many.astype(int)).max() <= 1  # rounding only
    assert np.abs(one.astype(int) - image.astype(int)).mean() > 1  # the model did something
    unchanged = FrameEnhancer(model, CPU, tile=40, blend=0.0)(image)
    np.testing.assert_array_equal(unchanged, image)


def test_each_call_of_the_model_sees_one_bounded_tile(tmp_path: Path) -> None:
    enhancer = FrameEnhancer(write_compact_sr(tmp_path / "compact_x2.pth"), CPU, tile=64)
    seen: list[tuple[int, ...]] = []
    model = enhancer.descriptor.model
    handle = model.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    try:
        enhancer(_image(300, 500))
    finally:
        handle.remove()
    assert len(seen) == 5 * 8  # ceil(300 / 64) x ceil(500 / 64) tiles
    assert max(shape[0] for shape in seen) == 1
    assert max(max(shape[2:]) for shape in seen) <= 64 + 2 * 16  # a tile and its overlap


def test_face_restorers_and_bad_files_are_refused(tmp_path: Path) -> None:
    restorer = write_restoreformer(tmp_path / "RestoreFormer.pth")
    with pytest.raises(CorruptWeightsError, match="face restorer .* use --enhancer"):
        FrameEnhancer(restorer, CPU)
    garbage = tmp_path / "x4.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptWeightsError, match="cannot be read"):
        FrameEnhancer(garbage, CPU)
    unknown = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2, 2)}, str(unknown))
    with pytest.raises(CorruptWeightsError, match="no model spandrel knows"):
        FrameEnhancer(unknown, CPU)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_frame_enhancer_end_to_end(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every frame enhanced, faces or not; the size kept; a missing file and a
    passthrough job are one line each, with nothing written."""
    clip = write_clip(tmp_path / "in.mp4", frames=6, width=96, height=64)
    model = write_compact_sr(tmp_path / "compact_x2.pth")
    plain, enhanced = tmp_path / "plain.mp4", tmp_path / "enhanced.mp4"
    code, err = cli(source_image, clip, plain, "--swapper", "classic")
    assert code == 0, err
    code, err = cli(source_image, clip, enhanced, "--swapper", "classic", "--frame-enhancer", model)
    assert code == 0, err
    before, after = _frames(plain), _frames(enhanced)
    assert len(before) == len(after) == 6 and after[0].shape == (64, 96, 3)
    changes = [
        np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(after, before, strict=True)
    ]
    assert min(changes) > 1
    code, err = cli(source_image, clip, tmp_path / "o.mp4", "--frame-enhancer", tmp_path / "no.pth")
    assert code == ExitCode.MISSING_WEIGHTS and "no.pth" in err
    code, err = cli(
        source_image, clip, tmp_path / "o.mp4", "--swapper", "none", "--frame-enhancer", model
    )
    assert code == ConfigValueError.exit_code and "swap job" in err
    assert not (tmp_path / "o.mp4").exists()
