"""Typed training settings: frozen dataclasses filled from a TOML file and
`--set section.key=value` overrides, checked before any work starts.

Kept apart from the swap `Settings` (clipswap_video.config): a training run is
its own job with its own file (configs/train/default.toml holds the paper's
weights, configs/train/tiny.toml the CI model). The effective config is saved
beside the checkpoints, so a resumed run can be compared with the one it continues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from clipswap_video._resources import configs_dir
from clipswap_video._toml_config import Layer, build, parse_override, read_toml, to_toml
from clipswap_video.errors import ConfigValueError, InputNotFoundError, MissingWeightsError
from clipswap_video.models.facedancer_spec import DEFAULT_UP_TYPES, GeneratorSpec

TrainPrecision = Literal["auto", "fp32", "fp16", "bf16"]
"""auto: fp16 autocast with loss scaling on CUDA, fp32 on the CPU."""
AttributeNorm = Literal["l1", "l2"]
MetricsLog = Literal["csv", "tensorboard"]

IFSR_BLOCKS = (
    "conv4_block6_out",
    "conv4_block5_out",
    "conv4_block4_out",
    "conv4_block3_out",
    "conv4_block2_out",
    "conv4_block1_out",
    "conv3_block4_out",
    "conv3_block3_out",
    "conv3_block2_out",
    "conv3_block1_out",
    "conv2_block3_out",
)
IFSR_MARGINS = (
    0.121357,
    0.128827,
    0.117972,
    0.109391,
    0.097296,
    0.089046,
    0.044928,
    0.048719,
    0.047487,
    0.047970,
    0.035144,
)
"""FaceDancer's IFSR blocks of the ArcFace backbone and their margins (reference 4.2)."""


@dataclass(frozen=True)
class ModelConfig:
    """[model]: generator and discriminator shapes (reference 1.4 and 4.1)."""

    image_size: int = field(default=256, metadata={"range": (32, 1024)})
    channels: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    mapping_depth: int = field(default=4, metadata={"range": (0, 16)})
    mapping_size: int = field(default=256, metadata={"range": (1, 4096)})
    up_types: tuple[str, ...] = DEFAULT_UP_TYPES
    discriminator_first: int = field(default=64, metadata={"range": (1, 4096)})
    discriminator_channels: tuple[int, ...] = (128, 256, 512, 512, 512, 512)

    def generator_spec(self) -> GeneratorSpec:
        return GeneratorSpec(
            image_size=self.image_size,
            channels=self.channels,
            mapping_depth=self.mapping_depth,
            mapping_size=self.mapping_size,
            up_types=self.up_types,
        )


@dataclass(frozen=True)
class DataConfig:
    """[data]: where the faces come from and how batches are drawn (reference 4.2)."""

    paths: tuple[str, ...] = ()
    """Image files, videos, or folders of them (searched recursively)."""
    cache_dir: str = ""
    """Where aligned crops are cached ("" = <out_dir>/face_cache)."""
    detector: str = "dlib"
    min_face_size: int = field(default=64, metadata={"range": (0, 100000)})
    """Smallest face kept, in source pixels."""
    frames_per_video: int = field(default=32, metadata={"range": (1, 100000)})
    """Frames sampled evenly from each video (decord)."""
    batch_size: int = field(default=10, metadata={"range": (1, 4096)})
    same_ratio: float = field(default=0.2, metadata={"range": (0.0, 1.0)})
    """Chance that a sample's source is its target (at least one per batch)."""
    brightness: float = field(default=0.3, metadata={"range": (0.0, 2.0)})
    contrast: tuple[float, ...] = (0.9, 1.1)
    saturation: tuple[float, ...] = (0.9, 1.1)
    workers: int = field(default=4, metadata={"range": (1, 64)})
    """Threads decoding cached crops."""


@dataclass(frozen=True)
class IdentityConfig:
    """[identity]: the frozen ArcFace (identity loss, IFSR, the generator's z)."""

    weights: str = "weights/ArcFace-Res50.h5"
    """ArcFace-Res50.h5 or its converted .safetensors; "" = random weights (tests only)."""
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    ifsr_blocks: tuple[str, ...] = IFSR_BLOCKS
    ifsr_margins: tuple[float, ...] = IFSR_MARGINS
    ifsr_scale: float = field(default=1.2, metadata={"range": (0.0, 100.0)})


@dataclass(frozen=True)
class PerceptualConfig:
    """[perceptual]: VGG16 feature layers fed [-1, 1] images (reference 4.2, Q6)."""

    weights: str = "weights/vgg16-397923af.pth"
    """torchvision-layout VGG16 state dict (.safetensors or .pth); "" = random (tests only)."""
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    factor: float = field(default=0.85, metadata={"range": (0.0, 10.0)})


@dataclass(frozen=True)
class ClipConfig:
    """[clip]: the frozen open_clip image tower of the contrastive loss (reference 4.3)."""

    model: str = "ViT-B-32"
    weights: str = "weights/open_clip_vit_b32.safetensors"
    """State dict of `model`; "" only with `model_config` (random weights, tests)."""
    model_config: dict[str, Any] = field(default_factory=dict)
    """An open_clip model config (embed_dim, vision_cfg, text_cfg) built without a file."""
    views: int = field(default=4, metadata={"range": (1, 64)})
    temperature: float = field(default=0.07, metadata={"range": (1e-4, 10.0)})
    rotation: float = field(default=15.0, metadata={"range": (0.0, 180.0)})
    """Largest rotation of an augmented view, degrees."""
    min_scale: float = field(default=0.8, metadata={"range": (0.1, 1.0)})
    """Smallest side of a view's crop, as a fraction of the image."""


