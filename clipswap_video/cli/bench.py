"""`clipswap-video bench`: speed and memory figures (`make bench`)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any, get_args

from rich.console import Console
from rich.table import Table

from clipswap_video.cli.flags import add_loudness
from clipswap_video.config_sections import PrecisionName
from clipswap_video.errors import ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("bench", help="measure speed and memory")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--work-dir", type=Path, help="keep the clips here (default: a temp dir)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the short clip")
    parser.add_argument("--long-seconds", type=float, default=60.0, help="length of the long clip")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument(
        "--neural-only",
        action="store_true",
        help="only the generator and the clipswap job (for GPU runs)",
    )
    parser.add_argument(
        "--neural-seconds", type=float, default=2.0, help="length of the clipswap job's clip"
    )
    parser.add_argument(
        "--swappers-only",
        action="store_true",
        help="only the swap models users bring (inswapper, FaceFusion's), alone and end to end",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="DIR",
        help="time the swap models in this folder instead of stand-ins",
    )
    parser.add_argument("--device", default="auto", help="generator device: auto, cpu, cuda[:N]")
    parser.add_argument("--precision", choices=get_args(PrecisionName), default="fp32")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="crops per generator call (0: the engine's choice for the device)",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="the clipswap job in the channels-last layout"
    )
    parser.add_argument("--codec", help="the clipswap job's encoder, e.g. h264_nvenc")
    parser.add_argument(
        "--batch-clips",
        type=int,
        default=8,
        metavar="N",
        help="clips in the batch figures",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=2.0,
        metavar="S",
        help="length of each of those clips (640x360)",
    )
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.bench import (
        BenchOptions,
        NeuralOptions,
        neural_figures,
        run_bench,
        swappers_only,
    )

    neural = NeuralOptions(
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        channels_last=args.channels_last,
        codec=args.codec,
    )
    options = BenchOptions(
        work_dir=args.work_dir,
        seconds=args.seconds,
        long_seconds=args.long_seconds,
        width=args.width,
        height=args.height,
        neural=neural,
        neural_seconds=args.neural_seconds,
        batch_clips=args.batch_clips,
        batch_seconds=args.batch_seconds,
        swap_weights=args.weights,
    )
    loud = not (args.json or args.quiet)
    say = (lambda line: console.print(f"[dim]{line}", soft_wrap=True)) if loud else None
    if args.neural_only:
        with tempfile.TemporaryDirectory(prefix="clipswap-bench-") as scratch:
            results = neural_figures(args.work_dir or Path(scratch), options, say)
    elif args.swappers_only:
        with tempfile.TemporaryDirectory(prefix="clipswap-bench-") as scratch:
            results = swappers_only(args.work_dir or Path(scratch), options, say)
    else:
        results = run_bench(options, say)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        console.print(results_table(results))
    return ExitCode.OK


def results_table(results: dict[str, Any]) -> Table:
    """The results as a rich table, with the targets the issues set."""
    table = Table(title=f"clipswap-video bench ({results['clip']})")
    for column in ("measure", "value", "target"):
        table.add_column(column)
    for key, value in results.items():
        if key != "clip":
            table.add_row(key, str(value), _verdict(key, value))
    return table


def _verdict(key: str, value: float) -> str:
    from clipswap_video.bench import TARGETS

    if key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    met = value <= target if op == "<=" else value >= target
    return f"{op} {target} " + ("[green]ok" if met else "[red]missed")


__all__ = ["add_parser", "results_table", "run"]
