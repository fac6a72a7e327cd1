"""Long videos split at keyframes: the split from the demuxer's index, the
warm-up, the join that equals a job run whole (pts, dts, audio packets,
frames), segment checkpoints that survive kill -9, and the errors."""

from __future__ import annotations

import json
import sqlite3
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import CliRun
from face_fixtures import grace_actor, line_path, write_actor_clip
from process_fixtures import kill_9_when

from clipswap_video.batch import run as batch_run
from clipswap_video.batch.jobs import JobOutcome, Segment, VideoJob
from clipswap_video.batch.manifest import Manifest
from clipswap_video.config import Settings, load_settings
from clipswap_video.errors import CorruptInputError, ExitCode
from clipswap_video.media import Frame, VideoReader, probe
from clipswap_video.media.join import SegmentJoiner
from clipswap_video.media.output_file import OutputOptions
from clipswap_video.media.segments import Span, split_at_keyframes
from clipswap_video.pipeline import run_video
from clipswap_video.swap import SwapStage
from media_fixtures import CLOSED_GOP, OPEN_GOP, rgb_frames, write_clip, write_gop_clip


def _video_packets(path: Path) -> list[tuple[int | None, int | None, bool]]:
    """(pts, dts, keyframe) of every video packet, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe) for p in container.demux(stream) if p.size]


def _pts(path: Path) -> list[int]:
    """The video packets' presentation times, in order of time."""
    return sorted(pts for pts, _, _ in _video_packets(path) if pts is not None)


def _packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        if not streams:
            return []
        return [(p.pts, bytes(p)) for p in container.demux(streams) if p.size]


def _span_pts(path: Path, span: Span) -> tuple[list[int], list[int]]:
    """What a reader given `span` decodes: every frame, and those in the span."""
    with VideoReader(path, span=span) as reader:
        decoded = [frame.pts for frame in reader.frames()]
    start = span.start_pts if span.start_pts is not None else -1
    return decoded, [pts for pts in decoded if pts >= start]


@pytest.mark.parametrize("gop", [CLOSED_GOP, OPEN_GOP], ids=["closed-gop", "open-gop"])
def test_split_on_keyframes_and_every_frame_in_one_span(tmp_path: Path, gop: str) -> None:
    clip = write_gop_clip(tmp_path / "gop.mp4", gop)
    packets = _video_packets(clip)
    keyframes = sorted(pts for pts, _, key in packets if key)
    assert len(keyframes) == 6
    spans = split_at_keyframes(clip, 0, every_s=2.0, warmup_s=1.0)
    step = keyframes[1]  # 1 s of the stream's clock
    assert [(s.start_pts, s.end_pts) for s in spans] == [
        (None, 2 * step),
        (2 * step, 4 * step),
        (4 * step, None),
    ]
    assert [s.seek_pts for s in spans] == [None, step, 3 * step]  # 1 s of warm-up
    assert [s.frames for s in spans] == [20, 20, 20]
    with VideoReader(clip) as reader:
        whole = [frame.pts for frame in reader.frames()]
    joined = []
    for span in spans:
        decoded, kept = _span_pts(clip, span)
        assert len(kept) == span.frames
        if span.seek_pts is not None:
            assert decoded[0] == span.seek_pts  # decoding starts at the warm-up keyframe
            assert len(decoded) == span.frames + 10  # ten warm-up frames
        joined += kept
    assert joined == whole  # each frame once, the leading B-frames of an open GOP too


def test_an_open_gop_has_frames_shown_before_their_keyframe(tmp_path: Path) -> None:
    """The open-GOP case above is real: B-frames after a keyframe in the file are
    shown before it, and the span before theirs decodes them."""
    packets = _video_packets(write_gop_clip(tmp_path / "open.mp4", OPEN_GOP))
    positions = [index for index, (_, _, key) in enumerate(packets) if key][1:]
    assert any(packets[at + 1][0] < packets[at][0] for at in positions)  # type: ignore[operator]