@dataclass(frozen=True)
class AttributeConfig:
    """[attribute]: the frozen attribute encoder of the preservation loss (reference 4.3)."""

    weights: str = ""
    """AttrEncoder .h5 / converted .safetensors; "" = random weights."""
    first: int = field(default=64, metadata={"range": (1, 4096)})
    channels: tuple[int, ...] = (128, 256, 512, 512, 512)
    extra_blocks: int = field(default=2, metadata={"range": (0, 16)})
    multi_level: bool = False
    """Compare every block's output (ClipSwap++), not only the final feature."""
    norm: AttributeNorm = "l1"


@dataclass(frozen=True)
class LossConfig:
    """[loss]: weights of the generator's total loss, and the R1 penalty."""

    adversarial: float = 1.0
    reconstruction: float = 5.0
    identity: float = 10.0
    cycle: float = 1.0
    perceptual: float = 0.2
    ifsr: float = 1.0
    clip: float = 1.0
    attribute: float = 1.0
    r1_gamma: float = field(default=10.0, metadata={"range": (0.0, 1e6)})


@dataclass(frozen=True)
class OptimConfig:
    """[optim]: Adam and the continuous exponential learning-rate decay."""

    lr: float = field(default=1e-4, metadata={"range": (0.0, 1.0)})
    beta1: float = field(default=0.0, metadata={"range": (0.0, 1.0)})
    beta2: float = field(default=0.99, metadata={"range": (0.0, 1.0)})
    eps: float = field(default=1e-7, metadata={"range": (0.0, 1.0)})
    decay_rate: float = field(default=0.97, metadata={"range": (0.0, 1.0)})
    decay_steps: int = field(default=100000, metadata={"range": (1, 10**9)})


@dataclass(frozen=True)
class RunConfig:
    """[run]: length, device, outputs."""

    steps: int = field(default=500000, metadata={"range": (0, 10**9)})
    out_dir: str = "runs/clipswap"
    device: str = "auto"
    precision: TrainPrecision = "auto"
    seed: int = 0
    checkpoint_every: int = field(default=5000, metadata={"range": (1, 10**9)})
    sample_every: int = field(default=1000, metadata={"range": (1, 10**9)})
    log_every: int = field(default=100, metadata={"range": (1, 10**9)})
    log: MetricsLog = "csv"


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    attribute: AttributeConfig = field(default_factory=AttributeConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


def config_path(name: str | Path) -> Path:
    """A config file, or the name of one in configs/train/ ("tiny", "default").

    Raises:
        InputNotFoundError: neither.
    """
    path = Path(name)
    if path.suffix != ".toml" and not path.exists():
        packaged = configs_dir() / "train" / f"{name}.toml"
        if packaged.exists():
            return packaged
    if not path.is_file():
        known = sorted(p.stem for p in (configs_dir() / "train").glob("*.toml"))
        raise InputNotFoundError(
            f"training config {name} does not exist (a .toml file, or one of: {', '.join(known)})"
        )
    return path


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """The defaults, then the TOML file, then `section.key=value` overrides."""
    source = config_path(path)
    layers: list[Layer] = [(str(source), read_toml(source, "training config"))]
    layers += [("--set", parse_override(override)) for override in overrides]
    config = build(TrainConfig, layers, what="training config")
    _check(config)
    return config


def _check(config: TrainConfig) -> None:
    """The rules that tie several keys together."""
    identity = config.identity
    if len(identity.ifsr_blocks) != len(identity.ifsr_margins):
        raise ConfigValueError(
            f"identity.ifsr_blocks has {len(identity.ifsr_blocks)} entries but "
            f"identity.ifsr_margins {len(identity.ifsr_margins)}; give one margin per block"
        )
    for key in ("contrast", "saturation"):
        low_high = getattr(config.data, key)
        if len(low_high) != 2 or not 0 <= low_high[0] <= low_high[1]:
            raise ConfigValueError(f"data.{key} must be [low, high] with 0 <= low <= high")
    if len(config.perceptual.widths) != 5:
        raise ConfigValueError("perceptual.widths takes VGG16's 5 block widths")
    side = config.model.image_size
    if side % 32:
        raise ConfigValueError(f"model.image_size = {side} must be a multiple of 32")
    if not config.clip.weights and not config.clip.model_config:
        raise MissingWeightsError(
            f"clip.weights is empty: give a checkpoint file of open_clip {config.clip.model!r}"
            " (or clip.model_config for a random test model)"
        )


__all__ = [
    "IFSR_BLOCKS",
    "IFSR_MARGINS",
    "AttributeConfig",
    "ClipConfig",
    "DataConfig",
    "IdentityConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "PerceptualConfig",
    "RunConfig",
    "TrainConfig",
    "config_path",
    "load_train_config",
    "to_toml",
]
