"""`clipswap-video train CONFIG`: the console side of a training run (rich
progress, one line per outcome). Resumes on its own from run.out_dir's checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

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

from clipswap_video.errors import ExitCode, InputNotFoundError
from clipswap_video.train.checkpoint import CHECKPOINT_NAME
from clipswap_video.train.config import load_train_config
from clipswap_video.train.data import find_media
from clipswap_video.train.export import export_checkpoint
from clipswap_video.train.trainer import Metrics, Trainer

SHOWN = ("total", "reconstruction", "identity", "clip", "discriminator")
"""Losses shown beside the progress bar (all are in the metrics log)."""


def flag_overrides(
    data: Sequence[Path], out: Path | None, steps: int | None, device: str | None
) -> list[str]:
    """The convenience flags as `section.key=value` overrides."""
    overrides = []
    if data:
        overrides.append(f"data.paths={json.dumps([str(path) for path in data])}")
    if out is not None:
        overrides.append(f"run.out_dir={json.dumps(str(out))}")
    if steps is not None:
        overrides.append(f"run.steps={steps}")
    if device is not None:
        overrides.append(f"run.device={json.dumps(device)}")
    return overrides


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
        _say(console, quiet, f"{faces} aligned faces; device {trainer.device}")
        first, started = trainer.step, time.perf_counter()
        finished = _fit(trainer, console, quiet)
    finally:
        trainer.close()
    rate = (trainer.step - first) / max(time.perf_counter() - started, 1e-9)
    if not finished:
        _say(console, quiet, f"stopped at step {trainer.step}; checkpoint saved in "
                             f"{escape(str(out_dir))}; the same command resumes")  # fmt: skip
        return ExitCode.INTERRUPTED
    _say(console, quiet, f"trained to step {trainer.step} ({rate:.2f} steps/s); wrote "
                         f"{escape(str(out_dir))}/ClipSwap.safetensors")  # fmt: skip
    return ExitCode.OK


def _prepare(trainer: Trainer, console: Console, quiet: bool) -> int:
    with Progress(TextColumn("[bold]finding faces"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=quiet) as bar:  # fmt: skip
        task = bar.add_task("files", total=None)
        return trainer.prepare_data(lambda _path: bar.advance(task))


def _fit(trainer: Trainer, console: Console, quiet: bool) -> bool:
    total = trainer.config.run.steps
    with Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=console, disable=quiet) as bar:  # fmt: skip
        task = bar.add_task("steps", total=total, completed=trainer.step, losses="")

        def on_step(step: int, metrics: Metrics) -> None:
            shown = " ".join(f"{key} {metrics[key]:.3f}" for key in SHOWN if key in metrics)
            bar.update(task, completed=step, losses=shown)

        return trainer.fit(on_step)


def _say(console: Console, quiet: bool, text: str) -> None:
    if not quiet:
        console.print(text, soft_wrap=True)


__all__ = ["flag_overrides", "train"]
