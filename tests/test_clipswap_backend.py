"""The clipswap backend with small models saved in the real Keras format:
auto-selection, the source identity against one computed by hand, identity
computed once, bf16 against fp32, end to end on a small clip."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from face_fixtures import (
    assert_first_face_swapped,
    astronaut,
    astronaut_actor,
    grace_hopper,
    line_path,
    write_actor_clip,
)
from identity_reference import aligned_crop, identity_net_output, identity_net_weights
from keras_writer import colour_mix_generator, small_identity_graph, write_keras_h5
from PIL import Image

from clipswap_video.config import load_settings
from clipswap_video.errors import ExitCode, NoFaceError
from clipswap_video.faces import SourceIdentity, create_detector, source_identity
from clipswap_video.media import VideoReader
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
from clipswap_video.models.spec_graph import random_weights
from clipswap_video.swap import CropBatch, FaceSwapper, create_backend, resolve_swapper
from media_fixtures import rgb_frames


def _weights(folder: Path) -> Path:
    """A narrow generator (256 px, z 512) and a small 112 px identity net, as .h5 files."""
    folder.mkdir(exist_ok=True)
    spec = GeneratorSpec(channels=(4, 4, 4, 4, 4, 4), mapping_depth=1, mapping_size=8)
    config, shapes = generator_config(spec)
    write_keras_h5(folder / "ClipSwap.h5", config, random_weights(shapes, seed=1))
    arrays = identity_net_weights()
    model, weights = small_identity_graph(
        arrays["conv/kernel:0"], arrays["embedding/kernel:0"], activation="relu"
    )
    write_keras_h5(folder / "ArcFace-Res50.h5", model, weights)
    return folder


def _clip(tmp_path: Path) -> Path:
    clip = tmp_path / "in.mp4"
    write_actor_clip(
        clip, [astronaut_actor(line_path((260, 180), (380, 180), 1, 1.25))], seconds=0.5
    )
    return clip


def _source(tmp_path: Path) -> Path:
    path = tmp_path / "grace.png"
    Image.fromarray(grace_hopper()).save(path)
    return path


@pytest.fixture(scope="module")
def two_people(tmp_path_factory: pytest.TempPathFactory) -> SourceIdentity:
    """Grace Hopper and the astronaut as the source photos: two clearly different faces."""
    folder = tmp_path_factory.mktemp("sources")
    paths = [folder / "grace.png", folder / "astronaut.png"]
    for path, image in zip(paths, [grace_hopper(), astronaut()], strict=True):
        Image.fromarray(image).save(path)
    return source_identity(create_detector(load_settings().faces), paths)


def test_auto_picks_clipswap_only_when_both_files_are_there(tmp_path: Path) -> None:
    assert resolve_swapper("auto", tmp_path)[0] == "classic"
    folder = _weights(tmp_path / "w")
    assert resolve_swapper("auto", folder) == ("clipswap", None)
    (folder / "ArcFace-Res50.h5").unlink()
    name, warning = resolve_swapper("auto", folder)
    assert name == "classic" and warning and "ArcFace-Res50.h5" in warning


def test_the_official_tree_in_any_case_loads(tmp_path: Path) -> None:
    """Discovery finds `CLIPSWAP.H5` in `Pretrained_Ckpts/ClipSwap/`; the loaders
    then read it as Keras .h5 whatever the case of its suffix."""
    folder = _weights(tmp_path / "w")
    (folder / "Pretrained_Ckpts" / "ClipSwap").mkdir(parents=True)
    (folder / "ClipSwap.h5").rename(folder / "Pretrained_Ckpts" / "ClipSwap" / "CLIPSWAP.H5")
    (folder / "arcface_model").mkdir()
    (folder / "ArcFace-Res50.h5").rename(folder / "arcface_model" / "arcface-res50.H5")
    assert resolve_swapper("auto", folder) == ("clipswap", None)
    backend = create_backend("clipswap", folder)
    assert backend.name == "clipswap"


def test_another_source_keeps_the_loaded_models(tmp_path: Path) -> None:
    """`use_sources` (a batch worker's next identity) prepares the new source on
    the same networks, as a fresh swapper would; photos without a face leave
    the swapper as it was."""
    folder = _weights(tmp_path / "w")
    astronaut_photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()).save(astronaut_photo)
    swapper = FaceSwapper(load_settings(), [_source(tmp_path)], folder)
    generator, grace_z = swapper.backend.generator, swapper.backend.z.clone()
    swapper.use_sources([astronaut_photo])
    fresh = FaceSwapper(load_settings(), [astronaut_photo], folder)
    assert swapper.backend.generator is generator
    assert torch.equal(swapper.backend.z, fresh.backend.z)
    assert not torch.allclose(swapper.backend.z, grace_z)
    assert swapper.identity.paths == fresh.identity.paths
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    with pytest.raises(NoFaceError, match="blank.png"):
        swapper.use_sources([blank])
    assert torch.equal(swapper.backend.z, fresh.backend.z)
    assert swapper.identity.paths == fresh.identity.paths


def test_identity_is_computed_once_for_a_whole_video(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "w")
    swapper = FaceSwapper(load_settings(), [_source(tmp_path)], folder)
    assert swapper.backend.name == "clipswap"
    calls = []
    swapper.backend.identity_net.register_forward_hook(lambda *args: calls.append(1))
    with VideoReader(_clip(tmp_path)) as reader:
        stage = swapper.stage_for(reader.info)
        frames = list(reader.frames())
        done = [out for frame in frames for out in stage.push(frame)] + stage.flush()
    assert (
        done == frames and calls == [] and stage.coverage.faces_swapped == len(frames) == 15
    )  # prepared at load time
    z = swapper.backend.z
    assert z is not None and z.shape == (1, 512) and torch.isfinite(z).all()


def test_source_identity_is_the_mean_raw_output_for_rgb_crops_in_0_1(
    two_people: SourceIdentity, tmp_path: Path
) -> None:
    """z against the identity net run by hand on crops aligned by hand (tests/identity_reference):
    catches BGR crops, [-1, 1] scaling, an L2-normalised z, the wrong photo's crop or landmarks,
    and one photo standing for the mean."""
    backend = create_backend("clipswap", _weights(tmp_path / "w"))
    backend.prepare_source(two_people)
    photos = [
        identity_net_output(aligned_crop(image, face.landmarks_5, 112))
        for image, face in zip(two_people.images, two_people.faces, strict=True)
    ]
    expected = np.mean(photos, axis=0)
    tolerance = 1e-4 * np.abs(expected).max()
    z = backend.z  # type: ignore[attr-defined]
    assert z.shape == (1, 512) and z.dtype == torch.float32
    np.testing.assert_allclose(z[0].numpy(), expected, rtol=1e-4, atol=tolerance)
    # Two different people: either photo alone is far from the mean, so it cannot pass for it.
    assert all(np.abs(photo - expected).max() > 1000 * tolerance for photo in photos)


PAPER_COMPOSITE = (
    "--set",
    "composite.masks=paper",
    "--set",
    "composite.keep_mouth=false",
    "--set",
    "composite.blend=alpha",
    "--set",
    "composite.colour_transfer=false",
)


@pytest.mark.parametrize("options", [(), ("--batch-size", "4", *PAPER_COMPOSITE)])
def test_clipswap_end_to_end(cli, tmp_path: Path, options: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    folder, clip, output = _weights(tmp_path / "w"), _clip(tmp_path), tmp_path / "out.mp4"
    code, err = cli(_source(tmp_path), clip, output, "--weights", folder, *options)
    assert code == 0 and "classic" not in err  # auto chose clipswap: no fallback warning
    with av.open(str(output)) as container:
        assert container.metadata["comment"].startswith("synthetic: face swapped")
    assert_first_face_swapped(rgb_frames(output), rgb_frames(clip))


def test_clipswap_without_weights_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, err = cli(
        _source(tmp_path),
        _clip(tmp_path),
        tmp_path / "o.mp4",
        "--swapper",
        "clipswap",
        "--weights",
        tmp_path / "empty",
    )
    assert code == ExitCode.MISSING_WEIGHTS and "ClipSwap.h5" in err and err.count("\n") == 1
    assert not (tmp_path / "o.mp4").exists()


def test_bf16_autocast_runs_on_the_cpu(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "w")
    settings = load_settings(overrides=["swap.precision=bf16", "swap.device=cpu"])
    swapper = FaceSwapper(settings, [_source(tmp_path)], folder)
    with VideoReader(_clip(tmp_path)) as reader:
        stage = swapper.stage_for(reader.info)
        frame = next(iter(reader.frames()))
        assert stage.push(frame) + stage.flush() == [frame]
    assert frame.pixels is not None and stage.coverage.faces_swapped == 1


def test_bf16_swaps_like_fp32(two_people: SourceIdentity, tmp_path: Path) -> None:
    """The same crops swapped in bf16 and fp32: close (bf16 keeps 8 bits of mantissa: 1.5%
    here), yet not equal (autocast ran). A wrong identity moves the output by 50% or more."""
    folder = _weights(tmp_path / "w")
    crops = [
        aligned_crop(image, face.landmarks_5, 256)
        for image, face in zip(two_people.images, two_people.faces, strict=True)
    ]
    batch = CropBatch(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float())
    outputs = {}
    for precision in ("fp32", "bf16"):
        settings = load_settings(overrides=[f"swap.precision={precision}", "swap.device=cpu"])
        backend = create_backend("clipswap", folder, settings.swap)
        backend.prepare_source(two_people)
        outputs[precision] = backend.swap(batch).crops
    fp32, bf16 = outputs["fp32"], outputs["bf16"]
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (2, 3, 256, 256)
    # The test generator's random weights reach far outside 0..255: the error is relative.
    error = float((bf16 - fp32).abs().mean() / fp32.abs().mean())
    assert 0 < error < 0.05


def test_generator_input_and_output_mapping(two_people: SourceIdentity, tmp_path: Path) -> None:
    """The reference's rules around the generator: the target crop enters as
    (pixel - 127.5) / 127.5, the output y leaves as (y + 1) / 2 x 255 and is not
    clipped here (only the finished frame is)."""
    folder = _weights(tmp_path / "w")
    # y = 2 x + 0.25 on each channel
    colour_mix_generator(folder / "ClipSwap.h5", 2.0 * np.eye(3), np.full(3, 0.25))
    backend = create_backend("clipswap", folder, load_settings(overrides=["swap.device=cpu"]).swap)
    backend.prepare_source(two_people)
    rows = torch.arange(256, dtype=torch.float32)[:, None].expand(256, 256)
    crops = torch.stack([rows, 255 - rows, (rows + 85) % 256])[None]  # every level, each channel
    swapped = backend.swap(CropBatch(crops)).crops
    expected = (2.0 * (crops - 127.5) / 127.5 + 0.25 + 1) / 2 * 255
    assert float((swapped - expected).abs().max()) < 1e-3
    assert float(swapped.min()) < -90 and float(swapped.max()) > 410  # unclipped


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
        (["--device", "cuda:0"], "torch sees no CUDA device"),
        (["--device", "tpu"], "is not one of: auto, cpu, cuda"),
    ],
)
def test_device_and_precision_errors(cli, tmp_path: Path, flags: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    if torch.cuda.is_available() and "cuda:0" in flags:
        pytest.skip("this machine has CUDA")
    folder = _weights(tmp_path / "w")
    code, err = cli(
        _source(tmp_path),
        _clip(tmp_path),
        tmp_path / "o.mp4",
        "--swapper",
        "clipswap",
        "--weights",
        folder,
        *flags,
    )
    assert code == ExitCode.BAD_CONFIG_VALUE and message in err and err.count("\n") == 1
