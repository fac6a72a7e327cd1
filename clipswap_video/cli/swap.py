"""`clipswap-video swap SRC IN OUT` (also `clipswap-video SRC IN OUT`): one video."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from clipswap_video.cli.console import progress
from clipswap_video.cli.flags import (
    add_loudness,
    add_sequence_flags,
    add_settings,
    add_swap_flags,
    add_time_range,
    parse_time_range,
    settings_overrides,
)
from clipswap_video.config import Settings, load_settings, to_toml
from clipswap_video.errors import ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("swap", help="swap faces in one video (the default command)")
    parser.add_argument(
        "source",
        type=Path,
        metavar="SRC",
        help="photo of the new face (several: a.jpg,b.jpg)",
    )
    parser.add_argument(
        "input",
        type=Path,
        metavar="IN",
        help="input video, or image sequence: 'plate/frame_%%06d.exr', 'plate/*.png' or a "
        "folder (never modified)",
    )
    parser.add_argument(
        "output",
        type=Path,
        metavar="OUT",
        help="output video (.mp4, .mov, .mkv), or image sequence: shot/frame_%%06d.exr "
        "(.png, .tif, .dpx)",
    )
    add_settings(parser)
    add_swap_flags(parser)
    parser.add_argument("--device", help="neural swapper device: auto, cpu, cuda[:N]")
    add_time_range(parser)
    add_sequence_flags(parser)
    parser.add_argument(
        "--preview",
        type=Path,
        metavar="OUT.png",
        help="also write source | input | output at the middle frame",
    )
    parser.add_argument(
        "--review",
        type=Path,
        metavar="OUT.mp4",
        help="also write a review video in the same pass: input | output side by side, "
        "at most 1280 px wide, with the timecode burnt in",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective settings as TOML and exit"
    )
    add_loudness(parser)
    parser.set_defaults(handler=run)


def _say_mode(mode: str, settings: Settings, weights_dir: Path | None) -> None:
    """One -v line: the mode, the swapper and the face detector the job uses, and why."""
    if settings.swap.swapper == "none":
        logging.getLogger("clipswap_video").info("mode %s, swapper none: no face is swapped", mode)
        return
    from clipswap_video.faces.backends import resolve_detector
    from clipswap_video.swap.choice import resolve_swapper

    swapper, _ = resolve_swapper(settings.swap.swapper, weights_dir)  # FaceSwapper warns
    detector, why = resolve_detector(settings.faces, swapper, weights_dir)
    logging.getLogger("clipswap_video").info(
        "mode %s, swapper %s, face detector %s (%s)", mode, swapper, detector, why
    )


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.faces import parse_selection
    from clipswap_video.pipeline import run_video

    settings = load_settings(args.config, settings_overrides(args), args.mode)
    parse_selection(settings.faces.select)  # a bad --faces fails before any work
    time_range = parse_time_range(args)
    if args.preview is not None:  # imported only when asked for: OpenCV is large
        from clipswap_video.reports.preview import check_preview_path, write_side_by_side

        check_preview_path(args.preview)
    if args.print_config:
        print(to_toml(settings), end="")
        return ExitCode.OK
    _say_mode(args.mode, settings, args.weights)
    with progress(console, enabled=not args.quiet) as (on_start, on_progress):
        result = run_video(
            sources(args.source),
            args.input,
            args.output,
            settings,
            weights_dir=args.weights,
            on_start=on_start,
            on_progress=on_progress,
            time_range=time_range,
            review=args.review,
        )
    for note in result.input_problems:
        logging.getLogger("clipswap_video").warning(note)
    if args.preview is not None:
        write_side_by_side(sources(args.source)[0], args.input, result.output, args.preview)
    if not args.quiet:
        faces = f", {result.coverage.summary()}" if result.coverage is not None else ""
        console.print(
            f"wrote {escape(str(result.output))}: {result.frames} frames{faces}, in "
            f"{result.elapsed_s:.1f} s ({result.fps:.1f} fps)",
            soft_wrap=True,
        )
        if args.review is not None:
            console.print(f"wrote the review {escape(str(args.review))}", soft_wrap=True)
    return ExitCode.OK


def sources(source: Path) -> list[Path]:
    """SRC, or several photos of one person as `a.jpg,b.jpg` (a path that exists
    with a comma in its name stays one path)."""
    if source.exists() or "," not in str(source):
        return [source]
    return [Path(part) for part in str(source).split(",") if part]


__all__ = ["add_parser", "run", "sources"]
