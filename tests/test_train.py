"""Training: each loss on hand-made tensors, the data pipeline on real face
photos and a clip, the tiny configuration end to end (loss falls, kill and
resume, export into the clipswap backend) and the CLI's one-line errors."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from face_fixtures import (
    T1_IMAGE,
    astronaut,
    astronaut_actor,
    grace_hopper,
    line_path,
    write_actor_clip,
)
from PIL import Image
from safetensors.torch import load_file
from test_clipswap_backend import _weights

from clipswap_video.config_sections import SwapSettings
from clipswap_video.errors import ExitCode, InputNotFoundError, NoFaceError, UnreadableInputError
from clipswap_video.swap import CropBatch, create_backend
from clipswap_video.train import TrainConfig, Trainer, load_train_config, losses
from clipswap_video.train.checkpoint import read_checkpoint
from clipswap_video.train.config import DataConfig
from clipswap_video.train.data import (
    Batch,
    FaceCache,
    FaceDataset,
    PairSampler,
    colour_jitter,
    find_media,
    same_flags,
)
from clipswap_video.train.export import export_checkpoint, export_generator
from clipswap_video.train.networks import arcface_input
from clipswap_video.train.trainer import LOSSES

# Losses on tensors with known answers ---------------------------------------------


def test_flag_weighted_mean_is_over_flagged_samples() -> None:
    per_sample = torch.tensor([1.0, 2.0, 3.0])
    same = torch.tensor([True, False, True])
    assert losses.flag_weighted(per_sample, same).item() == pytest.approx(4 / 2.001)
    assert losses.flag_weighted(per_sample, torch.zeros(3, dtype=torch.bool)).item() == 0


def test_adversarial_losses_and_r1() -> None:
    zero = torch.zeros(4, 1)
    assert losses.generator_adversarial(zero).item() == pytest.approx(math.log(2))
    assert losses.discriminator_adversarial(zero, zero).item() == pytest.approx(2 * math.log(2))
    confident = losses.discriminator_adversarial(
        torch.full((4, 1), 20.0), torch.full((4, 1), -20.0)
    )
    assert confident.item() < 1e-8
    # D(x) = <a, x>: the gradient is a everywhere, R1 = gamma / 2 * sum(a^2)
    a = torch.arange(12.0).view(1, 3, 2, 2) / 10
    real = torch.rand(2, 3, 2, 2, requires_grad=True)
    logits = (real * a).flatten(1).sum(1, keepdim=True)
    assert losses.r1_penalty(logits, real, 10.0).item() == pytest.approx(5 * a.square().sum())


def test_reconstruction_is_flag_weighted_halved_and_clipped() -> None:
    target, same = torch.zeros(2, 3, 4, 4), torch.tensor([True, False])
    swapped = torch.stack([torch.ones(3, 4, 4), torch.full((3, 4, 4), 9.0)])
    assert losses.reconstruction(target, swapped, same).item() == pytest.approx(1 / 1.001 / 2)
    far = torch.full((2, 3, 4, 4), 30.0)
    assert losses.reconstruction(target, far, same).item() == 5.0


def test_identity_cycle_and_perceptual() -> None:
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    assert losses.identity(z, z * 5).item() == pytest.approx(0, abs=1e-6)
    assert losses.identity(z, z.flip(1)).item() == pytest.approx(1.0)
    assert losses.identity(z, -z).item() == pytest.approx(2.0)
    assert losses.cycle(torch.full((2, 3), 0.5), torch.zeros(2, 3)).item() == 0.5
    target = [torch.ones(2, 1, 2, 2), torch.full((2, 4, 1, 1), 2.0)]
    swapped = [torch.zeros(2, 1, 2, 2), torch.zeros(2, 4, 1, 1)]
    same = torch.tensor([True, True])
    expected = 0.85 * (1 + 2) * 2 / 2.001
    assert losses.perceptual(target, swapped, same).item() == pytest.approx(expected)


def test_ifsr_hinges_the_batch_mean_distance() -> None:
    a = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])  # (2, 1, 1, 2)
    b = torch.tensor([[[[0.0, 1.0]]], [[[1.0, 0.0]]]])  # sample 0 orthogonal, 1 equal
    margins = [0.1, 0.3]
    value = losses.ifsr([a, a], [b, a], margins, scale=1.2)  # block 2 identical: hinge 0
    assert value.item() == pytest.approx(0.5 - 1.2 * 0.1)
    assert losses.ifsr([a], [b], [0.5], scale=1.2).item() == 0  # 0.5 < 0.6: under the margin


def test_clip_contrastive_pulls_to_the_source_and_pushes_from_the_rest() -> None:
    eye = torch.eye(4)
    source, target = eye[:3], eye[3].expand(3, 4)
    tau = 0.5
    aligned = source.expand(2, 3, 4)  # 2 views, each exactly its source
    valid = torch.ones(3, dtype=torch.bool)
    # positive cos 1, other two sources and the target cos 0
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 3))
    assert losses.clip_contrastive(aligned, source, target, tau, valid).item() == (
        pytest.approx(expected)
    )
    toward_target = target.expand(2, 3, 4)
    assert losses.clip_contrastive(toward_target, source, target, tau, valid) > expected
    # samples whose source is their target do not count; none valid is 0
    mixed = torch.stack([source, target])
    only_first = torch.tensor([True, False, False])
    part = losses.clip_contrastive(mixed, source, target, tau, only_first).item()
    to_target = -math.log(1 / (math.exp(1 / tau) + 3))
    assert part == pytest.approx((expected + to_target) / 2)
    assert losses.clip_contrastive(mixed, source, target, tau, ~valid).item() == 0


def test_attribute_final_feature_or_every_level() -> None:
    target = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2)]
    swapped = [torch.full((1, 2, 4, 4), 4.0), torch.full((1, 2, 2, 2), 2.0)]
    assert losses.attribute(target, swapped).item() == 2.0
    assert losses.attribute(target, swapped, norm="l2").item() == 4.0
    assert losses.attribute(target, swapped, multi_level=True).item() == 3.0


# Data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three photos (eight faces) and a short clip of the astronaut."""
    folder = tmp_path_factory.mktemp("faces")
    Image.fromarray(astronaut()).save(folder / "astronaut.png")
    Image.fromarray(grace_hopper()).save(folder / "grace.jpg")
    (folder / "t1.jpg").write_bytes(T1_IMAGE.read_bytes())
    actor = astronaut_actor(line_path((260, 180), (380, 180), 1, 1.25))
    write_actor_clip(folder / "clip.mp4", [actor], seconds=0.5)
    (folder / "notes.txt").write_text("not media")
    return folder


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def tiny(out: Path, data: Path, cache: Path, *overrides: str) -> TrainConfig:
    paths = [f'data.paths=["{data}"]', f'run.out_dir="{out}"', f'data.cache_dir="{cache}"']
    return load_train_config("tiny", [*paths, *overrides])


