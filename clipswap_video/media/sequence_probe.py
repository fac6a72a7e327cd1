"""An image sequence described as a video: `MediaInfo` for the rest of the program.

The sequence is one video stream. Its clock is the frame numbers: time base
1/fps, pts = file number - first file number, so a gap in the numbering keeps
its time (the frame before the gap lasts longer; `sequence.fill_gaps` repeats
it instead, one frame per missing number). The rate is `sequence.fps`, else an
EXR's framesPerSecond attribute, else 24. Geometry, pixel format and colour
tags are the first image's; every other image must have its size
(media/sequence_reader.py checks each as it is read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from clipswap_video.config_sections import SequenceSettings
from clipswap_video.errors import ConfigValueError, CorruptInputError
from clipswap_video.media.info import MediaInfo, StreamInfo, VideoInfo
from clipswap_video.media.sequence import ImageSequence, scan_sequence
from clipswap_video.media.stills import Still, StillError, read_still

DEFAULT_FPS = Fraction(24)
"""The rate of a sequence that states none (film's; `--fps` gives another)."""

_NTSC = Fraction(1000, 1001)  # 23.976 is 24 * 1000/1001


@dataclass(frozen=True)
class SequenceProbe:
    """What probing found: the files, the first image, the rate and where it came from."""

    sequence: ImageSequence
    first: Still
    fps: Fraction
    fps_from: str  # "--fps", "its framesPerSecond attribute" or "the default"
    info: MediaInfo


def parse_rate(value: float | str) -> Fraction | None:
    """`sequence.fps` as a Fraction; None for auto. 23.976, 29.97 and 59.94 (as
    typed, to three decimals or fewer) are the NTSC rates 24000/1001 ...

    Raises:
        ConfigValueError: not a positive number or ratio up to 1000.
    """
    if value == "auto":
        return None
    try:
        rate = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        rate = Fraction(-1)
    if not 0 < rate <= 1000:
        raise ConfigValueError(
            f"sequence.fps = {value!r} is not a frame rate; give a number (25, 23.976), "
            "a ratio (24000/1001) or auto"
        )
    whole = round(rate / _NTSC)
    is_ntsc = rate.denominator != 1 and abs(rate - whole * _NTSC) < Fraction(1, 1000)
    return whole * _NTSC if is_ntsc and re.fullmatch(r"\d+\.\d{1,3}", str(value)) else rate


def probe_sequence(path: Path, settings: SequenceSettings) -> MediaInfo:
    """Describes the image sequence `path` names (media/sequence.py) as a video."""
    return probe_sequence_files(path, settings).info


def probe_sequence_files(path: Path, settings: SequenceSettings) -> SequenceProbe:
    """`probe_sequence`, with the files and facts a reader needs.

    Raises:
        InputNotFoundError, UnreadableInputError: see scan_sequence.
        CorruptInputError: the first image cannot be decoded.
        ConfigValueError: a bad `settings.fps`.
    """
    wanted = parse_rate(settings.fps)
    sequence = scan_sequence(path)
    first = read_first(sequence)
    fps, fps_from = _rate(wanted, first)
    frames = sequence.last - sequence.first + 1  # the numbers it spans, gaps included
    gaps = len(sequence.files) != frames
    video = VideoInfo(
        index=0,
        codec=first.codec,
        width=first.picture.width,
        height=first.picture.height,
        pix_fmt=first.picture.format.name,
        bit_depth=max(component.bits for component in first.picture.format.components),
        time_base=1 / fps,
        first_pts=0,
        average_rate=fps,
        duration_s=float(frames / fps),
        frame_count=frames if settings.fill_gaps else len(sequence.files),
        variable_frame_rate=gaps and not settings.fill_gaps,
        rotation=0,
        display_matrix=None,
        sample_aspect_ratio=first.sample_aspect_ratio,
        color_range=first.picture.color_range,
        colorspace=first.picture.colorspace,
        color_primaries=first.picture.color_primaries,
        color_trc=first.picture.color_trc,
    )
    info = MediaInfo(
        path=path,
        format_name=f"image sequence ({sequence.kind})",
        duration_s=video.duration_s,
        bit_rate=None,
        metadata={},
        streams=(StreamInfo(0, "video", first.codec, None, None),),
        video=video,
        first_number=sequence.first,
    )
    return SequenceProbe(sequence, first, fps, fps_from, info)


def read_first(sequence: ImageSequence) -> Still:
    """The sequence's first image, which every other must match.

    Raises:
        CorruptInputError: it cannot be decoded.
    """
    file = sequence.files[0][1]
    try:
        return read_still(file)
    except StillError as error:
        raise CorruptInputError(
            f"input sequence {sequence.pattern}: its first image {file.name} cannot be "
            f"read: {error}"
        ) from None


def _rate(wanted: Fraction | None, first: Still) -> tuple[Fraction, str]:
    if wanted is not None:
        return wanted, "--fps"
    if first.frames_per_second is not None:
        return first.frames_per_second, "its framesPerSecond attribute"
    return DEFAULT_FPS, "the default; --fps sets another"


__all__ = [
    "DEFAULT_FPS",
    "SequenceProbe",
    "parse_rate",
    "probe_sequence",
    "probe_sequence_files",
    "read_first",
]
