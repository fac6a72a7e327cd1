"""The frozen networks the training losses look through: ArcFace (identity,
IFSR), VGG16's feature layers (perceptual), open_clip's image tower
(contrastive) and ClipSwap's attribute encoder. All in eval mode with
`requires_grad` off; gradients still flow through them into the generator.

Each is built from a weights file named in the training config; an empty name
gives random weights, which only the tiny test configuration uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.models.arcface import ArcFaceResNet50
from clipswap_video.models.attribute_encoder import AttributeEncoder
from clipswap_video.models.clip import load_clip_model
from clipswap_video.models.factory import create_model
from clipswap_video.train.config import AttributeConfig, ClipConfig, IdentityConfig

ARCFACE_SIZE = 112
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
"""open_clip's default image normalisation (open_clip.constants)."""

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def frozen(module: ModuleT) -> ModuleT:
    """Eval mode (BN statistics fixed, no dropout), no parameter gradients."""
    return module.eval().requires_grad_(False)


def weights_file(name: str, what: str, key: str) -> Path:
    path = Path(name).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"{what} weights {path} do not exist (training config {key})")
    return path


# ArcFace ---------------------------------------------------------------------------


def build_arcface(config: IdentityConfig) -> ArcFaceResNet50:
    """ArcFace-Res50 from its Keras file (shape read from the graph), or random."""
    if not config.weights:
        return frozen(ArcFaceResNet50(blocks=config.blocks, widths=config.widths))
    module = create_model(
        weights_file(config.weights, "ArcFace", "identity.weights"), impl="modules"
    )
    if not isinstance(module, ArcFaceResNet50):
        raise ConfigValueError(f"identity.weights {config.weights} is not an ArcFace model")
    return frozen(module)


def arcface_input(images: torch.Tensor) -> torch.Tensor:
    """(x + 1) / 2 resized to 112 bilinearly without antialiasing, as TF's
    `resize` in FaceDancer's training step (reference 2.2)."""
    return F.interpolate(
        (images + 1) / 2,
        size=(ARCFACE_SIZE, ARCFACE_SIZE),
        mode="bilinear",
        align_corners=False,
        antialias=False,
    )


def embed_with_blocks(
    arcface: ArcFaceResNet50, faces: torch.Tensor, names: Sequence[str]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """ArcFace's vector of `faces` and, from the same pass, the backbone's
    `convS_blockB_out` tensors named by `names` (IFSR's features), in that order."""
    blocks = arcface.backbone.blocks
    unknown = [name for name in names if name.removesuffix("_out") not in blocks]
    if unknown:
        raise ConfigValueError(
            f"identity.ifsr_blocks {unknown} are not blocks of this ArcFace backbone "
            f"(it has {', '.join(f'{key}_out' for key in blocks)})"
        )
    found: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        return lambda _module, _inputs, output: found.__setitem__(name, output)

    handles = [
        blocks[name.removesuffix("_out")].register_forward_hook(keep(name)) for name in names
    ]
    try:
        z = arcface(faces)
    finally:
        for handle in handles:
            handle.remove()
    return z, [found[name] for name in names]


# VGG16 -----------------------------------------------------------------------------

VGG_CONVS = (2, 2, 3, 3, 3)
"""Convolutions per VGG16 block."""


class Vgg16Features(nn.Sequential):
    """VGG16's convolutional part in torchvision's `vgg16().features` layout (same
    indices, so its state dict loads), any widths; returns block1_pool..block5_pool.
    Fed [-1, 1] images without VGG preprocessing, as FaceDancer does (reference 4.2)."""

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512, 512)) -> None:
        layers: list[nn.Module] = []
        cin = 3
        for width, convs in zip(widths, VGG_CONVS, strict=True):
            for _ in range(convs):
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
                cin = width
            layers.append(nn.MaxPool2d(2, 2))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        pools = []
        for layer in self:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                pools.append(x)
        return pools


def build_vgg(weights: str, widths: Sequence[int]) -> Vgg16Features:
    """VGG16 features from a torchvision-layout state dict (`features.N.weight`
    keys; others ignored), or random weights when `weights` is empty."""
    module = Vgg16Features(widths)
    if weights:
        path = weights_file(weights, "VGG16", "perceptual.weights")
        state = {
            key.removeprefix("features."): value
            for key, value in _tensors(path).items()
            if not key.startswith("classifier.")
        }
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            reason = str(error).splitlines()[0]
            raise CorruptWeightsError(f"{path} is not a VGG16 state dict ({reason})") from None
    return frozen(module)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as error:
        raise CorruptWeightsError(f"{path} cannot be loaded ({error})") from None
    if not isinstance(state, dict):
        raise CorruptWeightsError(f"{path} holds no state dict")
    return state


