"""The training loop: FaceDancer's step (Rosberg et al., WACV 2023) with
ClipSwap's CLIP-contrastive and attribute-preservation losses (Yee et al., FG
2024); docs/models.md, section 4.

Per step: identity vectors of source and target from the frozen ArcFace, the
swap Y = G(target, z_source), the generator's weighted loss sum, one Adam step
of G; then the discriminator (sources real, Y fake, R1 on the reals every step)
and one Adam step of D. Adam beta1 0, beta2 0.99, epsilon 1e-7, learning rate
lr * decay_rate ** (step / decay_steps). bf16 autocast on GPUs that have it
(Ampere and later), else fp16 with loss scaling on CUDA (the R1 pass stays
fp32 either way), fp32 on the CPU. The next batches are drawn in a thread
while the step runs (train/prefetch.py).

Outputs in run.out_dir: checkpoint.safetensors (resumable), metrics.csv (or
TensorBoard events), samples/step_N.png (source | target | swap rows),
config.toml, and ClipSwap.safetensors (the generator for the swap backend).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from clipswap_video.models.discriminator import Discriminator
from clipswap_video.models.generator import FaceDancerGenerator
from clipswap_video.swap.device import (
    check_precision,
    keep_freed_host_memory,
    resolve_device,
)
from clipswap_video.train import losses
from clipswap_video.train.checkpoint import CHECKPOINT_NAME, TrainState, restore, save_checkpoint
from clipswap_video.train.config import TrainConfig, to_toml
from clipswap_video.train.data import Batch, FaceCache, FaceDataset, PairSampler, find_media
from clipswap_video.train.export import BACKEND_SIZE, export_generator
from clipswap_video.train.metrics import LOSSES, METRICS, Metrics, MetricsLog
from clipswap_video.train.networks import (
    arcface_input,
    build_arcface,
    build_attribute_encoder,
    build_clip,
    build_vgg,
    embed_with_blocks,
    random_views,
)
from clipswap_video.train.prefetch import Prefetcher

log = logging.getLogger("clipswap_video")


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, None for fp32. `auto`: bf16 on a GPU that computes in
    it (Ampere, Hopper and later: no loss scaling, no fp16 overflow in the GAN
    and R1 terms), fp16 on older GPUs, fp32 on the CPU."""
    if name == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if native_bf16(device) else torch.float16
    check_precision(name, device, "run.precision")
    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU `device` computes in bf16 itself (torch emulates it on
    older ones, slowly: not counted)."""
    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)


class Trainer:
    """One training run: networks, optimizers, data and outputs of `config`.

    Args:
        config: the effective training config.
        weights_dir: where a non-dlib face detector finds its files.
    """

    def __init__(self, config: TrainConfig, weights_dir: Path | None = None) -> None:
        self.config, self.weights_dir = config, weights_dir
        self.out_dir = Path(config.run.out_dir)
        self.device = resolve_device(config.run.device, "run.device")
        self.amp_dtype = resolve_precision(config.run.precision, self.device)
        if self.device.type == "cpu":
            keep_freed_host_memory()  # no page faults on every step's activations
        torch.manual_seed(config.run.seed)  # the same random init (and frozen nets) every run
        m = config.model
        self.generator = FaceDancerGenerator(m.generator_spec()).to(self.device)
        self.discriminator = Discriminator(
            image_size=m.image_size, first=m.discriminator_first, channels=m.discriminator_channels
        ).to(self.device)
        self.arcface = build_arcface(config.identity).to(self.device)
        self.vgg = build_vgg(config.perceptual.weights, config.perceptual.widths).to(self.device)
        self.clip = build_clip(config.clip).to(self.device)
        self.attributes = build_attribute_encoder(config.attribute, m.image_size).to(self.device)
        o = config.optim
        adam: dict[str, Any] = {"lr": o.lr, "betas": (o.beta1, o.beta2), "eps": o.eps}
        self.optim_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.optim_d = torch.optim.Adam(self.discriminator.parameters(), **adam)
        scaling = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=scaling)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=scaling)
        self.views_rng = torch.Generator().manual_seed(config.run.seed + 1)
        self.sampler: PairSampler | None = None
        self.step = 0

    # Data and state ----------------------------------------------------------------

    def prepare_data(self, on_file: Callable[[Path], None] | None = None) -> int:
        """Finds (or reads from the cache) every face of data.paths; returns how many."""
        media = find_media(self.config.data.paths)
        cache_dir = Path(self.config.data.cache_dir or self.out_dir / "face_cache")
        cache = FaceCache(
            cache_dir, self.config.model.image_size, self.config.data, self.weights_dir
        )
        dataset = FaceDataset(cache.crops(media, on_file), self.config.data.workers)
        self.sampler = PairSampler(dataset, self.config.data, self.config.run.seed)
        return len(dataset)

    def state(self) -> TrainState:
        assert self.sampler is not None, "prepare_data() first"
        return TrainState(
            modules={"generator": self.generator, "discriminator": self.discriminator},
            optimizers={"generator": self.optim_g, "discriminator": self.optim_d},
            scalers={"generator": self.scaler_g, "discriminator": self.scaler_d},
            generators={"data": self.sampler.generator, "views": self.views_rng},
        )

    @property
    def precision(self) -> str:
        """What run.precision resolved to: fp32, fp16 or bf16."""
        if self.amp_dtype is None:
            return "fp32"
        return "bf16" if self.amp_dtype == torch.bfloat16 else "fp16"

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def resume(self) -> bool:
        """Continues from run.out_dir's checkpoint when there is one."""
        if not self.checkpoint_path.exists():
            return False
        self.step = restore(self.checkpoint_path, self.state())
        return True

    def save(self, data_state: torch.Tensor | None = None) -> None:
        """A checkpoint of this step; `data_state`: the data generator's state to
        keep in place of its own (which the prefetch thread has moved on)."""
        state = self.state()
        if data_state is not None:
            state.generators["data"] = torch.Generator()
            state.generators["data"].set_state(data_state)
        save_checkpoint(self.checkpoint_path, state, self.step, to_toml(self.config))

    def export(self) -> Path:
        """The generator as ClipSwap.safetensors in run.out_dir, for the swap backend."""
        path = self.out_dir / "ClipSwap.safetensors"
        export_generator(self.generator, path, image_size=BACKEND_SIZE)
        return path

    # The step ----------------------------------------------------------------------

    def autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def learning_rate(self) -> float:
        o = self.config.optim
        return o.lr * o.decay_rate ** (self.step / o.decay_steps)

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One generator and one discriminator update; the losses, detached."""
        lr = self.learning_rate()
        for optimizer in (self.optim_g, self.optim_d):
            for group in optimizer.param_groups:
                group["lr"] = lr
        batch = batch.to(self.device)
        parts = self._generator_step(batch)
        parts.update(self._discriminator_step(batch.source, parts.pop("swapped")))
        parts["lr"] = torch.tensor(lr)
        return parts

    def generator_losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every generator loss whose weight is not 0 (with its graph), and Y."""
        c, blocks = self.config, self.config.identity.ifsr_blocks
        target, source, same = batch.target, batch.source, batch.same
        with torch.no_grad(), self.autocast():
            z_source = self.arcface(arcface_input(source))
            z_target, target_blocks = embed_with_blocks(self.arcface, arcface_input(target), blocks)
        with self.autocast():
            swapped = self.generator(target, z_source)
            z_swapped, swapped_blocks = embed_with_blocks(
                self.arcface, arcface_input(swapped), blocks
            )
            terms: dict[str, Callable[[], torch.Tensor]] = {
                "adversarial": lambda: losses.generator_adversarial(self.discriminator(swapped)),
                "reconstruction": lambda: losses.reconstruction(target, swapped, same),
                "identity": lambda: losses.identity(z_source, z_swapped),
                "cycle": lambda: losses.cycle(self.generator(swapped, z_target), target),
                "perceptual": lambda: self._perceptual(target, swapped, same),
                "ifsr": lambda: losses.ifsr(
                    target_blocks, swapped_blocks, c.identity.ifsr_margins, c.identity.ifsr_scale
                ),
                "clip": lambda: self._clip(source, target, swapped, ~same),
                "attribute": lambda: self._attribute(target, swapped),
            }
            parts = {
                name: term().float() for name, term in terms.items() if getattr(c.loss, name) != 0
            }
        return parts, swapped

    def _generator_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.discriminator.requires_grad_(False)  # D is a fixed critic in this half-step
        parts, swapped = self.generator_losses(batch)
        weights = self.config.loss
        total = sum(
            (getattr(weights, name) * part for name, part in parts.items()),
            torch.zeros((), device=self.device),
        )
        self.optim_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(total).backward()
        self.scaler_g.step(self.optim_g)
        self.scaler_g.update()
        self.discriminator.requires_grad_(True)
        result = {name: part.detach() for name, part in parts.items()}
        return {**result, "total": total.detach(), "swapped": swapped.detach()}

    def _perceptual(
        self, target: torch.Tensor, swapped: torch.Tensor, same: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.vgg(target)
        return losses.perceptual(
            target_features, self.vgg(swapped), same, self.config.perceptual.factor
        )

    def _clip(
        self, source: torch.Tensor, target: torch.Tensor, swapped: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        c, clip = self.config.clip, self.clip
        with torch.no_grad():
            source_embedding = clip.embed(clip.resize(source))
            target_embedding = clip.embed(clip.resize(target))
        views = random_views(
            (swapped + 1) / 2,
            c.views,
            clip.size,
            rotation=c.rotation,
            min_scale=c.min_scale,
            generator=self.views_rng,
        )
        embeddings = clip.embed(views.flatten(0, 1)).view(c.views, len(swapped), -1)
        return losses.clip_contrastive(
            embeddings.float(),
            source_embedding.float(),
            target_embedding.float(),
            c.temperature,
            valid,
        )

    def _attribute(self, target: torch.Tensor, swapped: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.attributes(target)
        a = self.config.attribute
        return losses.attribute(
            target_features, self.attributes(swapped), multi_level=a.multi_level, norm=a.norm
        )

    def _discriminator_step(
        self, source: torch.Tensor, swapped: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with self.autocast():
            fake_logits = self.discriminator(swapped)
        real = source.detach().requires_grad_(True)
        real_logits = self.discriminator(real)  # fp32: R1 differentiates through it
        adversarial = losses.discriminator_adversarial(real_logits, fake_logits.float())
        r1 = losses.r1_penalty(real_logits, real, self.config.loss.r1_gamma)
        self.optim_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(adversarial + r1).backward()
        self.scaler_d.step(self.optim_d)
        self.scaler_d.update()
        return {"discriminator": adversarial.detach(), "r1": r1.detach()}

    # The loop ----------------------------------------------------------------------

    def fit(self, on_step: Callable[[int, Metrics], None] | None = None) -> bool:
        """Trains until run.steps; checkpoints, logs and samples on the way.

        Returns False when stopped early by SIGINT/SIGTERM (after the current
        step, with a checkpoint saved), True when run.steps was reached.
        """
        assert self.sampler is not None, "prepare_data() first"
        r = self.config.run
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.toml").write_text(to_toml(self.config), encoding="utf-8")
        metrics_log = MetricsLog(self.out_dir, r.log, self.step)
        started, metrics = time.perf_counter(), {}
        pin = self.device.type == "cuda"
        with (
            metrics_log,
            _stop_requests() as stop,
            _autotuned_convolutions(self.device),
            Prefetcher(self.sampler, max(0, r.steps - self.step), pin=pin) as batches,
        ):
            while self.step < r.steps and not stop.is_set():
                batch = batches.next()
                parts = self.train_step(batch)
                self.step += 1
                if self.step % r.log_every == 0 or self.step == r.steps:
                    metrics = {
                        "step": float(self.step),
                        "seconds": time.perf_counter() - started,
                        **{key: float(value) for key, value in parts.items()},
                    }
                    metrics_log.write(metrics)
                if self.step % r.sample_every == 0:
                    self._write_samples(batch)
                if self.step % r.checkpoint_every == 0 or self.step == r.steps or stop.is_set():
                    self.save(batches.consumed_state)
                if on_step is not None:
                    on_step(self.step, metrics)
        if self.step >= r.steps:
            self.export()
        return not stop.is_set()

    def _write_samples(self, batch: Batch) -> None:
        """Rows of source | target | swap for the first four samples of `batch`."""
        shown = slice(0, 4)
        with torch.no_grad():
            target, source = (
                batch.target[shown].to(self.device),
                batch.source[shown].to(self.device),
            )
            z_source = self.arcface(arcface_input(source))
            swapped = self.generator(target, z_source)
        rows = torch.cat([source, target, swapped.float()], dim=3)  # side by side
        grid = torch.cat(list(rows), dim=1)  # rows stacked
        pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        folder = self.out_dir / "samples"
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / f"step_{self.step:07d}.png")

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.dataset.close()


@contextmanager
def _autotuned_convolutions(device: torch.device) -> Iterator[None]:
    """cuDNN times its convolution algorithms on each new input shape and keeps
    the fastest: a training run's shapes are fixed, so it times them once. The
    process's setting is restored after the run."""
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


@contextmanager
def _stop_requests() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event the loop checks between steps, so a stopped
    run saves a consistent checkpoint (not one taken half-way through a step)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["LOSSES", "METRICS", "MetricsLog", "Trainer", "native_bf16", "resolve_precision"]
