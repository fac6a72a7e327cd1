"""Bench figures of the batch command: a folder of short clips swapped as
separate CLI runs, then as one batch with 1 and with 2 worker processes.

Every run is a fresh `python -m clipswap_video` process, as a user would start
it, so the single runs pay interpreter start and model loading once per video
and a batch pays them once per worker. Timed back to back in one bench run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from clipswap_video.bench import timing
from clipswap_video.demo import write_demo_media


def batch_figures(
    folder: Path,
    *,
    clips: int = 8,
    seconds: float = 2.0,
    size: tuple[int, int] = (640, 360),
    swapper: str = "classic",
) -> dict[str, Any]:
    """Wall times of `clips` single runs and of batches with 1 and 2 workers."""
    media = write_demo_media(folder / "media", seconds=seconds, width=size[0], height=size[1])
    inputs = folder / "in"
    inputs.mkdir(parents=True, exist_ok=True)
    for index in range(clips):  # the same clip under 8 names: equal work per job
        shutil.copyfile(media.video, inputs / f"clip{index}.mp4")
    flags = ["--swapper", swapper, "--quiet"]
    source = str(media.source_image)
    singles = folder / "single"
    singles.mkdir(exist_ok=True)
    single_s = sum(
        timing.cli_seconds(["swap", source, str(video), str(singles / video.name), *flags])
        for video in sorted(inputs.iterdir())
    )
    walls, inside = {}, {}
    for workers in (1, 2):
        out = folder / f"batch{workers}"
        walls[workers] = timing.cli_seconds(
            ["batch", source, str(inputs), str(out), "--workers", str(workers), *flags]
        )
        report = json.loads((out / "clipswap-batch.json").read_text())
        if report["counts"].get("done") != clips:
            raise RuntimeError(f"bench batch with {workers} worker(s): {report['counts']}")
        inside[workers] = sum(job["elapsed_s"] for job in report["jobs"])
    return {
        "batch_clips": f"{clips} x {seconds:g} s {size[0]}x{size[1]} {swapper}",
        "batch_single_runs_s": round(single_s, 2),
        "batch_1_worker_s": round(walls[1], 2),
        "batch_2_workers_s": round(walls[2], 2),
        "batch_speedup_2_workers": round(walls[1] / walls[2], 3),
        "batch_overhead_s_per_job": round((walls[1] - single_s) / clips, 3),
        "batch_outside_pipeline_s_per_job": round((walls[1] - inside[1]) / clips, 3),
    }


__all__ = ["batch_figures"]