def test_find_media_lists_images_and_videos(data_dir: Path, tmp_path: Path) -> None:
    names = [path.name for path in find_media([data_dir])]
    assert names == ["astronaut.png", "clip.mp4", "grace.jpg", "t1.jpg"]
    with pytest.raises(InputNotFoundError, match="does not exist"):
        find_media([tmp_path / "missing"])
    with pytest.raises(InputNotFoundError, match="no images or videos"):
        find_media([data_dir / "notes.txt"])


def test_faces_are_detected_once_and_cached(data_dir: Path, cache_dir: Path) -> None:
    config = DataConfig(min_face_size=24, frames_per_video=4)
    media = find_media([data_dir])
    files = FaceCache(cache_dir, 64, config).crops(media)
    per_source = {
        source.name: sum(f.parent.name.startswith(source.stem) for f in files) for source in media
    }
    assert per_source == {"astronaut.png": 1, "clip.mp4": 4, "grace.jpg": 1, "t1.jpg": 6}
    again = FaceCache(cache_dir, 64, config)
    assert again.crops(media) == files and again._detector is None  # read from the cache
    crops = FaceDataset(files, workers=2).load([0, 1])
    assert crops.shape == (2, 3, 64, 64) and -1 <= crops.min() < crops.max() <= 1


def test_no_face_in_the_data_is_an_error(tmp_path: Path) -> None:
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    cache = FaceCache(tmp_path / "cache", 64, DataConfig())
    with pytest.raises(NoFaceError, match="no faces"):
        cache.crops([tmp_path / "grey.png"])
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(UnreadableInputError, match="broken.mp4"):
        cache.crops([tmp_path / "broken.mp4"])


