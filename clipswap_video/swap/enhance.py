"""Face restoration after the swap (`--enhancer`): GFPGAN, CodeFormer or
RestoreFormer, from the state dict a user has, run by spandrel's architectures on
the engine's batches of crops, on its device.

The three were trained on FFHQ-aligned 512 px faces in [-1, 1], RGB, and give
the same back (docs/models.md, section 7). `Enhanced` wraps the swap backend: the
stage cuts crops the restorer's way at its size; the wrapped backend swaps its
own crop taken from inside that one (every swap template is tighter than
FFHQ's), the swap goes back into the larger crop, the restorer runs on all of
it, and the restored face is blended over the swap (`enhance.blend`).
Compositing sees one more backend, with a larger crop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipswap_video.config_sections import EnhanceSettings, SwapSettings
from clipswap_video.errors import (
    ConfigValueError,
    CorruptWeightsError,
    MissingExtraError,
)
from clipswap_video.faces import (
    AlignmentName,
    alignment_template,
    estimate_similarity,
    invert_affine,
    warp_back,
    warp_crops,
)
from clipswap_video.swap.backend import CropBatch, SwapBackend, SwappedBatch
from clipswap_video.swap.device import autocast
from clipswap_video.weights import setting_or_found

ENHANCERS: dict[str, tuple[str, ...]] = {
    "gfpgan": ("gfpgan.v1_4", "gfpgan.v1_3"),
    "codeformer": ("codeformer.v0_1",),
    "restoreformer": ("restoreformer.official",),
}
"""`enhance.enhancer` -> its manifest entries, preferred first."""

Forward = Callable[[torch.nn.Module, torch.Tensor, float], torch.Tensor]

FORWARDS: dict[str, Forward] = {
    # The restored image is the first output; GFPGAN's others are side outputs. Its
    # StyleGAN2 decoder draws fresh noise on every call by default, different on
    # every frame; the noise stored in its weights is the same on every frame.
    "GFPGAN": lambda model, x, fidelity: model(x, return_rgb=False, randomize_noise=False)[0],
    "RestoreFormer": lambda model, x, fidelity: model(x)[0],
    "CodeFormer": lambda model, x, fidelity: model(x, weight=fidelity)[0],
}
"""spandrel's architecture id -> how its network is called on [-1, 1] crops."""

Restorer = Callable[[torch.Tensor], torch.Tensor]
"""(N, 3, S, S) 0..255 crops in, restored crops out: a FaceEnhancer, or a stand-in."""

SIZES: dict[str, Callable[[int], bool]] = {
    "GFPGAN": lambda size: size == 512,  # its StyleGAN2 decoder is built for 512
    "CodeFormer": lambda size: size % 512 == 0,
    "RestoreFormer": lambda size: size % 32 == 0,
}
SUFFIXES = (".pth", ".ckpt", ".pt", ".safetensors")
_CODEFORMER_KEYS = {"position_emb", "idx_pred_layer.1.weight"}  # what spandrel's extra detects


def find_enhancer(settings: EnhanceSettings, weights_dir: Path | None) -> Path:
    """The restorer's file: `enhance.model`, else the enhancer's in the weights folders.

    Raises:
        MissingWeightsError: neither is there.
    """
    names = ENHANCERS[settings.enhancer]
    need = f"the {settings.enhancer} enhancer"
    return setting_or_found(settings.model, "enhance.model", names, weights_dir, need)


class FaceEnhancer:
    """One restoration network on batches of 0..255 RGB crops."""

    def __init__(
        self,
        path: Path,
        device: torch.device,
        precision: str = "fp32",
        fidelity: float = 0.5,
        size: int = 512,
    ) -> None:
        self.model, self.architecture = _load(path, device)
        if not SIZES[self.architecture](size):
            raise ConfigValueError(
                f"enhance.size = {size} does not suit {path.name} ({self.architecture})"
            )
        self.forward = FORWARDS[self.architecture]
        self.device, self.precision, self.fidelity = device, precision, fidelity

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) 0..255 in, restored, 0..255 out (float, on the device)."""
        x = crops.to(self.device, torch.float32) / 127.5 - 1
        with torch.inference_mode(), autocast(self.precision, self.device):
            y = self.forward(self.model, x, self.fidelity)
        return (y.float().clamp(-1, 1) + 1) * 127.5  # the authors clip to [-1, 1]


class Enhanced:
    """A swap backend followed by a restorer, on crops aligned the restorer's way."""

    def __init__(self, inner: SwapBackend, enhancer: Restorer, size: int, blend: float) -> None:
        self.inner, self.enhancer, self.blend = inner, enhancer, blend
        self.name = inner.name
        self.crop_size = size
        self.alignment: AlignmentName = "ffhq"
        self.device = inner.device
        outer = alignment_template(size, "ffhq")
        own = alignment_template(inner.crop_size, inner.alignment)
        self.link = estimate_similarity(outer, own)  # this crop -> the inner backend's
        self.back = invert_affine(self.link)

    def prepare_source(self, identity: Any) -> None:
        self.inner.prepare_source(identity)

    def swap(self, batch: CropBatch) -> SwappedBatch:
        crops = batch.crops.float()
        links = np.repeat(self.link[None], len(crops), axis=0)
        swapped = self.inner.swap(CropBatch(warp_crops(crops, links, self.inner.crop_size)))
        size = (self.crop_size, self.crop_size)
        placed = warp_back(swapped.crops.float().to(crops.device), links, size)
        ones = torch.ones_like(swapped.crops[:, :1], dtype=torch.float32, device=crops.device)
        cover = warp_back(ones, links, size)  # where the inner crop reaches, soft at its edge
        merged = placed + crops * (1 - cover)
        restored = self.enhancer(merged).to(merged.device)
        landmarks = swapped.landmarks_68
        if landmarks is not None:  # the inner crop's points, in this crop
            landmarks = (landmarks @ self.back[:, :2].T + self.back[:, 2]).astype(np.float32)
        return SwappedBatch(torch.lerp(merged, restored, self.blend), landmarks_68=landmarks)


