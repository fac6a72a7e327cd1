"""`clipswap-video evaluate SRC IN OUT`: identity transfer, flicker and background damage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from clipswap_video.cli.console import progress
from clipswap_video.cli.flags import add_loudness
from clipswap_video.config import load_settings
from clipswap_video.errors import ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate", help="identity transfer, flicker and background damage of a swap"
    )
    parser.add_argument("source", type=Path, metavar="SRC")
    parser.add_argument("input", type=Path, metavar="IN")
    parser.add_argument("output", type=Path, metavar="OUT")
    parser.add_argument("--samples", type=int, default=30, help="frames sampled for identity")
    parser.add_argument(
        "--weights", type=Path, metavar="DIR", help="extra weights folder (for ArcFace-Res50)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.reports.evaluate import evaluate

    settings = load_settings(args.config)
    loud = not (args.quiet or args.json)
    with progress(console, enabled=loud, label="evaluating") as (on_start, on_progress):
        results = evaluate(
            args.source,
            args.input,
            args.output,
            settings,
            samples=args.samples,
            weights_dir=args.weights,
            on_start=on_start,
            on_frame=lambda: on_progress(1),
        )
    if args.json:
        print(json.dumps(results))
    elif not args.quiet:
        table = Table(title=f"evaluate {args.output}")
        table.add_column("measure")
        table.add_column("value")
        for key, value in results.items():
            if isinstance(value, list):  # per-face values: --json only
                continue
            table.add_row(key, "n/a" if value is None else str(value))
        console.print(table)
    return ExitCode.OK


__all__ = ["add_parser", "run"]
