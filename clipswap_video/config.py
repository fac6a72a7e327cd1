"""Typed settings: frozen dataclasses filled from TOML files and `--set key=value`.

Precedence, lowest first: the dataclass defaults (mirrored by
configs/default.toml, which a test keeps in sync), a `--config FILE`, then
`--set section.key=value` overrides. Keys and values are checked before any
work starts: an unknown key or a bad value is one clear error line.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from clipswap_video.errors import ConfigValueError, UnknownConfigKeyError

SwapBackendName = Literal["clipswap", "classic"]
"""The swap backends (clipswap_video.swap.backends)."""
SwapperName = Literal["auto", SwapBackendName, "none"]
"""`swap.swapper`: a backend, auto (clipswap when its weights are found, else
classic) or none (passthrough)."""
BlendName = Literal["multiband", "alpha"]
PrecisionName = Literal["fp32", "fp16", "bf16"]
MaskName = Literal["landmarks", "paper"]


@dataclass(frozen=True)
class VideoSettings:
    """[video]: the encoder of the output video stream."""

    codec: str = "libx264"
    crf: int = field(default=18, metadata={"range": (0, 63)})
    preset: str = "medium"
    pix_fmt: str = "auto"
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InputSettings:
    """[input]: how the input video is read."""

    tolerate_errors: bool = False


@dataclass(frozen=True)
class PipelineSettings:
    """[pipeline]: the streaming stages."""

    queue_size: int = field(default=8, metadata={"range": (1, 1024)})


@dataclass(frozen=True)
class SwapSettings:
    """[swap]: which backend replaces the faces."""

    swapper: SwapperName = "auto"
    device: str = "auto"
    """Where neural swappers run: auto (CUDA when torch has it), cpu, cuda[:N]."""
    precision: PrecisionName = "fp32"
    """fp32, or fp16 / bf16 autocast (fp16 needs CUDA; bf16 also runs on CPUs)."""
    batch_size: int = field(default=0, metadata={"range": (0, 512)})
    """Aligned face crops per generator call, gathered across consecutive frames;
    0 = auto: 1 on the CPU (larger batches are slower there), 16 on CUDA."""
    batch_wait_ms: int = field(default=200, metadata={"range": (0, 60000)})
    """A partial batch runs once its oldest crop has waited this long (latency bound)."""
    compile: bool = False
    """torch.compile the generator (pays off on GPUs after a warm-up)."""
    channels_last: bool = False
    """Run the generator in channels-last memory layout (faster convolutions on some GPUs)."""
    clip_model: str = "ViT-B-32"
    """open_clip model appended to ArcFace when a generator takes a wider identity (Q1)."""
    clip_weights: str = ""
    """That CLIP model's weights: a file path, or an open_clip pretrained tag."""


@dataclass(frozen=True)
class CompositeSettings:
    """[composite]: how a swapped face is blended into the frame."""

    mask_erode: int = field(default=6, metadata={"range": (0, 64)})
    """Pixels (in the 256 px aligned crop) the landmark hull is shrunk by."""
    mask_feather: int = field(default=12, metadata={"range": (0, 64)})
    """Width of the soft mask edge, pixels in the 256 px crop."""
    mask: MaskName = "landmarks"
    """landmarks: the target's landmark hull; paper: ClipSwap's fixed blend mask
    (rows 77-239, columns 32-223 of the 256 crop, Gaussian sigma 7)."""
    blend: BlendName = "multiband"
    """multiband: Laplacian-pyramid blend (seamless); alpha: feathered mask only."""
    colour_transfer: bool = True
    """Match the swapped face's LAB colour statistics to the target skin inside the mask."""
    temporal_smoothing: float = field(default=0.5, metadata={"range": (0.0, 0.95)})
    """Weight of the previous frame in each track's mask and colour statistics (0 = off)."""


DetectorName = Literal["dlib", "insightface", "retinaface"]
"""Face detector backends (clipswap_video.faces.backends)."""


