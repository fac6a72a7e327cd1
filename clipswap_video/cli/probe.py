"""`clipswap-video probe FILE`: what is in a media file."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from clipswap_video.cli.flags import add_loudness
from clipswap_video.errors import ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("probe", help="what is in a media file")
    parser.add_argument("input", type=Path, metavar="FILE")
    parser.add_argument(
        "--count-frames", action="store_true", help="count frames exactly, detect VFR"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.media import probe
    from clipswap_video.media.tags import printable_tree

    info = dataclasses.asdict(probe(args.input, count_frames=args.count_frames))
    text = json.dumps(printable_tree(info), indent=2, default=str)
    if args.json:
        print(text)
    else:
        console.print_json(text)
    return ExitCode.OK


__all__ = ["add_parser", "run"]