def with_enhancer(
    backend: SwapBackend,
    settings: EnhanceSettings,
    swap: SwapSettings,
    weights_dir: Path | None,
) -> SwapBackend:
    """`backend`, followed by the restorer `settings` ask for (none: as it is)."""
    if settings.enhancer == "none":
        return backend
    enhancer = FaceEnhancer(
        find_enhancer(settings, weights_dir),
        backend.device,
        swap.precision,
        settings.fidelity,
        settings.size,
    )
    return Enhanced(backend, enhancer, settings.size, settings.blend)


def _load(path: Path, device: torch.device) -> tuple[torch.nn.Module, str]:
    """The face restorer in `path` and its spandrel architecture id.

    Raises:
        CorruptWeightsError: unreadable, or not one of the restorers here.
    """
    descriptor = load_spandrel(path, "a GFPGAN, CodeFormer or RestoreFormer file")
    architecture = descriptor.architecture.id
    if architecture not in FORWARDS:
        raise CorruptWeightsError(
            f"{path} is a {architecture} model, not a face restorer this project runs "
            f"({', '.join(FORWARDS)})"
        )
    return descriptor.model.eval().to(device), architecture


def load_spandrel(path: Path, expected: str) -> Any:
    """spandrel's model descriptor of the state dict in `path`, the architecture
    detected from its keys (`expected` names what was wanted, for messages).

    A .pth/.ckpt/.pt is read with torch.load(weights_only=True): tensors and plain
    containers only, never code (spandrel's own loader would run a TorchScript .pt).

    Raises:
        CorruptWeightsError: unreadable, or no architecture spandrel knows.
        MissingExtraError: CodeFormer without the extra that has its architecture.
    """
    if path.suffix.lower() not in SUFFIXES:
        raise CorruptWeightsError(
            f"{path} is not a model file this project reads ({', '.join(SUFFIXES)})"
        )
    state = read_state_dict(path)
    from clipswap_video.models.torchvision_compat import ensure_torchvision

    ensure_torchvision()  # spandrel imports torchvision
    import spandrel

    has_extra = _install_extra_architectures(spandrel)
    canonical = spandrel.canonicalize_state_dict(state)
    try:
        return spandrel.ModelLoader().load_from_state_dict(canonical)
    except spandrel.UnsupportedModelError:
        if not has_extra and _CODEFORMER_KEYS <= set(canonical):
            raise MissingExtraError(
                f"{path} is CodeFormer, whose architecture (non-commercial licence) is the "
                "optional extra: pip install 'clipswap-video[codeformer]'"
            ) from None
        raise CorruptWeightsError(f"{path} is no model spandrel knows: not {expected}") from None
    except (KeyError, RuntimeError, ValueError, IndexError) as error:
        message = " ".join(str(error).split())[:160]
        raise CorruptWeightsError(f"{path} does not fit its architecture ({message})") from None


def read_state_dict(path: Path) -> dict[str, Any]:
    """The state dict in a .safetensors file, or in a .pth/.ckpt/.pt read with
    torch.load(weights_only=True): tensors and plain containers, never code.

    Raises:
        CorruptWeightsError: unreadable, or holding something other than a dict.
    """
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load and safetensors raise many kinds on bad bytes
        message = " ".join(str(error).split())[:160]
        raise CorruptWeightsError(f"{path} cannot be read ({message}); download it again") from None
    if not isinstance(state, dict):
        raise CorruptWeightsError(f"{path} holds no state dict")
    return state


def _install_extra_architectures(spandrel: Any) -> bool:
    """CodeFormer comes with spandrel_extra_arches (non-commercial licence), when
    installed; False when it is not."""
    try:
        import spandrel_extra_arches
    except ImportError:
        return False
    spandrel_extra_arches.install(ignore_duplicates=True)
    return True


__all__ = [
    "ENHANCERS",
    "Enhanced",
    "FaceEnhancer",
    "Restorer",
    "find_enhancer",
    "load_spandrel",
    "read_state_dict",
    "with_enhancer",
]
