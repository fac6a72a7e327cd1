"""`clipswap-video preview SRC IN --at T [--at T ...]`: the swap at chosen times
of a long video, in seconds, before rendering it whole."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from clipswap_video.cli.flags import (
    add_loudness,
    add_settings,
    add_swapper_flags,
    settings_overrides,
)
from clipswap_video.cli.swap import sources
from clipswap_video.config import load_settings
from clipswap_video.errors import ExitCode
from clipswap_video.times import format_time, parse_time


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "preview", help="source | input | output at chosen times of a video, in seconds"
    )
    parser.add_argument(
        "source", type=Path, metavar="SRC", help="photo of the new face (several: a.jpg,b.jpg)"
    )
    parser.add_argument("input", type=Path, metavar="IN", help="input video (never modified)")
    parser.add_argument(
        "--at",
        dest="times",
        action="append",
        required=True,
        metavar="T",
        help="time to preview, seconds or H:MM:SS.mmm; several: one row each",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="OUT.png",
        help="the picture, .png or .jpg (default: IN_STEM.preview.png here)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="draw the face boxes, track ids and which faces are swapped on the input",
    )
    add_settings(parser)
    add_swapper_flags(parser)
    parser.add_argument("--device", help="neural swapper device: auto, cpu, cuda[:N]")
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.faces import parse_selection
    from clipswap_video.reports.moment import write_preview_at
    from clipswap_video.reports.preview import check_preview_path

    started = time.perf_counter()
    output = args.out if args.out is not None else Path(f"{args.input.stem}.preview.png")
    check_preview_path(output)  # before any decoding
    times = [parse_time(text, "--at") for text in args.times]
    settings = load_settings(args.config, settings_overrides(args), args.mode)
    parse_selection(settings.faces.select)  # a bad --faces fails before any work
    write_preview_at(
        sources(args.source),
        args.input,
        times,
        output,
        settings,
        weights_dir=args.weights,
        debug=args.debug,
    )
    if not args.quiet:
        at = ", ".join(format_time(seconds) for seconds in times)
        console.print(
            f"wrote {escape(str(output))}: source | input | output at {at}, in "
            f"{time.perf_counter() - started:.1f} s",
            soft_wrap=True,
        )
    return ExitCode.OK


__all__ = ["add_parser", "run"]
