"""The `clipswap` backend: the paper's generator and ArcFace-Res50, loaded from
their Keras files (or the converted .safetensors) by the h5py-only interpreter.

Pre- and post-processing as the reference states (section 1.1 and 2.2): the
source identity is ArcFace-Res50's raw 512-d output for the 112 px aligned crop
in RGB [0, 1] (several photos: the mean); the generator takes the 256 px
aligned target crop in [-1, 1] and returns a linear image, mapped by
(y + 1) / 2 and clipped only at the end. A generator whose identity input is
wider than 512 (reference Q1: the paper's figure draws ArcFace + CLIP) gets the
sources' CLIP image embedding (open_clip, `swap.clip_model`/`clip_weights`,
unit length) appended.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from clipswap_video.config_sections import SwapSettings
from clipswap_video.errors import ConfigValueError, MissingWeightsError
from clipswap_video.faces import AlignmentName, SourceIdentity, alignment_matrices
from clipswap_video.models import create_model
from clipswap_video.models.keras_h5 import KerasGraph
from clipswap_video.swap.backend import CropBatch, SwappedBatch
from clipswap_video.swap.choice import find_clipswap_weights, missing_weights_reason
from clipswap_video.swap.device import (
    autocast,
    check_precision,
    keep_freed_host_memory,
    resolve_device,
    use_ieee_fp32,
)
from clipswap_video.swap.engine import AUTO_BATCH_SIZE

if TYPE_CHECKING:  # open_clip is imported only for a generator that needs it
    from clipswap_video.models.clip import ClipImageEncoder


class ClipSwapBackend:
    """Generator on 256 crops in [-1, 1], identity from ArcFace-Res50."""

    name = "clipswap"
    crop_size = 256
    alignment: AlignmentName = "arcface"

    def __init__(
        self, weights_dir: Path | None = None, settings: SwapSettings | None = None
    ) -> None:
        settings = settings or SwapSettings()
        self.device = resolve_device(settings.device)
        self.precision = settings.precision
        check_precision(self.precision, self.device)
        if self.device.type == "cpu":
            keep_freed_host_memory()  # no page faults on every call's activations
        elif self.precision == "fp32":
            use_ieee_fp32()
        found = find_clipswap_weights(weights_dir)
        if found is None:
            raise MissingWeightsError(
                f"the clipswap swapper cannot load: {missing_weights_reason(weights_dir)}, "
                "or use --swapper classic"
            )
        self.generator: KerasGraph = create_model(found[0], device=self.device)
        self.identity_net: KerasGraph = create_model(found[1], device=self.device)
        self.clip = self._clip_encoder(found[0], settings)
        self.memory_format = torch.contiguous_format
        if settings.channels_last:
            self.memory_format = torch.channels_last
            self.generator = self.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._run_generator: Callable[..., object] = self.generator
        self._padded_batch = 0  # eager: every batch size as it comes
        if settings.compile:
            self._run_generator = torch.compile(self.generator, dynamic=False)
            # A compiled graph is specialised to its batch size and the engine's
            # batches vary (deadlines, faces per frame, the last one): padded to
            # multiples of one size, a job compiles once or twice, not per size.
            self._padded_batch = settings.batch_size or AUTO_BATCH_SIZE.get(self.device.type, 1)
        self.z: torch.Tensor | None = None

    def prepare_source(self, identity: SourceIdentity) -> None:
        """z = the mean raw ArcFace-Res50 output of the sources' 112 px crops,
        then, for a wider identity input, the mean CLIP embedding of their 256
        px aligned crops (the crops the generator was trained on)."""
        crops = _aligned(identity, 112)
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():  # in fp32: computed once, precision matters more here
            embeddings = self.identity_net(batch.to(self.device))
        assert isinstance(embeddings, torch.Tensor)
        # Raw, not normalised: the generator was trained on ArcFace's raw output.
        self.z = embeddings.mean(0, keepdim=True)
        if self.clip is not None:
            clip = self.clip.embed(_aligned(identity, 256)).to(self.device)
            self.z = torch.cat([self.z, clip.mean(0, keepdim=True)], dim=1)

    def swap(self, batch: CropBatch) -> SwappedBatch:
        assert self.z is not None, "prepare_source() first"
        count = len(batch.crops)
        target = _padded((batch.crops - 127.5) / 127.5, self._padded_batch)
        target = target.contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), autocast(self.precision, self.device):
            output = self._run_generator(target, self.z.expand(len(target), -1))
        assert isinstance(output, torch.Tensor)
        # (y + 1) / 2 in 0..255, unclipped
        return SwappedBatch((output[:count].float() + 1) * 127.5)

    def _clip_encoder(self, path: Path, settings: SwapSettings) -> ClipImageEncoder | None:
        """None for the released 512-d identity input (ArcFace only); for a wider
        one (reference Q1: ArcFace + CLIP), the CLIP model that fills the rest."""
        image, z = (self.generator.input_shapes.get(n) for n in self.generator.input_names[:2])
        if not image or image[1:3] != [256, 256] or not z:
            raise ConfigValueError(f"{path} is not a 256 px generator with an identity input")
        if z[-1] == 512:
            return None
        from clipswap_video.models.clip import ClipImageEncoder

        clip = ClipImageEncoder(settings.clip_model, settings.clip_weights or None, self.device)
        if 512 + clip.embedding_dim != z[-1]:
            raise ConfigValueError(
                f"{path} takes a {z[-1]}-d identity: ArcFace's 512 + a {z[-1] - 512}-d CLIP "
                f"embedding, but swap.clip_model {settings.clip_model!r} gives "
                f"{clip.embedding_dim}"
            )
        return clip


def _padded(crops: torch.Tensor, multiple: int) -> torch.Tensor:
    """`crops` with the last one repeated up to a multiple of `multiple` (0: as they are)."""
    missing = -len(crops) % multiple if multiple else 0
    if not missing:
        return crops
    return torch.cat([crops, crops[-1:].expand(missing, -1, -1, -1)])


def _aligned(identity: SourceIdentity, size: int) -> list[np.ndarray]:
    """The sources' faces aligned to the ArcFace template at `size` px (cv2, as the reference)."""
    return [
        cv2.warpAffine(image, alignment_matrices(face.landmarks_5, size)[0], (size, size))
        for image, face in zip(identity.images, identity.faces, strict=True)
    ]


__all__ = ["ClipSwapBackend"]
