"""Choosing how the output video is encoded: codec, pixel format, quality options.

The rules keep what the input had wherever the encoder allows it: the same
chroma layout and bit depth ("10-bit in gives 10-bit out"), the exact frame
size (odd sizes cannot be coded as 4:2:0 at all, so they move to 4:4:4), and
one quality knob (`crf`) translated to each encoder family's own option.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import cast

import av
from av.video.codeccontext import VideoCodecContext

from clipswap_video.config_sections import VideoSettings
from clipswap_video.errors import ConfigValueError, EncoderUnavailableError
from clipswap_video.media.probe import VideoInfo

log = logging.getLogger(__name__)

# x264-style preset names mapped onto NVENC's p1 (fastest) .. p7 (best).
_NVENC_PRESETS = {
    "ultrafast": "p1",
    "superfast": "p1",
    "veryfast": "p2",
    "faster": "p3",
    "fast": "p3",
    "medium": "p4",
    "slow": "p5",
    "slower": "p6",
    "veryslow": "p7",
    "placebo": "p7",
}


@dataclass(frozen=True)
class EncoderPlan:
    """Everything the writer needs to open the video encoder."""

    codec: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)


def plan_encoder(video: VideoInfo, settings: VideoSettings, encoder: str) -> EncoderPlan:
    """Resolves `settings` for `encoder` (media/containers.py chooses it) against the
    input `video` and this FFmpeg build."""
    codec = video_encoder(encoder)
    if codec.name == "prores_ks":
        profile = _prores_profile(video, settings.prores_profile)
        requested = _PRORES_PIX_FMTS[profile] if settings.pix_fmt == "auto" else settings.pix_fmt
        pix_fmt = _pix_fmt(codec, video, requested)
        return EncoderPlan(codec.name, pix_fmt, _prores_options(profile, settings))
    pix_fmt = _pix_fmt(codec, video, settings.pix_fmt)
    return EncoderPlan(codec=codec.name, pix_fmt=pix_fmt, options=_options(codec.name, settings))


_PRORES_PIX_FMTS = {
    "proxy": "yuv422p10le",
    "lt": "yuv422p10le",
    "standard": "yuv422p10le",
    "hq": "yuv422p10le",
    "4444": "yuv444p10le",
    "4444xq": "yuv444p10le",
}


def _prores_profile(video: VideoInfo, chosen: str) -> str:
    """`auto`: 422 HQ, the usual mezzanine; 4444 where 4:2:2 would lose what the
    input has (12 bits, full chroma, RGB plates)."""
    if chosen != "auto":
        return chosen
    layout = av.VideoFormat(video.pix_fmt)
    full_chroma = layout.chroma_width(2) == 2 and layout.chroma_height(2) == 2
    return "4444" if video.bit_depth >= 12 or full_chroma else "hq"


def _prores_options(profile: str, settings: VideoSettings) -> dict[str, str]:
    # apl0: the vendor Apple's own decoders and Final Cut expect to see.
    options = {"profile": profile, "vendor": "apl0"}
    options.update(settings.options)
    return options


def nvenc_usable() -> bool:
    """Whether h264_nvenc opens here: the wheel always has it, a GPU and driver may lack."""
    return encoder_opens("h264_nvenc")


@functools.cache
def encoder_opens(name: str) -> bool:
    """Whether video encoder `name` opens here for a small 8-bit picture (a
    hardware encoder needs its hardware: some NVIDIA GPUs have no NVENC)."""
    try:
        context = cast(VideoCodecContext, av.CodecContext.create(name, "w"))
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    context.width, context.height, context.pix_fmt = 256, 256, "yuv420p"
    context.time_base = Fraction(1, 30)
    try:
        context.open()
    except (av.FFmpegError, OSError, ValueError):
        return False
    return True


def video_encoder(name: str) -> av.Codec:
    """This FFmpeg's video encoder `name`, or one line saying it has none."""
    try:
        codec = av.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        raise EncoderUnavailableError(
            f"video encoder '{name}' is not in this FFmpeg build; "
            f"available video encoders include: {', '.join(available_video_encoders()[:12])}"
        ) from None
    if codec.type != "video":
        raise ConfigValueError(f"video.codec = '{name}' is a {codec.type} encoder, not a video one")
    return codec


WELL_KNOWN_VIDEO_ENCODERS = (
    "libx264",
    "libx265",
    "h264_nvenc",
    "hevc_nvenc",
    "av1_nvenc",
    "libsvtav1",
    "libaom-av1",
    "libvpx-vp9",
    "prores_ks",
    "ffv1",
    "mpeg4",
)
"""The encoders error messages suggest and `doctor` looks for, most common first."""


def available_video_encoders() -> list[str]:
    """The well-known video encoders this FFmpeg build has, most common first."""
    return [
        name
        for name in WELL_KNOWN_VIDEO_ENCODERS
        if name in av.codecs_available and _is_encoder(name)
    ]


def _is_encoder(name: str) -> bool:
    try:
        return av.Codec(name, "w").type == "video"
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False


