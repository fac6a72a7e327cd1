"""`clipswap-video probe FILE`: what is in a media file."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from clipswap_video.cli.flags import add_loudness, add_set, overrides_of
from clipswap_video.errors import ExitCode

if TYPE_CHECKING:
    from clipswap_video.media import MediaInfo


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("probe", help="what is in a media file")
    parser.add_argument("input", type=Path, metavar="FILE")
    parser.add_argument(
        "--count-frames", action="store_true", help="count frames exactly, detect VFR"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="OUT",
        help="say what a job writing OUT would get: container, video encoder, other streams",
    )
    parser.add_argument("--codec", help="as a job's --codec, for --output")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    add_set(parser, example="video.webm_codec=libsvtav1")
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.media import probe
    from clipswap_video.media.tags import printable_tree

    media = probe(args.input, count_frames=args.count_frames)
    if args.output is not None:
        return _plan(media, args)
    info = dataclasses.asdict(media)
    text = json.dumps(printable_tree(info), indent=2, default=str)
    if args.json:
        print(text)
    else:
        console.print_json(text)
    return ExitCode.OK


def _plan(media: MediaInfo, args: argparse.Namespace) -> int:
    from clipswap_video.config import load_settings
    from clipswap_video.media.output_plan import plan_output
    from clipswap_video.media.tags import printable_tree

    overrides = [*args.overrides, *overrides_of({"video.codec": args.codec})]
    settings = load_settings(args.config, overrides)
    plan = plan_output(media, args.output, settings)
    if args.json:
        print(json.dumps(printable_tree(dataclasses.asdict(plan)), indent=2, default=str))
    else:
        print("\n".join(plan.lines()))  # plain lines on stdout, for scripts too
    return ExitCode.OK


__all__ = ["add_parser", "run"]
