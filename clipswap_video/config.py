"""Typed settings: frozen dataclasses filled from TOML files and `--set key=value`.

Precedence, lowest first: the dataclass defaults (mirrored by
configs/default.toml, which a test keeps in sync), a mode's settings file
(`--mode paper`: configs/modes/paper.toml), a `--config FILE`, then
`--set section.key=value` overrides. Keys and values are checked before any
work starts: an unknown key or a bad value is one clear error line.

`Settings` gathers the sections, which live in clipswap_video.config_sections
with the `Literal` types of their values; this module assembles and loads them.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from clipswap_video._resources import configs_dir
from clipswap_video._toml_config import (
    Layer,
    build,
    leaf_keys,
    parse_override,
    read_toml,
    to_toml,
)
from clipswap_video.config_sections import (
    AudioSettings,
    BatchSettings,
    CompositeSettings,
    EnhanceSettings,
    FaceSettings,
    InputSettings,
    PipelineSettings,
    SequenceSettings,
    SwapSettings,
    TrackSettings,
    VideoSettings,
)


@dataclass(frozen=True)
class Settings:
    """Every setting of one run, passed down explicitly (no global state)."""

    video: VideoSettings = field(default_factory=VideoSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    input: InputSettings = field(default_factory=InputSettings)
    sequence: SequenceSettings = field(default_factory=SequenceSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    swap: SwapSettings = field(default_factory=SwapSettings)
    enhance: EnhanceSettings = field(default_factory=EnhanceSettings)
    composite: CompositeSettings = field(default_factory=CompositeSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    track: TrackSettings = field(default_factory=TrackSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)


ModeName = Literal["video", "paper"]
"""`--mode`: video is the defaults; every other mode is a settings file in configs/modes/."""


def mode_file(mode: ModeName) -> Path | None:
    """The settings file of `mode` (None for video, the defaults)."""
    return None if mode == "video" else configs_dir() / "modes" / f"{mode}.toml"


def load_settings(
    config_file: Path | None = None,
    overrides: typing.Sequence[str] = (),
    mode: ModeName = "video",
) -> Settings:
    """Builds the effective settings from a mode, an optional TOML file and
    `key=value` overrides.

    Raises:
        InputNotFoundError: `config_file` does not exist.
        UnknownConfigKeyError, ConfigValueError: a key or a value (see _toml_config).
    """
    layers: list[Layer] = []
    if (path := mode_file(mode)) is not None:
        layers.append((str(path), read_toml(path, f"--mode {mode} settings file")))
    if config_file is not None:
        layers.append((str(config_file), read_toml(config_file, "config file")))
    layers += [("--set", parse_override(override)) for override in overrides]
    return build(Settings, layers, what="config")


def valid_keys() -> list[str]:
    """All `section.key` names, for messages and the docs."""
    return leaf_keys(Settings)


__all__ = [
    "ModeName",
    "Settings",
    "load_settings",
    "to_toml",
    "valid_keys",
]
