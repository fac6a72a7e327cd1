"""Bench figures of the batch command: a folder of short clips swapped as
separate CLI runs, then as one batch with 1 and with 2 worker processes; and
one long clip as one job, then split into segments.

Every run is a fresh `python -m clipswap_video` process, as a user would start
it, so the single runs pay interpreter start and model loading once per video
and a batch pays them once per worker. Timed back to back in one bench run.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import av

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


def segment_figures(
    folder: Path,
    *,
    seconds: float = 60.0,
    segments: int = 4,
    size: tuple[int, int] = (640, 360),
    fps: int = 30,
    swapper: str = "classic",
    workers: int = 2,
) -> dict[str, Any]:
    """One `seconds` clip (a keyframe every 2 s) as one batch job, then split
    into `segments`, each with `workers` workers: the wall times, the join's
    time, and what splitting adds: warm-up frames and the join, as fractions."""
    media = write_demo_media(
        folder / "media",
        seconds=seconds,
        width=size[0],
        height=size[1],
        fps=fps,
        keyframe_seconds=2.0,
    )
    inputs = folder / "in"
    inputs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(media.video, inputs / "long.mp4")
    flags = ["--swapper", swapper, "--quiet", "--workers", str(workers)]
    source = str(media.source_image)
    length = seconds / segments
    walls, manifests = {}, {}
    for name, every in (("whole", 0.0), ("split", length)):
        out = folder / name
        walls[name] = timing.cli_seconds(
            [
                "batch",
                source,
                str(inputs),
                str(out),
                *flags,
                "--set",
                f"batch.segment_seconds={every}",
            ]
        )
        manifests[name] = out / "clipswap-batch.sqlite"
    job, parts = _split_record(manifests["split"])
    if len(parts) < 2 or job["state"] != "done":
        raise RuntimeError(f"bench segments: {len(parts)} segment(s), job {job['state']}")
    whole_job, _ = _split_record(manifests["whole"])
    join_s = job["finished_at"] - max(part["finished_at"] for part in parts)
    warmup = _warmup_frames(inputs / "long.mp4", parts)
    work = sum(part["elapsed_s"] for part in parts)
    return {
        "segments_clip": f"{seconds:g} s {size[0]}x{size[1]} {fps} fps {swapper}, "
        f"{len(parts)} segments",
        "segments_whole_s": round(walls["whole"], 2),
        "segments_split_s": round(walls["split"], 2),
        "segments_speedup": round(walls["whole"] / walls["split"], 3),
        "segments_join_s": round(join_s, 3),
        "segments_warmup_fraction": round(warmup / job["frames"], 4),
        "segments_work_added_fraction": round((work + join_s) / whole_job["elapsed_s"] - 1, 4),
    }


def _split_record(manifest: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one job's manifest row and its segments' rows."""
    with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        [job] = [dict(row) for row in db.execute("SELECT * FROM jobs")]
        parts = [dict(row) for row in db.execute("SELECT * FROM segments ORDER BY number")]
    return job, parts


def _warmup_frames(video: Path, parts: list[dict[str, Any]]) -> int:
    """Frames decoded and swapped before the segments' own first frames."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        times = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
    spans = [(part["seek_pts"] or 0, part["start_pts"]) for part in parts if part["start_pts"]]
    return sum(sum(1 for pts in times if seek <= pts < start) for seek, start in spans)