def test_split_of_variable_frame_rate_short_and_raw_videos(tmp_path: Path) -> None:
    # Variable rate: 40 frames at 10 fps then 40 at 20 fps; the cut follows the clock.
    stamps = [index * 100 for index in range(40)] + [4000 + index * 50 for index in range(40)]
    vfr = write_gop_clip(tmp_path / "vfr.mkv", CLOSED_GOP, frames=80, pts=stamps)
    spans = split_at_keyframes(vfr, 0, every_s=2.5, warmup_s=0.0)
    seconds = [s.start_pts / 1000 for s in spans[1:] if s.start_pts is not None]
    assert seconds == [3.0, 5.5] and sum(s.frames for s in spans) == 80
    assert spans[1].seek_pts == spans[1].start_pts  # no warm-up: the boundary itself
    short = write_clip(tmp_path / "short.mp4", frames=20)
    assert split_at_keyframes(short, 0, every_s=2.0, warmup_s=1.0) == [Span(None, None, None, 20)]
    raw = tmp_path / "raw.h264"  # no timestamps: nothing to seek by
    with av.open(str(write_gop_clip(tmp_path / "long.mp4", CLOSED_GOP))) as source:
        with av.open(str(raw), "w", format="h264") as out:
            stream = out.add_stream_from_template(source.streams.video[0])
            for packet in source.demux(source.streams.video[0]):
                if packet.size:
                    packet.stream = stream
                    out.mux(packet)
    assert len(split_at_keyframes(raw, 0, every_s=2.0, warmup_s=1.0)) == 1


def test_a_seek_that_lands_past_the_span_start_moves_back(tmp_path: Path) -> None:
    """As an MPEG-TS seek lands: after the span's first frame. No frame is lost."""
    clip = write_gop_clip(tmp_path / "gop.mp4", CLOSED_GOP)
    keyframe = split_at_keyframes(clip, 0, 2.0, 0.0)[1].start_pts
    assert keyframe is not None
    late = Span(start_pts=keyframe - 1024, end_pts=None, seek_pts=keyframe, frames=None)
    with VideoReader(clip, span=late) as reader:
        decoded = [frame.pts for frame in reader.frames()]
    assert decoded[0] < keyframe - 1024 and keyframe - 1024 in decoded


def _settings(*overrides: str) -> Settings:
    return load_settings(None, ["video.crf=0", *overrides])


def test_warm_up_frames_are_swapped_but_not_encoded_nor_counted(
    tmp_path: Path, source_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = tmp_path / "walk.mp4"
    walk = line_path((200, 180), (440, 180), 3.0, 0.5)
    write_actor_clip(clip, [grace_actor(walk)], seconds=3, fps=10)
    with av.open(str(clip)) as container:
        base = container.streams.video[0].time_base
    second = round(1 / base)
    span = Span(start_pts=2 * second, end_pts=None, seek_pts=second, frames=10)
    seen: list[int] = []
    swapped: list[int] = []
    push = SwapStage.push

    def spy(stage: SwapStage, frame: Frame) -> list[Frame]:
        swapped.append(frame.pts)
        return push(stage, frame)

    monkeypatch.setattr(SwapStage, "push", spy)
    settings = _settings("swap.swapper=classic", "batch.segment_warmup_seconds=1")
    result = run_video(
        source_image,
        clip,
        tmp_path / "part.mp4",
        settings,
        stages=[lambda frame: seen.append(frame.pts)],
        measure_quality=True,
        span=span,
    )
    assert result.frames == 10 and seen == sorted(seen) and seen[0] == 2 * second
    # Decoding starts at the keyframe at or before the seek point, the clip's
    # only one, at 0; swapping 1 s (the warm-up) before the span's first frame.
    assert swapped[0] == second and len(swapped) == 20 and swapped[10:] == seen
    assert result.coverage is not None and result.coverage.frames == 10
    assert result.quality is not None and set(result.quality["seconds"]) == {"2"}
    assert _pts(tmp_path / "part.mp4") == seen  # the input's own pts
    assert _video_packets(tmp_path / "part.mp4")[0][2]  # a keyframe first
    assert _packets(tmp_path / "part.mp4", "audio") == []  # the video alone
    first = rgb_frames(tmp_path / "part.mp4")[0]
    assert np.abs(first.astype(int) - rgb_frames(clip)[20]).max() > 40  # the face changed


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255**2 / error) if error > 0 else float("inf")