def test_same_flags_at_least_one_per_batch() -> None:
    rng = torch.Generator().manual_seed(0)
    assert not same_flags(8, 0.0, rng).any() and same_flags(8, 1.0, rng).all()
    assert all(same_flags(3, 0.01, rng).sum() >= 1 for _ in range(50))
    assert same_flags(20000, 0.2, rng).float().mean().item() == pytest.approx(0.2, abs=0.02)


def test_sampler_replaces_flagged_sources_by_their_targets(data_dir: Path, cache_dir: Path) -> None:
    config = DataConfig(
        min_face_size=24,
        frames_per_video=4,
        batch_size=16,
        same_ratio=0.5,
        brightness=0.0,
        contrast=(1.0, 1.0),
        saturation=(1.0, 1.0),
    )
    files = FaceCache(cache_dir, 64, config).crops(find_media([data_dir]))
    batch = PairSampler(FaceDataset(files), config, seed=3).draw()
    same = batch.same
    assert 0 < same.sum() < 16
    assert torch.equal(batch.source[same], batch.target[same])
    assert (batch.source[~same] != batch.target[~same]).flatten(1).any(1).float().mean() > 0.5


def test_colour_jitter_ranges() -> None:
    rng = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 8, 8, generator=rng) * 1.2 - 0.6
    off = DataConfig(brightness=0.0, contrast=(1.0, 1.0), saturation=(1.0, 1.0))
    assert torch.allclose(colour_jitter(images, off, rng), images)
    bright = DataConfig(brightness=0.3, contrast=(1.0, 1.0), saturation=(1.0, 1.0))
    shift = colour_jitter(images, bright, rng) - images  # no clamping: |x| <= 0.6 + 0.3
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= 0.3 and shift.abs().max() > 0
    grey = DataConfig(brightness=0.0, contrast=(1.0, 1.0), saturation=(0.0, 0.0))
    out = colour_jitter(images, grey, rng)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])


# The tiny configuration --------------------------------------------------------------


def test_default_config_file_is_the_dataclass_defaults() -> None:
    assert load_train_config("default") == TrainConfig()


