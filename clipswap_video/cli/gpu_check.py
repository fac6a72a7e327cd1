"""`clipswap-video gpu-check`: the GPU path proven with one command (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from clipswap_video.cli.flags import add_loudness
from clipswap_video.errors import ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "gpu-check",
        help="prove the GPU path: CUDA tests, throughput, whole jobs, batch, training",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N]")
    parser.add_argument(
        "--small",
        action="store_true",
        help="the rehearsal's sizes (narrow networks, small clips): minutes on a CPU",
    )
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.bench.gpu_check import (
        GpuCheckOptions,
        all_parts_ran,
        run_gpu_check,
        summary,
    )
    from clipswap_video.swap.device import resolve_device

    resolve_device(args.device, "--device")  # a device torch does not see: one line, exit 4
    options = GpuCheckOptions(args.out, args.device, args.small)
    report = run_gpu_check(options, lambda line: console.print(f"[dim]{escape(line)}"))
    console.print(escape(summary(report)), end="")
    if not all_parts_ran(report):
        log = escape(str(args.out / "gpu_check.log"))
        console.print(f"[red]error:[/] a part failed or ran out of time; see {log}")
        return ExitCode.JOBS_FAILED
    return ExitCode.OK


__all__ = ["add_parser", "run"]