def _face_flicker(frames: list[np.ndarray], box: tuple[int, int, int, int]) -> list[float]:
    x0, y0, x1, y1 = box
    return [
        float(np.abs(b[y0:y1, x0:x1].astype(int) - a[y0:y1, x0:x1]).mean())
        for a, b in zip(frames, frames[1:], strict=False)
    ]


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s, 10 fps, keyframes every second with B-frames, AAC audio and subtitles."""
    folder = tmp_path_factory.mktemp("walk")
    plain = folder / "plain.mp4"
    write_actor_clip(
        plain, [grace_actor(line_path((160, 180), (480, 180), 6.0, 0.5))], seconds=6, fps=10
    )
    clip = folder / "in" / "walk.mkv"
    clip.parent.mkdir()
    with av.open(str(plain)) as source, av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "12", "x264-params": CLOSED_GOP}
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        subtitle = out.add_mux_stream("subrip")
        for frame in source.decode(video=0):
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        tone = np.zeros((2, 1024), np.float32)
        for index in range(6 * 48000 // 1024):
            chunk = av.AudioFrame.from_ndarray(tone + index / 1000, format="fltp", layout="stereo")
            chunk.sample_rate, chunk.pts = 48000, index * 1024
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
        for index, text in enumerate(["one", "two", "three"]):
            packet = av.Packet(text.encode())
            packet.stream, packet.time_base = subtitle, Fraction(1, 1000)
            packet.pts = packet.dts = 1000 + index * 2000
            packet.duration = 500
            out.mux(packet)
    return clip


def _batch(cli: CliRun, source: Path, inputs: Path, outputs: Path, *sets: str) -> dict[str, Any]:
    options = [item for key in sets for item in ("--set", key)]
    code, err = cli(
        "batch", source, inputs, outputs, "--swapper", "classic", "--workers", "2",
        "--set", "video.crf=0", *options,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    return json.loads((outputs / "clipswap-batch.json").read_text())


@pytest.mark.slow
def test_a_split_job_equals_the_job_run_whole(
    cli: CliRun, source_image: Path, walk: Path, tmp_path: Path
) -> None:
    whole, split = tmp_path / "whole.mkv", tmp_path / "split" / "walk.mkv"
    run_video(source_image, walk, whole, _settings("swap.swapper=classic"))  # as one job does
    split_report = _batch(
        cli, source_image, walk.parent, tmp_path / "split", "batch.segment_seconds=2"
    )
    [row] = split_report["jobs"]
    assert [s["state"] for s in row["segments"]] == ["done"] * 3
    assert [s["frames"] for s in row["segments"]] == [20, 20, 20] and row["frames"] == 60
    assert not (tmp_path / "split" / "walk.mkv.segments").exists()
    # The same pts and dts (each segment starts on a keyframe of its own), and
    # every other stream copied once, packet for packet.
    ours, theirs = _video_packets(split), _video_packets(whole)
    assert [packet[:2] for packet in ours] == [packet[:2] for packet in theirs]
    assert all(ours[index][2] for index in (0, 20, 40))
    assert _packets(split, "audio") == _packets(walk, "audio") == _packets(whole, "audio")
    assert _packets(split, "subtitle") == _packets(whole, "subtitle") != []
    with av.open(str(split)) as container:
        assert "synthetic" in container.metadata.get("COMMENT", "")
    # The pictures: the first segment is the whole job's to the bit; later ones
    # differ by the tracker's own landmark noise (its refreshed landmarks depend
    # on where it looked), which no warm-up removes: see docs/batch.md.
    pictures = rgb_frames(split)
    psnr = [_psnr(a, b) for a, b in zip(pictures, rgb_frames(whole), strict=True)]
    assert min(psnr[:20]) == float("inf")
    assert min(psnr) >= 40 and float(np.median(psnr[20:])) >= 45, psnr
    # No seam: the face-box flicker across a boundary is no higher than inside segments.
    flicker = _face_flicker(pictures, (100, 60, 560, 320))
    seams = [flicker[19], flicker[39]]  # frame 19 -> 20 and 39 -> 40
    inside = [value for index, value in enumerate(flicker) if index not in (19, 39)]
    assert max(seams) <= max(inside)
    assert row["quality"]["frames"] == [10] * 6 and row["frames_swapped"] == 60


@pytest.mark.slow
def test_kill_9_keeps_finished_segments_and_never_joins_a_half_written_one(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    clip = write_gop_clip(
        inputs / "long.mp4", CLOSED_GOP, frames=150, fps=30, size=(320, 240), audio=True
    )
    options = ["--swapper", "none", "--preset", "veryslow", "--workers", "1"]
    options += ["--set", "batch.segment_seconds=1", "--set", "batch.segment_warmup_seconds=0.5"]
    command = [sys.executable, "-m", "clipswap_video", "batch", source_image, inputs, outputs]
    manifest = outputs / "clipswap-batch.sqlite"

    def two_done_one_running() -> bool:
        states = [row["state"] for row in _segments(manifest)]
        return states.count("done") >= 2 and "running" in states

    kill_9_when([*command, *options], two_done_one_running)
    killed = _segments(manifest)
    done = [row for row in killed if row["state"] == "done"]
    assert not (outputs / "long.mp4").exists()
    for row in killed:
        if row["state"] != "done":  # never a finished-looking file for these
            assert not (outputs / "long.mp4.segments" / f"{row['number']:04d}.mp4").exists()

    code, err = cli(*command[3:], *options)
    assert code == ExitCode.OK, err
    resumed = _segments(manifest)
    assert len(resumed) == 5 and all(row["state"] == "done" for row in resumed)
    for row in done:  # not redone
        assert resumed[row["number"]] == row
    for row in killed:  # the one killed mid-way ran again, the rest once
        expected = {"done": 1, "running": 2, "queued": 1}[row["state"]]
        assert resumed[row["number"]]["attempts"] == expected
    output = outputs / "long.mp4"
    with VideoReader(clip) as reader:
        assert _pts(output) == [frame.pts for frame in reader.frames()]
    assert _packets(output, "audio") == _packets(clip, "audio")
    assert not list(outputs.glob("**/*.partial.*"))


def _segments(manifest: Path) -> list[dict[str, Any]]:
    try:
        with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM segments ORDER BY number")]
    except sqlite3.OperationalError:  # not created yet
        return []


def test_segments_encoded_differently_are_not_joined(tmp_path: Path, source_image: Path) -> None:
    clip = write_gop_clip(tmp_path / "in.mp4", CLOSED_GOP)
    info = probe(clip)
    spans = split_at_keyframes(clip, 0, 2.0, 0.0)
    first, second = tmp_path / "0000.mp4", tmp_path / "0001.mp4"
    plain = load_settings(None, ["swap.swapper=none"])
    run_video(source_image, clip, first, plain, span=spans[0])
    other = load_settings(None, ["swap.swapper=none", "video.crf=40", "video.preset=slow"])
    run_video(source_image, clip, second, other, span=spans[1])
    output = tmp_path / "out.mp4"
    for second_file, error in [(second, "other parameters"), (first, "starts at or before")]:
        with pytest.raises(CorruptInputError, match=error):
            with SegmentJoiner(
                output, source=info, first_segment=first, options=OutputOptions("x")
            ) as joiner:
                joiner.add(first)
                joiner.add(second_file)  # encoded otherwise; the same frames twice
        assert not output.exists() and not list(tmp_path.glob("*.partial.*"))


def test_a_resumed_split_keeps_done_segments_only_when_nothing_changed(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "m.sqlite")
    output = tmp_path / "out.mp4"
    spans = [Span(None, 10, None, 10), Span(10, None, 5, 10)]
    try:
        assert not manifest.plan_segments(output, spans, keep_done=True)
        job = VideoJob((), tmp_path / "in.mp4", output)
        manifest.finish(
            JobOutcome(job, "cpu", frames=10, segment=Segment(job, 0, spans[0], output))
        )
        assert manifest.plan_segments(output, spans, keep_done=True)
        assert [row["state"] for row in manifest.segments(output)] == ["done", "queued"]
        moved = [Span(None, 12, None, 12), Span(12, None, 5, 8)]  # another split
        assert not manifest.plan_segments(output, moved, keep_done=True)
        assert [row["state"] for row in manifest.segments(output)] == ["queued", "queued"]
        manifest.plan_segments(output, [], keep_done=False)  # runs whole now
        assert manifest.segments(output) == []
    finally:
        manifest.close()


def test_a_batch_stopped_before_the_join_joins_without_encoding_again(
    cli: CliRun, source_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    write_gop_clip(inputs / "clip.mp4", CLOSED_GOP, audio=True)
    command = ["batch", source_image, inputs, outputs, "--swapper", "none", "--workers", "2"]
    command += ["--set", "batch.segment_seconds=2"]

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C as the last segment is recorded

    monkeypatch.setattr(batch_run, "finish_split_job", stopped)
    code, err = cli(*command)
    assert code == ExitCode.INTERRUPTED, err
    manifest = outputs / "clipswap-batch.sqlite"
    assert [row["state"] for row in _segments(manifest)] == ["done"] * 3
    assert not (outputs / "clip.mp4").exists()
    monkeypatch.undo()

    code, err = cli(*command)
    assert code == ExitCode.OK, err
    assert [row["attempts"] for row in _segments(manifest)] == [1, 1, 1]  # joined, not redone
    assert _pts(outputs / "clip.mp4") == _pts(inputs / "clip.mp4")
    assert not (outputs / "clip.mp4.segments").exists()