def test_every_loss_reaches_the_generator(tmp_path: Path) -> None:
    config = load_train_config("tiny", ["identity.ifsr_scale=0.0"])  # IFSR hinge active
    trainer = Trainer(config)
    rng = torch.Generator().manual_seed(1)
    images = torch.rand(2, 4, 3, 64, 64, generator=rng) * 2 - 1
    batch = Batch(images[0], images[1], torch.tensor([True, False, False, False]))
    parts, _ = trainer.generator_losses(batch)
    assert sorted(parts) == sorted(LOSSES)
    parameters = list(trainer.generator.parameters())
    for name, part in parts.items():
        grads = torch.autograd.grad(part, parameters, retain_graph=True, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    frozen = [trainer.arcface, trainer.vgg, trainer.clip.visual, trainer.attributes]
    assert not any(p.requires_grad for net in frozen for p in net.parameters())


def _reconstruction(trainer: Trainer, batch: torch.Tensor) -> float:
    with torch.no_grad():
        z = trainer.arcface(arcface_input(batch))
        swapped = trainer.generator(batch, z)
        return losses.reconstruction(
            batch, swapped, torch.ones(len(batch), dtype=torch.bool)
        ).item()


@pytest.fixture(scope="module")
def trained(
    data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Trainer, float, float]:
    """The tiny config trained 20 steps; its reconstruction loss before and after
    on four fixed faces (each its own source)."""
    out = tmp_path_factory.mktemp("run")
    trainer = Trainer(tiny(out, data_dir, cache_dir, "run.steps=20"))
    trainer.prepare_data()
    assert trainer.sampler is not None
    fixed = trainer.sampler.dataset.load([0, 1, 2, 3])
    before = _reconstruction(trainer, fixed)
    assert trainer.fit()
    return trainer, before, _reconstruction(trainer, fixed)


def test_tiny_config_trains_and_its_reconstruction_falls(
    trained: tuple[Trainer, float, float],
) -> None:
    trainer, before, after = trained
    assert trainer.step == 20 and after < 0.7 * before
    assert trainer.learning_rate() == pytest.approx(1e-3 * 0.97 ** (20 / 100000))
    out = trainer.out_dir
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,seconds,lr,total,adversarial") and len(rows) == 21
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step_0000010.png",
        "step_0000020.png",
    ]
    with Image.open(out / "samples" / "step_0000020.png") as grid:
        assert grid.size == (3 * 64, 4 * 64)  # source | target | swap, four rows


def test_checkpoint_exports_into_the_clipswap_backend(
    trained: tuple[Trainer, float, float], tmp_path: Path
) -> None:
    trainer = trained[0]
    folder = _weights(tmp_path / "w")
    export_generator(trainer.generator, folder / "ClipSwap.safetensors", image_size=256)
    from_checkpoint = tmp_path / "from_checkpoint.safetensors"
    export_checkpoint(
        trainer.checkpoint_path, trainer.config.model.generator_spec(), from_checkpoint
    )
    exported = load_file(folder / "ClipSwap.safetensors")
    assert all(torch.equal(v, load_file(from_checkpoint)[k]) for k, v in exported.items())
    backend = create_backend("clipswap", folder, SwapSettings(device="cpu"))
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(0))
    backend.z = z  # type: ignore[attr-defined]
    crops = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 255
    swapped = backend.swap(CropBatch(crops)).crops
    with torch.no_grad():
        expected = (trainer.generator(crops / 127.5 - 1, z.expand(2, -1)) + 1) * 127.5
    torch.testing.assert_close(swapped, expected, atol=1e-2, rtol=1e-4)


def _endless_run(out: Path, data_dir: Path, cache_dir: Path, checkpoint_every: int) -> list[str]:
    """`clipswap-video train tiny` for 100000 steps: a run to stop from outside."""
    return [
        sys.executable,
        "-m",
        "clipswap_video",
        "train",
        "tiny",
        "-q",
        "--data",
        str(data_dir),
        "--out",
        str(out),
        "--set",
        f'data.cache_dir="{cache_dir}"',
        "--set",
        f"run.checkpoint_every={checkpoint_every}",
        "--steps",
        "100000",
    ]


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint(
    data_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    command = _endless_run(out, data_dir, cache_dir, checkpoint_every=3)
    process = subprocess.Popen(command, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.safetensors").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    tensors, metadata = read_checkpoint(out / "checkpoint.safetensors")
    killed_at = int(metadata["step"])
    assert killed_at > 0 and killed_at % 3 == 0
    steps = f"run.steps={killed_at + 3}"

    resumed = Trainer(tiny(out, data_dir, cache_dir, steps))
    resumed.prepare_data()
    assert resumed.resume() and resumed.step == killed_at
    adam = resumed.optim_g.state_dict()["state"][0]
    assert torch.equal(adam["exp_avg_sq"], tensors["optim.generator.0.exp_avg_sq"])
    assert float(adam["step"]) == killed_at
    assert resumed.fit() and resumed.step == killed_at + 3

    straight = Trainer(tiny(tmp_path / "straight", data_dir, cache_dir, steps))
    straight.prepare_data()
    assert straight.fit()
    for net in ("generator", "discriminator"):
        ours, theirs = getattr(resumed, net).state_dict(), getattr(straight, net).state_dict()
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key], atol=1e-5, rtol=1e-4)
    exp_avg = [
        resumed.optim_d.state_dict()["state"][0]["exp_avg"],
        straight.optim_d.state_dict()["state"][0]["exp_avg"],
    ]
    torch.testing.assert_close(*exp_avg, atol=1e-6, rtol=1e-4)
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [str(s) for s in range(1, killed_at + 4)]