@dataclass(frozen=True)
class FaceSettings:
    """[faces]: detection, landmarks, identity and which faces are swapped."""

    detector: DetectorName = "dlib"
    detect_size: int = field(default=960, metadata={"range": (0, 16384)})
    """Longest side the frame is downscaled to for detection (0 = full size)."""
    detect_every: int = field(default=5, metadata={"range": (1, 1000)})
    """Full detection every k frames; landmarks are refreshed in between."""
    min_score: float = field(default=0.5, metadata={"range": (0.0, 1.0)})
    """insightface, retinaface: lowest detection probability kept."""
    hog_threshold: float = field(default=0.0, metadata={"range": (-2.0, 5.0)})
    """dlib: lowest HOG margin kept (raise to drop false detections)."""
    hog_upsample: int = field(default=0, metadata={"range": (0, 3)})
    """dlib: times the detection image is doubled to find small faces (slow)."""
    min_size: int = field(default=24, metadata={"range": (0, 100000)})
    """Smallest face kept, in frame pixels (side of the box)."""
    select: str = "all"
    """Faces to swap: all, largest, or reference:IMG[,IMG] (the matching person)."""
    match_distance: float = field(default=0.0, metadata={"range": (0.0, 2.0)})
    """Cosine distance under which two faces are one person (0 = the backend's own)."""
    source_face: int = field(default=0, metadata={"range": (0, 1000)})
    """Face of a source image with several faces: 0 = the largest, N = Nth from the left."""
    device: str = "auto"
    """Where ONNX detectors run: auto (CUDA when onnxruntime has it), cpu, cuda[:N]."""


@dataclass(frozen=True)
class TrackSettings:
    """[track]: how detections become face tracks with stable ids."""

    iou_threshold: float = field(default=0.3, metadata={"range": (0.0, 1.0)})
    """Lowest box overlap that continues a track."""
    max_misses: int = field(default=30, metadata={"range": (0, 100000)})
    """Frames a track lives on without a detection (occlusion) before it ends."""
    min_hits: int = field(default=1, metadata={"range": (1, 100)})
    """Detections before a new track is reported (raise to drop one-off false faces)."""
    smooth: bool = True
    """Kalman-smooth the landmarks of each track."""
    process_noise: float = field(default=0.004, metadata={"range": (0.0, 10.0)})
    """Kalman: std of the per-frame acceleration, as a fraction of the face size."""
    measurement_noise: float = field(default=0.02, metadata={"range": (1e-6, 10.0)})
    """Kalman: std of a measured landmark, as a fraction of the face size."""


