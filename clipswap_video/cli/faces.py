"""`clipswap-video faces IMAGE_OR_VIDEO`: the faces found, and which would be swapped."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from clipswap_video.cli.console import progress
from clipswap_video.cli.flags import add_loudness, add_settings, settings_overrides
from clipswap_video.config import load_settings
from clipswap_video.errors import ExitCode

if TYPE_CHECKING:
    from clipswap_video.reports.faces import FaceReport


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "faces", help="show the faces found in a photo or video, and which would be swapped"
    )
    parser.add_argument("input", type=Path, metavar="IMAGE_OR_VIDEO")
    parser.add_argument("--json", action="store_true", help="per-frame faces as one JSON object")
    parser.add_argument(
        "--preview",
        type=Path,
        metavar="OUT.png",
        help="annotated picture (video: a contact sheet)",
    )
    parser.add_argument("--weights", type=Path, metavar="DIR", help="extra weights folder")
    add_settings(parser)
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.reports.faces import analyse_input, write_preview
    from clipswap_video.reports.preview import check_preview_path

    settings = load_settings(args.config, settings_overrides(args), args.mode)
    if args.preview is not None:
        check_preview_path(args.preview)  # before a long analysis, not after
    loud = not (args.quiet or args.json)
    with progress(console, enabled=loud, label="analysing") as (on_start, on_progress):
        report = analyse_input(
            args.input,
            settings,
            weights_dir=args.weights,
            on_start=on_start,
            on_frame=lambda: on_progress(1),
        )
    if args.preview is not None:
        write_preview(report.previews, args.preview)
    if args.json:
        print(json.dumps(report.as_json()))
    elif not args.quiet:
        console.print(_table(report))
    return ExitCode.OK


def _table(report: FaceReport) -> Table:
    table = Table(title=f"{report.input}: {report.width}x{report.height}, {report.kind}")
    if report.kind == "image":
        for column in ("face", "box", "score", "size", "yaw", "swapped"):
            table.add_column(column)
        for face in report.frames[0]["faces"]:
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            swapped = "yes" if face["selected"] else "no"
            size, yaw = f"{face['size']:.0f}", f"{face['yaw']:+.0f}°"
            table.add_row(str(face["index"]), box, f"{face['score']:.2f}", size, yaw, swapped)
        return table
    for column in ("track", "first frame", "last frame", "frames seen", "mean size", "swapped in"):
        table.add_column(column)
    keys = ("track_id", "first", "last", "frames", "mean_size", "selected_frames")
    for track in report.tracks():
        table.add_row(*(str(track[key]) for key in keys))
    empty = sum(1 for frame in report.frames if not frame["faces"])
    table.caption = f"{len(report.frames)} frames, {empty} without a face"
    return table


__all__ = ["add_parser", "run"]
