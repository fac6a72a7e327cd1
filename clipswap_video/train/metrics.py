"""The training run's figures: metrics.csv, or TensorBoard events.

One row per `run.log_every` steps: the step, seconds since the run (or its
resumption) started, the learning rate, the weighted total, each loss of
LOSSES and the discriminator's two terms.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from clipswap_video._resources import import_extra

LOSSES = (
    "adversarial",
    "reconstruction",
    "identity",
    "cycle",
    "perceptual",
    "ifsr",
    "clip",
    "attribute",
)
METRICS = ("step", "seconds", "lr", "total", *LOSSES, "discriminator", "r1")
Metrics = dict[str, float]


class MetricsLog:
    """metrics.csv (rows past a resumed step dropped, so a killed run's log
    continues without duplicates), or TensorBoard events in out_dir/tensorboard."""

    def __init__(self, out_dir: Path, kind: str, resumed_step: int) -> None:
        self.kind = kind
        self.path = out_dir / "metrics.csv"
        self._writer: Any = None
        if kind == "tensorboard":
            # checked first: torch's own ImportError names neither the extra nor pip
            import_extra("tensorboard", "train", 'run.log = "tensorboard"')
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resumed_step + 1)
            return
        kept = []
        if self.path.exists():
            with open(self.path, newline="") as file:
                kept = [row for row in csv.DictReader(file) if float(row["step"]) <= resumed_step]
        self._file = open(self.path, "w", newline="")  # noqa: SIM115 (closed in __exit__)
        self._csv = csv.DictWriter(self._file, fieldnames=METRICS, extrasaction="ignore")
        self._csv.writeheader()
        self._csv.writerows(kept)

    def write(self, metrics: Metrics) -> None:
        if self._writer is not None:
            step = int(metrics["step"])
            for key, value in metrics.items():
                if key != "step":
                    self._writer.add_scalar(f"train/{key}", value, step)
            return
        self._csv.writerow(
            {key: f"{metrics[key]:.6g}" if key in metrics else "" for key in METRICS}
        )
        self._file.flush()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
        else:
            self._file.close()


__all__ = ["LOSSES", "METRICS", "Metrics", "MetricsLog"]
