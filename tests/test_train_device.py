"""The trainer's device path: the precision `auto` picks, CLIP views sampled in
fp32, batches drawn ahead in a thread (the same ones, in the same order, and a
checkpoint that resumes where the steps are, not where the thread is), and the
tiny configuration on a GPU in bf16 and fp16. Synthetic face crops: no
detector, no model files, no downloads."""

from __future__ import annotations

import csv
import math
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

import clipswap_video.train.trainer as trainer_module
from clipswap_video.train import Trainer, load_train_config
from clipswap_video.train.checkpoint import read_checkpoint
from clipswap_video.train.data import Batch, FaceDataset, PairSampler
from clipswap_video.train.networks import random_views
from clipswap_video.train.trainer import resolve_precision


def _trainer(tmp_path: Path, *overrides: str) -> Trainer:
    """The tiny config over six random 64 px "faces" (written as the face cache
    would), with its sampler built directly: prepare_data would run a detector."""
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    files = []
    for index in range(6):
        files.append(folder / f"{index:05d}_00.png")
        cv2.imwrite(str(files[-1]), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    config = load_train_config("tiny", [f'run.out_dir="{tmp_path / "run"}"', *overrides])
    trainer = Trainer(config)
    trainer.sampler = PairSampler(FaceDataset(files, workers=2), config.data, config.run.seed)
    return trainer


def test_auto_precision_is_bf16_where_the_gpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_precision("auto", cpu) is None
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: True)  # Ampere, Hopper
    assert resolve_precision("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: False)  # Volta, Turing
    assert resolve_precision("auto", cuda) == torch.float16
    assert resolve_precision("fp32", cuda) is None
    assert resolve_precision("bf16", cpu) == torch.bfloat16


def test_views_of_half_precision_images_are_sampled_in_fp32() -> None:
    """bf16 images (as fp16 ones under autocast) give the fp32 views rounded to
    bf16: the affine maps and the grid are not built in the images' dtype, which
    moved the samples of this noise image by up to a pixel."""
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    options: dict[str, Any] = {"rotation": 15.0, "min_scale": 0.7}
    exact = random_views(images, 2, 48, generator=torch.Generator().manual_seed(1), **options)
    half = images.to(torch.bfloat16)
    views = random_views(half, 2, 48, generator=torch.Generator().manual_seed(1), **options)
    assert views.dtype == torch.bfloat16 and views.shape == (2, 3, 3, 48, 48)
    torch.testing.assert_close(views.float(), exact, atol=8e-3, rtol=0)


def _draws(sampler: PairSampler, count: int) -> tuple[list[Batch], list[torch.Tensor]]:
    """`count` batches of a fresh sampler like `sampler`, and its generator's state after each."""
    fresh = PairSampler(sampler.dataset, sampler.config, seed=0)
    fresh.generator.set_state(sampler.generator.get_state())
    batches, states = [], []
    for _ in range(count):
        batches.append(fresh.draw())
        states.append(fresh.generator.get_state())
    return batches, states


def _same(a: Batch, b: Batch) -> bool:
    return all(torch.equal(x, y) for x, y in zip(vars(a).values(), vars(b).values(), strict=True))


def test_batches_are_drawn_ahead_in_a_thread_and_checkpoints_keep_the_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batches are the sampler's, in order, drawn off the main thread while a
    (slow, stand-in) step runs; each checkpoint keeps the data generator as it was
    after the step's own batch, although the thread has drawn further."""
    trainer = _trainer(tmp_path, "run.steps=5", "run.checkpoint_every=2")
    assert trainer.sampler is not None and trainer.precision == "fp32"
    expected, states = _draws(trainer.sampler, 5)
    drawn_in: list[str] = []
    draw = trainer.sampler.draw

    def recorded_draw() -> Batch:
        drawn_in.append(threading.current_thread().name)
        return draw()

    seen: list[Batch] = []
    ahead: list[int] = []

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        seen.append(batch)
        time.sleep(0.2)  # the thread fills its queue meanwhile
        ahead.append(len(drawn_in) - len(seen))
        return {"total": torch.zeros(())}

    saved: dict[int, torch.Tensor] = {}

    def on_step(step: int, metrics: object) -> None:
        if step % 2 == 0:
            saved[step] = read_checkpoint(trainer.checkpoint_path)[0]["rng.data"]

    monkeypatch.setattr(trainer.sampler, "draw", recorded_draw)
    monkeypatch.setattr(trainer, "train_step", step)
    try:
        assert trainer.fit(on_step)
    finally:
        trainer.close()
    # ahead: the queue of two plus the batch waiting to go in
    assert drawn_in == ["train-batches"] * 5 and ahead[0] >= 2 and max(ahead) <= 3
    assert len(seen) == 5 and all(map(_same, seen, expected))
    assert torch.equal(saved[2], states[1]) and torch.equal(saved[4], states[3])
    assert torch.equal(read_checkpoint(trainer.checkpoint_path)[0]["rng.data"], states[4])
    assert torch.equal(trainer.sampler.generator.get_state(), states[4])


@pytest.mark.parametrize("error", [RuntimeError("a bug in the step"), KeyboardInterrupt()])
def test_a_failing_step_stops_the_drawing_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """The error reaches the caller, the thread ends, and the data generator is
    back where the steps left it (two batches handed out), not where the thread was."""
    trainer = _trainer(tmp_path, "run.steps=50")
    assert trainer.sampler is not None
    _, states = _draws(trainer.sampler, 2)
    calls: list[int] = []

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        calls.append(1)
        time.sleep(0.1)
        if len(calls) == 2:
            raise error
        return {"total": torch.zeros(())}

    monkeypatch.setattr(trainer, "train_step", step)
    with pytest.raises(type(error)):
        trainer.fit()
    trainer.close()
    assert not [t for t in threading.enumerate() if t.name == "train-batches"]
    assert torch.equal(trainer.sampler.generator.get_state(), states[1])


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_tiny_config_trains_three_steps_on_the_gpu(tmp_path: Path, precision: str) -> None:
    """Three real steps: pinned batches, cuDNN autotuning during the run only,
    loss scaling with fp16 alone, finite losses and weights."""
    trainer = _trainer(tmp_path, "run.steps=3", 'run.device="cuda"', f'run.precision="{precision}"')
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert trainer.amp_dtype == dtype and trainer.precision == precision
    assert trainer.scaler_g.is_enabled() == (precision == "fp16")
    major, _ = torch.cuda.get_device_capability()
    expected_auto = torch.bfloat16 if major >= 8 else torch.float16
    assert resolve_precision("auto", torch.device("cuda")) == expected_auto
    real_step, seen = trainer.train_step, []

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        seen.append((batch.target.is_pinned(), torch.backends.cudnn.benchmark))
        return real_step(batch)

    trainer.train_step = step  # type: ignore[method-assign]
    autotune_before = torch.backends.cudnn.benchmark
    try:
        assert trainer.fit()
    finally:
        trainer.close()
    assert seen == [(True, True)] * 3 and torch.backends.cudnn.benchmark == autotune_before
    with open(trainer.out_dir / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["step"] for row in rows] == ["1", "2", "3"]
    figures = [float(value) for row in rows for key, value in row.items() if value]
    assert all(math.isfinite(value) for value in figures), rows
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())
    assert next(trainer.generator.parameters()).device.type == "cuda"
