"""Bench figure of the trainer: steps per second of the tiny configuration
(configs/train/tiny.toml) on the bench's demo photo and clip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clipswap_video.bench import timing
from clipswap_video.train import Trainer, load_train_config


def training_figures(folder: Path, data: list[Path], steps: int = 40) -> dict[str, Any]:
    """Trains the tiny config `steps` steps from scratch; face finding is not timed."""
    config = load_train_config(
        "tiny",
        [
            f"data.paths={json.dumps([str(path) for path in data])}",
            f"data.cache_dir={json.dumps(str(folder / 'face_cache'))}",
            f"run.out_dir={json.dumps(str(folder / 'run'))}",
            f"run.steps={steps}",
            f"run.checkpoint_every={steps}",
            f"run.sample_every={steps}",
        ],
    )
    trainer = Trainer(config)
    try:
        trainer.prepare_data()
        elapsed = timing.seconds(trainer.fit)
    finally:
        trainer.close()
    return {"train_tiny_steps_per_s": round(steps / elapsed, 2), "train_tiny_steps": steps}


__all__ = ["training_figures"]
