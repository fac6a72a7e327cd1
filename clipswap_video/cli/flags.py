"""Flag groups shared by several commands, and the one rule that turns
convenience flags into `--set section.key=value` overrides.

A flag is a shorter way to write an override, so every flag goes through
`as_override` and wins over the config file the way `--set` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from clipswap_video._toml_config import toml_value
from clipswap_video.config import ModeName
from clipswap_video.config_sections import (
    AudioMode,
    DetectorChoice,
    EnhancerName,
    PrecisionName,
    SwapperName,
)
from clipswap_video.errors import ConfigValueError
from clipswap_video.times import parse_time

if TYPE_CHECKING:
    from clipswap_video.media.trim import TimeRange


def add_loudness(parser: argparse.ArgumentParser) -> None:
    """-q / -v, on every command."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    loudness.add_argument("-v", "--verbose", action="store_true", help="print details")


def add_settings(parser: argparse.ArgumentParser) -> None:
    """--config, --set, the face flags and --tolerate-errors, shared by the commands
    that decode and analyse faces (swap, batch, faces)."""
    parser.add_argument(
        "--mode",
        choices=get_args(ModeName),
        default="video",
        help="video: tracking, smoothing, video-grade compositing (the default); "
        "paper: the authors' inference step for step (configs/modes/paper.toml)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    add_set(parser, example="video.crf=20")
    parser.add_argument(
        "--faces", metavar="WHICH", help="faces to swap: all, largest, reference:IMG[,IMG]"
    )
    parser.add_argument("--detector", choices=get_args(DetectorChoice), help="face detector")
    parser.add_argument(
        "--source-face",
        type=int,
        metavar="N",
        help="face of a source photo with several: N-th from the left",
    )
    parser.add_argument(
        "--tolerate-errors",
        action="store_true",
        help="skip undecodable packets and accept a truncated input",
    )


def add_set(parser: argparse.ArgumentParser, *, example: str) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one setting, e.g. {example}",
    )


def add_swap_flags(parser: argparse.ArgumentParser) -> None:
    """The swapper and encoder flags shared by swap and batch."""
    add_swapper_flags(parser)
    parser.add_argument("--codec", help="video encoder, e.g. libx264, libx265, h264_nvenc")
    parser.add_argument("--crf", type=int, help="quality: lower is better (x264 default 18)")
    parser.add_argument("--preset", help="encoder speed preset, e.g. veryfast, medium, slow")
    parser.add_argument(
        "--audio",
        choices=get_args(AudioMode),
        help="audio the output container cannot hold: auto transcodes it once to the "
        "container's codec (WebM: Opus, MP4: AAC), drop leaves it out",
    )
    parser.add_argument(
        "--strict-faces",
        action="store_true",
        help="fail (exit 17, no output) when no face is swapped in any frame",
    )


def add_swapper_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that choose and tune the swap itself (swap, batch, preview)."""
    parser.add_argument(
        "--swapper",
        type=_swapper_choice,
        metavar="NAME",
        help=f"swap backend: {', '.join(get_args(SwapperName))}, or onnx:MODEL",
    )
    parser.add_argument("--weights", type=Path, metavar="DIR", help="extra weights folder")
    parser.add_argument(
        "--enhancer",
        choices=get_args(EnhancerName),
        help="face restoration after the swap (GFPGAN, CodeFormer, RestoreFormer files)",
    )
    parser.add_argument(
        "--frame-enhancer",
        type=Path,
        metavar="FILE",
        help="a spandrel image model (Real-ESRGAN, SwinIR, ...) run on every whole frame "
        "after compositing; the output keeps the input's size",
    )
    parser.add_argument("--precision", choices=get_args(PrecisionName), help="fp32, fp16, bf16")
    parser.add_argument(
        "--batch-size", type=int, metavar="N", help="face crops per generator call, across frames"
    )


def add_sequence_flags(parser: argparse.ArgumentParser) -> None:
    """The image-sequence flags (docs/sequences.md): an input's rate and gaps,
    an output's numbers."""
    parser.add_argument(
        "--fps",
        metavar="RATE",
        help="frame rate of an input image sequence: 25, 23.976 (= 24000/1001) or a ratio "
        "(default: an EXR's framesPerSecond, else 24)",
    )
    parser.add_argument(
        "--fill-gaps",
        action="store_true",
        help="a missing frame number of an input sequence repeats the frame before it",
    )
    parser.add_argument(
        "--start-number",
        type=int,
        metavar="N",
        help="number of the first file of an output sequence (default: the input's numbers)",
    )


