"""Opening an input with PyAV, turning FFmpeg's failures into one clear error."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import av.container
from av.codec.hwaccel import HWAccel

from clipswap_video.errors import (
    ClipswapError,
    CorruptInputError,
    InputNotFoundError,
    UnreadableInputError,
)
from clipswap_video.media.tags import METADATA_ERRORS

log = logging.getLogger(__name__)

FILE_DATA_ERRORS = (av.FFmpegError, OSError, ValueError, ArithmeticError, LookupError)
"""What PyAV raises, beyond FFmpeg's own errors, on values a damaged file
supplies (a count that overflows, a format name it does not know, ...)."""

# Leading bytes of containers FFmpeg would recognise. A file that starts like
# one of these but does not open is damaged (typically truncated: an mp4 cut
# before its `moov` index), not merely "some other kind of file".
_CONTAINER_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MOV"),
    (4, b"mdat", "MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "AVI"),
    (0, b"OggS", "Ogg"),
    (0, b"FLV", "FLV"),
)


def open_input(
    path: Path, *, what: str = "input video", hwaccel: str = "none"
) -> av.container.InputContainer:
    """Opens `path` for demuxing, or raises a ClipswapError naming the file.
    `hwaccel` "cuda": its video decoded by NVDEC where it can be (frames still
    arrive in host memory), else by FFmpeg on the CPU."""
    if not path.exists():
        raise InputNotFoundError(f"{what} {path} does not exist")
    if path.is_dir():
        raise UnreadableInputError(f"{what} {path} is a folder, not a video file")
    accel = cuda_decoding() if hwaccel == "cuda" else None
    try:
        return av.open(str(path), mode="r", metadata_errors=METADATA_ERRORS, hwaccel=accel)
    except PermissionError:
        raise UnreadableInputError(f"{what} {path} cannot be read: permission denied") from None
    except FILE_DATA_ERRORS as error:
        kind = _sniff_container(path)
        if kind is not None:
            raise CorruptInputError(
                f"{what} {path} looks like {kind} but cannot be opened; it is truncated or "
                f"corrupt ({ffmpeg_reason(error)})"
            ) from None
        raise UnreadableInputError(
            f"{what} {path} is not a media file FFmpeg can read ({ffmpeg_reason(error)})"
        ) from None


@contextmanager
def reading(path: Path, doing: str, *, what: str = "input video") -> Iterator[None]:
    """Turns a failure while `doing` something with `path`'s contents into one
    UnreadableInputError line naming the file and the step."""
    try:
        yield
    except ClipswapError:
        raise
    except FILE_DATA_ERRORS as error:
        raise UnreadableInputError(
            f"{what} {path}: {doing} failed ({ffmpeg_reason(error)})"
        ) from None


def _sniff_container(path: Path) -> str | None:
    try:
        with open(path, "rb") as file:
            head = file.read(16)
    except OSError:
        return None
    for offset, magic, kind in _CONTAINER_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if len(head) >= 1 and head[0] == 0x47 and path.suffix.lower() in {".ts", ".m2ts", ".mts"}:
        return "MPEG-TS"
    return None


@functools.cache
def cuda_decoding() -> HWAccel | None:
    """NVDEC through FFmpeg's CUDA device, or None (said once a process) where
    no CUDA device opens: no NVIDIA GPU, driver or permission."""
    try:
        HWAccel("cuda").create(av.Codec("h264", "r"))
    except FILE_DATA_ERRORS as error:
        log.warning(
            "input.hwaccel = cuda: NVDEC cannot open here (%s); decoding on the CPU",
            ffmpeg_reason(error),
        )
        return None
    # Codecs NVDEC does not take (ProRes, FFV1, ...) fall back to the CPU's decoder.
    return HWAccel("cuda", allow_software_fallback=True)


def ffmpeg_reason(error: BaseException) -> str:
    """FFmpeg's own words, without PyAV's errno prefix."""
    return getattr(error, "strerror", None) or str(error)


__all__ = ["FILE_DATA_ERRORS", "cuda_decoding", "ffmpeg_reason", "open_input", "reading"]
