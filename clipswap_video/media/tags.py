"""Values a file supplies, read without trusting them.

Tags are decoded as UTF-8, with bytes that are not UTF-8 kept as surrogate
escapes (`METADATA_ERRORS`, given to every `av.open`): written back with the
same setting they become the original bytes again, so a Latin-1 title from an
older muxer stays Latin-1 in the output. `printable` shows such text with
U+FFFD where it is not UTF-8. Each parser returns None for a value it cannot
read; none raises.
"""

from __future__ import annotations

import math
import re
from typing import Any

METADATA_ERRORS = "surrogateescape"

_STREAM_FACTS = ("DURATION", "NUMBER_OF_", "BPS", "_STATISTICS_", "ENCODER", "encoder")
_CLOCK = re.compile(r"\s*(\d{1,9}):([0-5]?\d):(\d{1,2}(?:\.\d*)?)\s*")


def printable(text: str) -> str:
    """`text` with the bytes that were not UTF-8 shown as U+FFFD."""
    return text.encode("utf-8", METADATA_ERRORS).decode("utf-8", "replace")


def printable_tree(value: Any) -> Any:
    """`value` (dicts, lists, tuples and strings, as a report holds them) with
    every string made printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(key): printable_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable_tree(item) for item in value]
    return value


def parse_clock(text: str | None) -> float | None:
    """Seconds of an "H:MM:SS.fraction" clock (Matroska's DURATION tag), or None."""
    match = _CLOCK.fullmatch(text or "")
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def matrix_entries(raw: bytes) -> tuple[int, ...] | None:
    """A display matrix's 9 little-endian int32, or None when `raw` is not one."""
    if len(raw) != 36:
        return None
    return tuple(int.from_bytes(raw[i : i + 4], "little", signed=True) for i in range(0, 36, 4))


def rotation_degrees(degrees: float | None) -> int:
    """A display rotation as a whole number of degrees in [0, 360), 0 when the
    file's matrix gives none (a degenerate matrix reads as NaN)."""
    if degrees is None or not math.isfinite(degrees):
        return 0
    return round(degrees) % 360


def stream_tags(metadata: dict[str, str]) -> dict[str, str]:
    """The tags to give a copy of a stream: its own, less those a muxer writes
    about the packets (Matroska's DURATION and statistics, the encoder), and
    with an MP4 track's name as `title` (FFmpeg reads it as `name` but writes
    it from `title`)."""
    tags = {key: value for key, value in metadata.items() if not key.startswith(_STREAM_FACTS)}
    if "name" in tags and "title" not in tags:
        tags["title"] = tags["name"]
    return tags


def count(value: int | None) -> int | None:
    """A count a header states (frames, for one): None unless positive."""
    return value if isinstance(value, int) and value > 0 else None


__all__ = [
    "METADATA_ERRORS",
    "count",
    "matrix_entries",
    "parse_clock",
    "printable",
    "printable_tree",
    "rotation_degrees",
    "stream_tags",
]