def _swapper_choice(text: str) -> tuple[str, str | None]:
    """`--swapper NAME` or `onnx:MODEL`: (swap.swapper, swap.model or None)."""
    name, colon, model = text.partition(":")
    if name not in get_args(SwapperName) or (colon and (name != "onnx" or not model)):
        raise argparse.ArgumentTypeError(
            f"{text!r}: choose one of {', '.join(get_args(SwapperName))}, or onnx:MODEL"
        )
    return name, model if colon else None


def settings_overrides(args: argparse.Namespace) -> list[str]:
    """`--set` overrides followed by those of the convenience flags given (later
    ones win, so a flag beats a `--set` of the same key)."""
    swapper = getattr(args, "swapper", None)
    flags = {
        "swap.swapper": swapper[0] if swapper else None,
        "swap.model": swapper[1] if swapper else None,
        "swap.device": getattr(args, "device", None),
        "swap.precision": getattr(args, "precision", None),
        "swap.batch_size": getattr(args, "batch_size", None),
        "enhance.enhancer": getattr(args, "enhancer", None),
        "enhance.frame_model": getattr(args, "frame_enhancer", None),
        "video.codec": getattr(args, "codec", None),
        "video.crf": getattr(args, "crf", None),
        "video.preset": getattr(args, "preset", None),
        "audio.mode": getattr(args, "audio", None),
        "input.tolerate_errors": True if args.tolerate_errors else None,
        "faces.strict": True if getattr(args, "strict_faces", False) else None,
        "faces.select": args.faces,
        "faces.detector": args.detector,
        "faces.source_face": args.source_face,
        "sequence.fps": getattr(args, "fps", None),
        "sequence.fill_gaps": True if getattr(args, "fill_gaps", False) else None,
        "sequence.start_number": getattr(args, "start_number", None),
    }
    return [*args.overrides, *overrides_of(flags)]


def overrides_of(values: dict[str, object]) -> list[str]:
    """`key=value` for each value given (None: the flag was not given)."""
    return [as_override(key, value) for key, value in values.items() if value is not None]


def as_override(key: str, value: object) -> str:
    """`key=value` with the value written as TOML (a path with spaces or quotes survives)."""
    return f"{key}={toml_value(value)}"


def add_time_range(parser: argparse.ArgumentParser) -> None:
    """--start, --end / --duration and --keep-timestamps: a part of the video."""
    parser.add_argument(
        "--start", metavar="T", help="begin at the first frame at or after T (12.5 or 0:00:12.5)"
    )
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--end", metavar="T", help="stop before the first frame at or after T")
    span.add_argument("--duration", metavar="T", help="stop T after --start")
    parser.add_argument(
        "--keep-timestamps",
        action="store_true",
        help="with --start: keep the input's times (default: the output starts at 0)",
    )


def parse_time_range(args: argparse.Namespace) -> TimeRange | None:
    """The range add_time_range's flags ask for; None: the whole video."""
    from clipswap_video.media.trim import TimeRange

    if args.start is None and args.end is None and args.duration is None:
        if args.keep_timestamps:
            raise ConfigValueError("--keep-timestamps goes with --start, --end or --duration")
        return None
    start = parse_time(args.start, "--start") if args.start is not None else 0.0
    end = parse_time(args.end, "--end") if args.end is not None else None
    if args.duration is not None:
        end = start + parse_time(args.duration, "--duration")
    return TimeRange(start, end, args.keep_timestamps)


__all__ = [
    "add_loudness",
    "add_sequence_flags",
    "add_set",
    "add_settings",
    "add_swap_flags",
    "add_swapper_flags",
    "add_time_range",
    "as_override",
    "overrides_of",
    "parse_time_range",
    "settings_overrides",
]