def test_sigterm_saves_a_checkpoint_and_exits_130(
    data_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "stopped"
    command = _endless_run(out, data_dir, cache_dir, checkpoint_every=100000)
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    metrics, deadline = out / "metrics.csv", time.monotonic() + 120
    while not metrics.exists() or len(metrics.read_text().splitlines()) < 4:
        assert process.poll() is None and time.monotonic() < deadline, "no steps logged"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.INTERRUPTED, err
    _, metadata = read_checkpoint(out / "checkpoint.safetensors")  # saved on the way out
    logged = [int(row.split(",")[0]) for row in metrics.read_text().splitlines()[1:]]
    assert int(metadata["step"]) == logged[-1] >= 3
    assert not list(out.glob("*.partial.*"))


# CLI errors --------------------------------------------------------------------------


def test_cli_trains_and_exports(cli, data_dir: Path, cache_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    args = (
        "train",
        "tiny",
        "--data",
        data_dir,
        "--out",
        out,
        "--steps",
        "2",
        "--set",
        f'data.cache_dir="{cache_dir}"',
    )
    code, err = cli(*args)
    assert code == 0 and "trained to step 2" in err and "faces; device cpu, fp32" in err
    assert (out / "ClipSwap.safetensors").exists() and (out / "config.toml").exists()
    (out / "ClipSwap.safetensors").unlink()
    code, err = cli(*args, "--export-only")
    assert code == 0 and (out / "ClipSwap.safetensors").exists()


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("nonesuch",), ExitCode.INPUT_MISSING, "training config nonesuch does not exist"),
        (("tiny", "--set", "run.stepz=3"), ExitCode.UNKNOWN_CONFIG_KEY, "did you mean run.steps"),
        (("tiny", "--set", "data.same_ratio=2"), ExitCode.BAD_CONFIG_VALUE, "out of range"),
        (("tiny", "--data", "missing"), ExitCode.INPUT_MISSING, "missing does not exist"),
        (("default", "--data", "face.png"), ExitCode.MISSING_WEIGHTS, "ArcFace weights"),
        (("tiny", "--out", "run", "--export-only"), ExitCode.INPUT_MISSING, "no checkpoint"),
    ],
)
def test_cli_errors_are_one_line(  # type: ignore[no-untyped-def]
    cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    exit_code: ExitCode,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Image.fromarray(grace_hopper()).save("face.png")
    code, err = cli("train", *args)
    assert code == exit_code and message in err and err.count("\n") == 1


def test_cli_no_faces_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    code, err = cli(
        "train", "tiny", "-q", "--data", tmp_path / "grey.png", "--out", tmp_path / "run"
    )
    assert code == ExitCode.NO_FACE and "no faces" in err and err.count("\n") == 1


def test_tensorboard_log_holds_every_loss(data_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny(tmp_path, data_dir, cache_dir, "run.steps=3", 'run.log="tensorboard"')
    trainer = Trainer(config)
    trainer.prepare_data()
    try:
        assert trainer.fit()
    finally:
        trainer.close()
    assert not (tmp_path / "metrics.csv").exists()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/total", "train/reconstruction", "train/clip", "train/r1"} <= set(tags)
    assert [event.step for event in events.Scalars("train/total")] == [1, 2, 3]