def _pix_fmt(codec: av.Codec, video: VideoInfo, requested: str) -> str:
    supported = [f.name for f in codec.video_formats or ()]
    if requested != "auto":
        if supported and requested not in supported:
            raise ConfigValueError(
                f"video.pix_fmt = '{requested}' is not supported by {codec.name}; "
                f"it takes: {', '.join(supported)}"
            )
        return _odd_size_safe(requested, supported, video, codec.name)
    if not supported or video.pix_fmt in supported:
        return _odd_size_safe(video.pix_fmt, supported, video, codec.name)
    chosen = _closest(video, supported)
    if _depth(chosen) < video.bit_depth:
        log.warning("%s cannot keep %d-bit video; encoding %s", codec.name, video.bit_depth, chosen)
    return _odd_size_safe(chosen, supported, video, codec.name)


def _closest(video: VideoInfo, supported: list[str]) -> str:
    """A YUV 4:2:0 format of the input's depth if there is one, else the encoder's first."""
    deep = ["yuv420p10le", "p010le", "yuv420p12le"] if video.bit_depth > 8 else []
    for name in [*deep, "yuv420p", "nv12"]:
        if name in supported:
            return name
    return supported[0]


def _odd_size_safe(pix_fmt: str, supported: list[str], video: VideoInfo, codec: str) -> str:
    # H.264/HEVC code 4:2:0 in 2x2 chroma blocks and cannot crop by one pixel,
    # so an odd width or height keeps its exact size only as 4:4:4.
    fmt = av.VideoFormat(pix_fmt)
    odd_w = video.width % 2 and fmt.chroma_width(2) == 1
    odd_h = video.height % 2 and fmt.chroma_height(2) == 1
    if not (odd_w or odd_h):
        return pix_fmt
    full = _full_chroma(pix_fmt)
    if full in supported:
        log.warning(
            "%dx%d is odd: encoding %s instead of %s to keep the exact size",
            video.width,
            video.height,
            full,
            pix_fmt,
        )
        return full
    raise ConfigValueError(
        f"{codec} cannot encode the odd size {video.width}x{video.height} as {pix_fmt} "
        "and has no 4:4:4 format; choose another video.codec (libx264 keeps odd sizes)"
    )


def _full_chroma(pix_fmt: str) -> str:
    for subsampled in (
        "yuvj420p",
        "yuvj422p",
        "yuv420p",
        "yuv422p",
        "yuv440p",
        "nv12",
        "nv16",
        "nv21",
    ):
        if pix_fmt.startswith(subsampled):
            return pix_fmt.replace(subsampled, "yuvj444p" if "j" in subsampled else "yuv444p")
    return "yuv444p10le" if pix_fmt in ("p010le", "p210le") else "yuv444p"


def _depth(pix_fmt: str) -> int:
    return max(component.bits for component in av.VideoFormat(pix_fmt).components)


# x264 preset names mapped onto the speed numbers of the other families
# (slowest .. fastest): libvpx-vp9's cpu-used 0..8, SVT-AV1's preset 0..13.
_VP9_SPEEDS = {"placebo": 0, "veryslow": 1, "slower": 2, "slow": 3, "medium": 4, "fast": 5}
_SVT_PRESETS = {"placebo": 2, "veryslow": 3, "slower": 4, "slow": 6, "medium": 8, "fast": 9}
_FASTER = {"faster": 1, "veryfast": 2, "superfast": 3, "ultrafast": 4}  # steps past fast


def _options(codec: str, settings: VideoSettings) -> dict[str, str]:
    options: dict[str, str] = {}
    preset = settings.preset
    if codec.endswith("_nvenc"):
        options.update(rc="vbr", cq=str(settings.crf), b="0")
        options["preset"] = _NVENC_PRESETS.get(preset, preset)
    elif codec in ("libx264", "libx265"):
        options.update(crf=str(settings.crf), preset=preset)
    elif codec == "libvpx-vp9" or codec == "libvpx":
        # b=0 with crf is libvpx's constant-quality mode; row-mt lets it use the cores.
        options.update(crf=str(settings.crf), b="0", deadline="good", **{"row-mt": "1"})
        options["cpu-used"] = _speed(preset, _VP9_SPEEDS, 8)
    elif codec == "libsvtav1":
        options.update(crf=str(settings.crf), preset=_speed(preset, _SVT_PRESETS, 13))
    elif codec == "libaom-av1":
        options.update(crf=str(settings.crf), b="0")
    elif codec == "mpeg4":
        # No crf: a fixed quantiser (FFmpeg's -q:v) from the crf scale, 2 (best) .. 31.
        quantiser = min(31, max(2, round(settings.crf / 6)))
        options.update(flags="+qscale", global_quality=str(quantiser * _LAMBDA_PER_QP))
    elif codec == "ffv1":
        # The archival profile: version 3, a CRC per slice, every frame a keyframe.
        options.update(level="3", slicecrc="1", g="1")
    options.update(settings.options)
    return options


_LAMBDA_PER_QP = 118  # FFmpeg's FF_QP2LAMBDA: global_quality is in lambda units


def _speed(preset: str, table: dict[str, int], fastest: int) -> str:
    """A speed number for an x264 preset name; a number passes through."""
    if preset.isdigit():
        return preset
    if preset in table:
        return str(table[preset])
    return str(min(fastest, table["fast"] + _FASTER.get(preset, 0)))


__all__ = [
    "WELL_KNOWN_VIDEO_ENCODERS",
    "EncoderPlan",
    "available_video_encoders",
    "encoder_opens",
    "nvenc_usable",
    "plan_encoder",
    "video_encoder",
]
