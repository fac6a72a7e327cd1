"""Swap figures for `clipswap-video bench`: the classic swapper end to end on
the demo clip, timed against the plain transcode of the same run, and the
`evaluate` metrics of its output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clipswap_video.bench import timing
from clipswap_video.config import load_settings
from clipswap_video.demo import DemoMedia
from clipswap_video.pipeline import run_video
from clipswap_video.reports.evaluate import evaluate


def swap_figures(clip: DemoMedia, folder: Path, transcode_s: float, frames: int) -> dict[str, Any]:
    """Classic swap fps, its time over `transcode_s`, and the quality metrics."""
    settings = load_settings(overrides=["swap.swapper=classic"])
    output = folder / "classic.mp4"
    elapsed = timing.seconds(lambda: run_video(clip.source_image, clip.video, output, settings))
    # The same keys on every machine: no ArcFace figures, which need its weights.
    metrics = evaluate(clip.source_image, clip.video, output, settings, arcface=False)
    return {
        "classic_s": round(elapsed, 3),
        "classic_fps": round(frames / elapsed, 1),
        "classic_vs_transcode": round(elapsed / transcode_s, 3),
        **{f"classic_{key}": value for key, value in metrics.items()},
    }


__all__ = ["swap_figures"]