@dataclass(frozen=True)
class Settings:
    """Every setting of one run, passed down explicitly (no global state)."""

    video: VideoSettings = field(default_factory=VideoSettings)
    input: InputSettings = field(default_factory=InputSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    swap: SwapSettings = field(default_factory=SwapSettings)
    composite: CompositeSettings = field(default_factory=CompositeSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    track: TrackSettings = field(default_factory=TrackSettings)


def load_settings(
    config_file: Path | None = None, overrides: typing.Sequence[str] = ()
) -> Settings:
    """Builds the effective settings from an optional TOML file and `key=value` overrides."""
    values = _as_nested_dict(Settings())
    if config_file is not None:
        _merge(values, _read_toml(config_file), origin=str(config_file))
    for override in overrides:
        key, value = parse_override(override)
        _merge(values, _nest(key, value), origin="--set")
    return _build(Settings, values, prefix="")


def valid_keys() -> list[str]:
    """All `section.key` names, for messages and the docs."""
    return [
        f"{section.name}.{key.name}"
        for section in dataclasses.fields(Settings)
        for key in dataclasses.fields(_field_type(Settings, section.name))
    ]


def to_toml(settings: Settings) -> str:
    """The effective settings as TOML, one [section] per group."""
    lines: list[str] = []
    for section, values in _as_nested_dict(settings).items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigValueError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigValueError(f"config file {path} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigValueError(f"config file {path} is not valid TOML: {error}") from None


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigValueError(f"--set expects section.key=value, got {text!r}")
    try:  # TOML syntax first (numbers, booleans, quoted strings, inline tables)
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as `--set video.codec=libx265`
    return key.strip(), value


def _nest(dotted_key: str, value: Any) -> dict[str, Any]:
    section, _, key = dotted_key.partition(".")
    if not key:
        _raise_unknown(dotted_key)
    return {section: {key: value}}


def _merge(values: dict[str, Any], update: dict[str, Any], *, origin: str) -> None:
    for section, entries in update.items():
        if section not in values:
            first_key = next(iter(entries), "") if isinstance(entries, dict) else ""
            _raise_unknown(f"{section}.{first_key}" if first_key else section, origin)
        if not isinstance(entries, dict):
            raise ConfigValueError(f"{origin}: [{section}] must be a table of settings")
        for key, value in entries.items():
            if key not in values[section]:
                _raise_unknown(f"{section}.{key}", origin)
            values[section][key] = value


def _raise_unknown(key: str, origin: str = "") -> typing.NoReturn:
    close = difflib.get_close_matches(key, valid_keys() + list(_as_nested_dict(Settings())), n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; valid keys: {', '.join(valid_keys())}"
    where = f"{origin}: " if origin else ""
    raise UnknownConfigKeyError(f"{where}unknown config key '{key}'{hint}")


def _build(cls: type, values: dict[str, Any], *, prefix: str) -> Any:
    kwargs = {}
    for spec in dataclasses.fields(cls):
        name = f"{prefix}{spec.name}"
        hint = _field_type(cls, spec.name)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[spec.name] = _build(hint, values[spec.name], prefix=f"{name}.")
        else:
            kwargs[spec.name] = coerce_value(values[spec.name], hint, name, spec.metadata)
    return cls(**kwargs)


def coerce_value(value: Any, hint: Any, name: str, metadata: typing.Mapping[str, Any]) -> Any:
    """A TOML value checked against a setting's type (Literal choices, tuples,
    tables, numbers with an optional `range` in the field's metadata)."""
    origin = get_origin(hint)
    if origin is Literal:
        if value not in get_args(hint):
            choices = ", ".join(map(str, get_args(hint)))
            raise ConfigValueError(f"{name} = {value!r} is not one of: {choices}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigValueError(f"{name} must be a list, e.g. {name} = [...]")
        return tuple(coerce_value(entry, get_args(hint)[0], name, {}) for entry in value)
    if origin is dict:
        if get_args(hint)[1] is not str:  # a free-form table
            if not isinstance(value, dict):
                raise ConfigValueError(f"{name} must be a table")
            return value
        if not isinstance(value, dict):
            raise ConfigValueError(f'{name} must be a table, e.g. {name} = {{tune = "film"}}')
        return {str(k): _toml_scalar_str(v) for k, v in value.items()}
    if not _fits(value, hint):
        raise ConfigValueError(f"{name} = {value!r} is not a valid {hint.__name__}")
    low, high = metadata.get("range", (None, None))
    if low is not None and not low <= value <= high:
        raise ConfigValueError(f"{name} = {value!r} is out of range [{low}, {high}]")
    return float(value) if hint is float else value


def _fits(value: Any, hint: Any) -> bool:
    """Whether a TOML value suits a setting's type (an int is a float, a bool is no int)."""
    if isinstance(value, bool):  # bool is an int subclass; keep them apart
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint)


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _as_nested_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        section.name: dict(dataclasses.asdict(getattr(settings, section.name)))
        for section in dataclasses.fields(settings)
    }


def _toml_scalar_str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def toml_value(value: Any) -> str:
    """One value in TOML syntax."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


__all__ = [
    "BlendName",
    "MaskName",
    "PrecisionName",
    "CompositeSettings",
    "DetectorName",
    "FaceSettings",
    "TrackSettings",
    "InputSettings",
    "PipelineSettings",
    "Settings",
    "SwapSettings",
    "SwapBackendName",
    "SwapperName",
    "VideoSettings",
    "coerce_value",
    "load_settings",
    "parse_override",
    "to_toml",
    "toml_value",
    "valid_keys",
]