# CLIP ------------------------------------------------------------------------------


@dataclass
class ClipTower:
    """open_clip's image tower (frozen) and the input it expects."""

    visual: nn.Module
    size: int
    mean: torch.Tensor
    std: torch.Tensor

    def to(self, device: torch.device) -> ClipTower:
        return ClipTower(
            self.visual.to(device), self.size, self.mean.to(device), self.std.to(device)
        )

    def embed(self, images01: torch.Tensor) -> torch.Tensor:
        """(N, D) projections of (N, 3, size, size) RGB images in [0, 1]."""
        return self.visual((images01 - self.mean) / self.std)

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images to the tower's size, in [0, 1]."""
        return F.interpolate(
            (images + 1) / 2,
            size=(self.size, self.size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )


def build_clip(config: ClipConfig) -> ClipTower:
    """The image tower of open_clip `config.model` with `config.weights` (a file
    or a cached pretrained tag, loaded as the swap backend's CLIP is), or of the
    inline `config.model_config`; never downloads."""
    if not config.model_config:
        model, _ = load_clip_model(
            config.model, config.weights, keys=("clip.model", "clip.weights")
        )
    else:  # a test model built from its config: random, or this config's weights file
        from clipswap_video.models.torchvision_compat import ensure_torchvision

        ensure_torchvision()  # open_clip imports torchvision
        import open_clip

        try:
            model = open_clip.CLIP(**config.model_config)
        except (TypeError, KeyError, ValueError) as error:
            raise ConfigValueError(
                f"clip.model_config is not an open_clip config: {error}"
            ) from None
        if config.weights:
            path = weights_file(config.weights, "CLIP", "clip.weights")
            try:
                model.load_state_dict(_tensors(path), strict=True)
            except RuntimeError as error:
                reason = str(error).splitlines()[0]
                raise CorruptWeightsError(
                    f"{path} is not this clip.model_config ({reason})"
                ) from None
    visual = frozen(model.visual)
    preprocess: dict[str, Any] = getattr(visual, "preprocess_cfg", None) or {}
    size = visual.image_size
    size = int(size[0] if isinstance(size, tuple | list) else size)
    mean = torch.tensor(preprocess.get("mean", OPENAI_MEAN)).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.get("std", OPENAI_STD)).view(1, 3, 1, 1)
    return ClipTower(visual, size, mean, std)


def random_views(
    images: torch.Tensor,
    count: int,
    size: int,
    *,
    rotation: float,
    min_scale: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """(count, N, 3, size, size) differentiable views of `images`: each a random
    rotation, crop (scale, position) and horizontal flip, sampled in one step.

    The affine maps and the sampling grid are fp32 whatever `images` are: built in
    fp16 (the swap's dtype under autocast) they moved sample points by up to
    0.14 px at 224 px; the views come out in the images' dtype."""
    n = count * len(images)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-rotation, rotation) * math.pi / 180
    scale = uniform(min_scale, 1.0)
    shift_x, shift_y = (uniform(-1, 1) * (1 - scale) for _ in range(2))
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift_x], 1), torch.stack([sin * flip, cos, shift_y], 1)], 1
    )
    # From pageable memory without a wait: the host copies it before the call returns.
    theta = theta.to(images.device, non_blocking=True)
    repeated = images.repeat(count, 1, 1, 1).float()
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
    views = F.grid_sample(
        repeated, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return views.to(images.dtype).view(count, len(images), 3, size, size)


# Attribute encoder -----------------------------------------------------------------


def build_attribute_encoder(config: AttributeConfig, image_size: int) -> AttributeEncoder:
    """ClipSwap's AttrEncoder from its Keras file, or random: the released code
    has no trained encoder, and whether the paper trained one is not stated (Q5)."""
    if not config.weights:
        return frozen(
            AttributeEncoder(
                image_size=image_size,
                first=config.first,
                channels=config.channels,
                extra_blocks=config.extra_blocks,
            )
        )
    path = weights_file(config.weights, "attribute encoder", "attribute.weights")
    module = create_model(path, impl="modules")
    if not isinstance(module, AttributeEncoder):
        raise ConfigValueError(f"attribute.weights {config.weights} is not an attribute encoder")
    return frozen(module)


__all__ = [
    "ARCFACE_SIZE",
    "ClipTower",
    "Vgg16Features",
    "arcface_input",
    "build_arcface",
    "build_attribute_encoder",
    "build_clip",
    "build_vgg",
    "embed_with_blocks",
    "frozen",
    "random_views",
    "weights_file",
]
