"""Bench figures of `clipswap-video preview`: the time to a preview at 90 % of
the long clip, as a whole process (interpreter, models, seek, warm-up, swap,
picture), against a full run of that clip projected from the classic swap's
measured frames per second; and the same preview on the clip repeated ten
times, at the same place of its last copy, so that both decode the same frames
and only the length differs (a preview seeks: its time should not grow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from clipswap_video.bench import timing
from clipswap_video.demo import DemoMedia
from clipswap_video.media import probe

COPIES = 10


def preview_figures(
    clip: DemoMedia, folder: Path, *, classic_fps: float, swapper: str = "classic"
) -> dict[str, Any]:
    """Preview time at 90 % of `clip` and of `clip` x 10, and the projected full run."""
    folder.mkdir(parents=True, exist_ok=True)
    video = probe(clip.video).video
    length = video.duration_s or 0.0
    longer = repeated(clip.video, folder / "repeated.mp4", COPIES)
    at = 0.9 * length
    once = _preview_s(clip.source_image, clip.video, at, swapper, folder / "once.png")
    tenfold = _preview_s(
        clip.source_image, longer, (COPIES - 1) * length + at, swapper, folder / "tenfold.png"
    )
    full = (video.frame_count or 0) / classic_fps
    return {
        "preview_clip": f"{length:g} s and {COPIES * length:g} s, {swapper}, "
        f"at {at:g} s and {(COPIES - 1) * length + at:g} s",
        "preview_s": round(once, 2),
        "preview_full_run_s": round(full, 1),
        "preview_vs_full_run": round(once / full, 4),
        "preview_10x_s": round(tenfold, 2),
        "preview_10x_vs_1x": round(tenfold / once, 3),
    }


def repeated(video: Path, output: Path, copies: int) -> Path:
    """The video stream of `video` `copies` times end to end, its packets copied
    (no encode: a 10-minute 720p file in a second); each copy starts with the
    keyframe the original starts with."""
    with av.open(str(output), "w") as out:
        stream = None
        for copy in range(copies):
            with av.open(str(video)) as source:
                original = source.streams.video[0]
                stream = stream or out.add_stream_from_template(original)
                shift = copy * (original.duration or 0)
                for packet in source.demux(original):
                    if not packet.size:  # the demuxer's end marker
                        continue
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts = None if packet.dts is None else packet.dts + shift
                    packet.stream = stream
                    out.mux(packet)
    return output


def _preview_s(source: Path, video: Path, at: float, swapper: str, png: Path) -> float:
    arguments = ["preview", str(source), str(video), "--at", f"{at:.3f}", "--out", str(png)]
    return timing.cli_seconds([*arguments, "--swapper", swapper, "--quiet"])


__all__ = ["COPIES", "preview_figures", "repeated"]
