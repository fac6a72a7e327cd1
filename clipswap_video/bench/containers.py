"""What each kind of output costs (`clipswap-video bench`): the demo clip passed
through (`--swapper none`) into every container of media/containers.py's table
and the VFX codecs, each against the same job into an .mp4 (H.264)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clipswap_video.bench import timing
from clipswap_video.config import load_settings
from clipswap_video.demo import DemoMedia
from clipswap_video.pipeline import run_video

OUTPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mp4_h264": ("out.mp4", ()),
    "mov_h264": ("out.mov", ()),
    "mkv_h264": ("out.mkv", ()),
    "ts_h264": ("out.ts", ()),
    "webm_vp9": ("out.webm", ()),
    "webm_av1": ("out.webm", ("video.webm_codec=libsvtav1",)),
    "avi_mpeg4": ("out.avi", ()),
    "mov_prores_hq": ("out.mov", ("video.codec=prores_ks",)),
    "mkv_ffv1": ("out.mkv", ("video.codec=ffv1",)),
}
"""Each figure's name: its output file and the settings that make it."""
BASE = "mp4_h264"


def container_figures(clip: DemoMedia, folder: Path, repeats: int) -> dict[str, Any]:
    """Seconds per output kind (best of `repeats`), and each over the .mp4's."""
    folder.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for name, (file, overrides) in OUTPUTS.items():
        settings = load_settings(overrides=["swap.swapper=none", *overrides])
        output = folder / file

        def job(settings: Any = settings, output: Path = output) -> object:
            return run_video(clip.source_image, clip.video, output, settings)

        seconds[name] = min(timing.seconds(job) for _ in range(repeats))
        output.unlink()
    base = seconds[BASE]
    figures: dict[str, Any] = {f"encode_{name}_s": round(s, 3) for name, s in seconds.items()}
    figures.update(
        {f"encode_{name}_vs_mp4": round(s / base, 3) for name, s in seconds.items() if name != BASE}
    )
    return figures


__all__ = ["BASE", "OUTPUTS", "container_figures"]
