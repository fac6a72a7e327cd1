"""Long videos as several units of work: which jobs split, their segments in
the manifest, and the join that makes the output once every segment is done.

A job whose input is longer than `batch.segment_seconds` is split at keyframes
(media.segments). Each segment is encoded by whichever worker is free into
`<output>.segments/NNNN.mp4` (video only, written as a partial file and renamed,
so a half-written one never looks finished) and recorded done in the manifest;
a batch that dies keeps its done segments and runs only the rest. The driver
joins the files without re-encoding (media.join) and copies the input's other
streams once, then removes the folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipswap_video.batch.jobs import JobOutcome, Segment, VideoJob
from clipswap_video.batch.manifest import Manifest
from clipswap_video.config import Settings
from clipswap_video.errors import ClipswapError, CorruptInputError, OutputUnwritableError
from clipswap_video.media import probe
from clipswap_video.media.containers import muxer_takes, resolve_encoder
from clipswap_video.media.join import SegmentJoiner
from clipswap_video.media.output_file import OutputOptions
from clipswap_video.media.segments import split_at_keyframes

_SEGMENT_CONTAINERS = ((".mp4", "mp4"), (".mov", "mov"), (".mkv", "matroska"))


def segment_folder(output: Path) -> Path:
    return output.with_name(output.name + ".segments")


def segment_file(output: Path, number: int, settings: Settings) -> Path:
    """MP4 keeps the encoder's pts and dts exactly (Matroska drops the dts and
    rounds the clock to milliseconds); what MP4 cannot hold (ProRes, DNxHD)
    goes into MOV, and what neither holds into Matroska."""
    encoder = resolve_encoder(output, settings.video)  # the whole job's, not the segment's
    held = (suffix for suffix, muxer in _SEGMENT_CONTAINERS if muxer_takes(muxer, encoder))
    suffix = next(held, ".mkv")
    return segment_folder(output) / f"{number:04d}{suffix}"


def plan_segments(
    job: VideoJob, settings: Settings, manifest: Manifest, *, keep_done: bool
) -> list[Segment] | None:
    """The segments of `job` still to run (recorded in the manifest); None when
    it runs whole. `keep_done`: a resumed or retried job keeps the segments a
    batch finished before, if the split is the same and their files are there."""
    spans = []
    every = settings.batch.segment_seconds
    if every > 0 and job.time_range is None:  # a range is one job: a shot, not a film
        info = probe(job.input)
        if info.video.duration_s is None or info.video.duration_s > every:
            spans = split_at_keyframes(
                job.input, info.video.index, every, settings.batch.segment_warmup_seconds
            )
    if len(spans) < 2:
        manifest.plan_segments(job.output, [], keep_done=False)
        return None
    folder = segment_folder(job.output)
    if not manifest.plan_segments(job.output, spans, keep_done=keep_done):
        shutil.rmtree(folder, ignore_errors=True)  # another split's files
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise OutputUnwritableError(f"cannot create folder {folder}: {error.strerror}") from None
    todo = []
    for row in manifest.segments(job.output):
        file = segment_file(job.output, row["number"], settings)
        if row["state"] == "done" and file.is_file():
            continue
        if row["state"] == "done":  # its file was removed since
            manifest.requeue_segment(job.output, row["number"])
        todo.append(Segment(job, row["number"], spans[row["number"]], file))
    return todo


def segment_outcome_ends_job(manifest: Manifest, outcome: JobOutcome) -> bool:
    """Records a segment's end; whether it was its job's last one to run."""
    manifest.finish(outcome)
    states = [row["state"] for row in manifest.segments(outcome.job.output)]
    return all(state in ("done", "failed") for state in states)


def finish_split_job(job: VideoJob, settings: Settings, manifest: Manifest) -> JobOutcome:
    """The job's outcome once none of its segments runs: the first failed
    segment's error, or the output joined from them."""
    rows = manifest.segments(job.output)
    devices = ",".join(sorted({row["device"] for row in rows if row["device"]}))
    elapsed = sum(row["elapsed_s"] or 0.0 for row in rows)
    failed = [row for row in rows if row["state"] != "done"]
    if failed:
        first = failed[0]
        return JobOutcome(
            job,
            devices,
            elapsed_s=elapsed,
            error=f"segment {first['number'] + 1} of {len(rows)}: {first['error']}",
            exit_code=first["exit_code"],
        )
    try:
        frames = _join(job, settings, manifest, rows)
    except ClipswapError as error:
        return JobOutcome(
            job, devices, elapsed_s=elapsed, error=str(error), exit_code=error.exit_code
        )
    shutil.rmtree(segment_folder(job.output), ignore_errors=True)
    coverage = _summed([_loaded(row["coverage"]) for row in rows])
    return JobOutcome(
        job,
        devices,
        frames=frames,
        elapsed_s=elapsed,
        coverage=coverage,
        quality=_quality(rows, settings),
    )


def _join(
    job: VideoJob, settings: Settings, manifest: Manifest, rows: Sequence[dict[str, Any]]
) -> int:
    """Writes the output from the segment files; a segment that cannot be
    joined is marked failed, so that a retry encodes it again."""
    from clipswap_video.faces.coverage import FaceCoverage
    from clipswap_video.pipeline import check_coverage, disclosure_tag

    files = [segment_file(job.output, row["number"], settings) for row in rows]
    frames = 0
    with SegmentJoiner(
        job.output,
        source=probe(job.input),
        first_segment=files[0],
        options=OutputOptions(
            disclosure=disclosure_tag(settings),
            audio=settings.audio,
            tolerate_errors=settings.input.tolerate_errors,
        ),
    ) as joiner:
        for row, file in zip(rows, files, strict=True):
            try:
                frames += joiner.add(file)
            except CorruptInputError as error:
                manifest.fail_segment(job.output, row["number"], str(error), error.exit_code)
                raise
        coverage = _summed([_loaded(row["coverage"]) for row in rows])
        if coverage is not None:  # what a whole job checks before its output appears
            check_coverage(FaceCoverage(**coverage), settings)
        joiner.finish()
    return frames


def _quality(rows: Sequence[dict[str, Any]], settings: Settings) -> dict[str, Any] | None:
    records = [_loaded(row["quality"]) for row in rows]
    if not all(records):
        return None
    from clipswap_video.swap.quality import quality_summary

    return quality_summary(records, settings.batch)


def _summed(parts: list[Any]) -> dict[str, int] | None:
    if not parts or any(part is None for part in parts):
        return None
    return {key: sum(part[key] for part in parts) for key in parts[0]}


def _loaded(text: str | None) -> Any:
    return json.loads(text) if text else None


__all__ = [
    "finish_split_job",
    "plan_segments",
    "segment_file",
    "segment_folder",
    "segment_outcome_ends_job",
]
