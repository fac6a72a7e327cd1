"""`clipswap-video demo-media DIR`: the demo's source photo and clip."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from clipswap_video.cli.flags import add_loudness
from clipswap_video.errors import ConfigValueError, ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("demo-media", help="write the demo source image and clip")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.demo import write_demo_media

    try:
        media = write_demo_media(
            args.directory, seconds=args.seconds, width=args.width, height=args.height, fps=args.fps
        )
    except ValueError as error:
        raise ConfigValueError(f"demo-media: {error}") from None
    if not args.quiet:
        for path in (media.source_image, media.video, media.landmarks):
            console.print(f"wrote {escape(str(path))}", soft_wrap=True)
    return ExitCode.OK


__all__ = ["add_parser", "run"]
