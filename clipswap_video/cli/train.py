"""`clipswap-video train CONFIG`: a training run with a progress bar and one line
per outcome. Resumes on its own from run.out_dir's checkpoint.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from clipswap_video.cli.flags import add_loudness, add_set, overrides_of
from clipswap_video.errors import ExitCode, InputNotFoundError

if TYPE_CHECKING:  # torch and the networks load only when `train` runs
    from clipswap_video.train.metrics import Metrics
    from clipswap_video.train.trainer import Trainer

SHOWN = ("total", "reconstruction", "identity", "clip", "discriminator")
"""Losses shown beside the progress bar (all are in the metrics log)."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "train", help="train a ClipSwap generator (resumes from its checkpoint)"
    )
    parser.add_argument(
        "config",
        metavar="CONFIG",
        help="training TOML file, or a name in configs/train (tiny, default)",
    )
    add_set(parser, example="run.steps=1000")
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="images, videos or folders of them (replaces data.paths)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="run folder (run.out_dir)")
    parser.add_argument("--steps", type=int, metavar="N", help="train until step N (run.steps)")
    parser.add_argument("--device", help="auto, cpu, cuda[:N] (run.device)")
    parser.add_argument(
        "--weights", type=Path, metavar="DIR", help="weights folder of a non-dlib face detector"
    )
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="write ClipSwap.safetensors from the run's checkpoint and exit",
    )
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    flags = {
        "data.paths": [str(path) for path in args.data] or None,
        "run.out_dir": args.out,
        "run.steps": args.steps,
        "run.device": args.device,
    }
    overrides = [*args.overrides, *overrides_of(flags)]
    return train(
        args.config,
        overrides,
        console,
        quiet=args.quiet,
        export_only=args.export_only,
        weights_dir=args.weights,
    )


def train(
    config_file: str,
    overrides: Sequence[str],
    console: Console,
    *,
    quiet: bool = False,
    export_only: bool = False,
    weights_dir: Path | None = None,
) -> int:
    """Runs (or continues) the training that `config_file` describes; an exit code."""
    from clipswap_video.train.checkpoint import CHECKPOINT_NAME
    from clipswap_video.train.config import load_train_config
    from clipswap_video.train.data import find_media
    from clipswap_video.train.export import export_checkpoint
    from clipswap_video.train.trainer import Trainer

    config = load_train_config(config_file, overrides)
    out_dir = Path(config.run.out_dir)
    if export_only:
        checkpoint = out_dir / CHECKPOINT_NAME
        if not checkpoint.exists():
            raise InputNotFoundError(f"no checkpoint {checkpoint} to export; train first")
        target = out_dir / "ClipSwap.safetensors"
        export_checkpoint(checkpoint, config.model.generator_spec(), target)
        _say(console, quiet, f"wrote {escape(str(target))}")
        return ExitCode.OK
    find_media(config.data.paths)  # a missing data folder fails before the networks load
    trainer = Trainer(config, weights_dir)
    try:
        faces = _prepare(trainer, console, quiet)
        if trainer.resume():
            _say(console, quiet, f"resuming from step {trainer.step} ({escape(str(out_dir))})")
        _say(console, quiet, f"{faces} aligned faces; device {trainer.device}, {trainer.precision}")
        first, started = trainer.step, time.perf_counter()
        finished = _fit(trainer, console, quiet)
    finally:
        trainer.close()
    rate = (trainer.step - first) / max(time.perf_counter() - started, 1e-9)
    if not finished:
        _say(
            console,
            quiet,
            f"stopped at step {trainer.step}; checkpoint saved in "
            f"{escape(str(out_dir))}; the same command resumes",
        )
        return ExitCode.INTERRUPTED
    _say(
        console,
        quiet,
        f"trained to step {trainer.step} ({rate:.2f} steps/s); wrote "
        f"{escape(str(out_dir))}/ClipSwap.safetensors",
    )
    return ExitCode.OK


def _prepare(trainer: Trainer, console: Console, quiet: bool) -> int:
    with Progress(
        TextColumn("[bold]finding faces"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task("files", total=None)
        return trainer.prepare_data(lambda _path: bar.advance(task))


def _fit(trainer: Trainer, console: Console, quiet: bool) -> bool:
    total = trainer.config.run.steps
    with Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task("steps", total=total, completed=trainer.step, losses="")

        def on_step(step: int, metrics: Metrics) -> None:
            shown = " ".join(f"{key} {metrics[key]:.3f}" for key in SHOWN if key in metrics)
            bar.update(task, completed=step, losses=shown)

        return trainer.fit(on_step)


def _say(console: Console, quiet: bool, text: str) -> None:
    if not quiet:
        console.print(text, soft_wrap=True)


__all__ = ["add_parser", "run", "train"]
