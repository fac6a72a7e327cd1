"""`batch --watch`: new videos taken once they stop growing, partial uploads
left alone, a clean stop on SIGTERM with the manifest consistent."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from clipswap_video.batch import BatchOptions, Plan, plan_folder, plan_jobs_file, run_batch
from clipswap_video.batch.watch import SettleClock, poll_seconds, watch_batch
from clipswap_video.errors import ExitCode, InputNotFoundError
from media_fixtures import write_clip


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_file_settles_once_unchanged_for_the_settle_time(tmp_path: Path) -> None:
    clock = FakeClock()
    settle = SettleClock(5.0, clock)
    upload = tmp_path / "a.mp4"
    upload.write_bytes(b"x" * 10)
    assert settle.settled([upload]) == {}  # first seen: its writer may only have paused
    clock.now = 4.9
    assert settle.settled([upload]) == {}
    with open(upload, "ab") as file:  # it grows: the wait starts again
        file.write(b"y")
    clock.now = 9.0
    assert settle.settled([upload]) == {}
    clock.now = 14.0
    assert settle.settled([upload]) == {upload: (11, upload.stat().st_mtime_ns)}
    upload.unlink()
    assert settle.settled([upload]) == {}  # gone: forgotten, no error
    assert poll_seconds(10.0) == 2.0 and poll_seconds(1.0) == 0.25 and poll_seconds(0) == 0.1


def test_watched_plans_may_be_empty(tmp_path: Path, source_image: Path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(InputNotFoundError):
        plan_folder([source_image], tmp_path / "in", tmp_path / "out")
    assert (
        plan_folder([source_image], tmp_path / "in", tmp_path / "out", allow_empty=True).jobs == []
    )
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[[job]]\nsource = "{source_image}"\ninput = "in/*.mp4"\noutput = "out/"\n')
    with pytest.raises(InputNotFoundError):
        plan_jobs_file(jobs)
    assert plan_jobs_file(jobs, allow_empty=True).jobs == []


def test_the_watch_loop_runs_when_a_video_settles_and_forces_only_once(
    tmp_path: Path, source_image: Path
) -> None:
    """In process, with a clock the sleeps advance: a pass runs each time the set
    of settled videos changes; --force redoes the finished video on the first
    pass only; Ctrl-C between passes returns what was done."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    write_clip(inputs / "a.mp4", frames=6)
    options = BatchOptions(overrides=("swap.swapper=none",), workers=1)
    run_batch(plan_folder([source_image], inputs, outputs), options)  # a.mp4 done before
    clock = FakeClock()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds
        if len(sleeps) == 6:  # t = 1.5 s: another video arrives
            write_clip(inputs / "b.mp4", frames=6)
        if len(sleeps) == 16:
            raise KeyboardInterrupt

    def plan_pass() -> Plan:
        return plan_folder([source_image], inputs, outputs, allow_empty=True)

    forced = dataclasses.replace(options, force=True)
    summary = watch_batch(plan_pass, forced, 1.0, sleep=sleep, clock=clock)
    actions = [{Path(job["input"]).name: job["action"] for job in r.jobs} for r in summary.reports]
    assert actions == [{"a.mp4": "force"}, {"a.mp4": "skip: done", "b.mp4": "new"}]
    assert summary.passes == 2 and summary.counts() == {"done": 2, "failed": 0}
    assert (outputs / "b.mp4").is_file()


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.slow
def test_watch_folder_takes_a_slow_copy_once_complete_and_stops_on_sigterm(
    tmp_path: Path, source_image: Path
) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    clip = write_clip(tmp_path / "clip.mp4", frames=30)
    command = [
        sys.executable,
        "-m",
        "clipswap_video",
        "batch",
        str(source_image),
        str(inputs),
        str(outputs),
        "--watch",
        "--swapper",
        "none",
        "--workers",
        "1",
        "--set",
        "batch.settle_seconds=1.5",
    ]
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # A slow copy: four pieces with pauses shorter than the settle time.
        data = clip.read_bytes()
        copy = inputs / "arrived.mp4"
        for start in range(0, len(data), len(data) // 4 + 1):
            with open(copy, "ab") as file:
                file.write(data[start : start + len(data) // 4 + 1])
            time.sleep(0.6)
        # A partial upload under its uploader's temporary name, and one still growing.
        (inputs / "other.mp4.part").write_bytes(data[: len(data) // 2])
        growing = inputs / "growing.mp4"
        deadline = time.monotonic() + 90
        while not (outputs / "arrived.mp4").exists() and time.monotonic() < deadline:
            with open(growing, "ab") as file:
                file.write(b"\0" * 1000)
            time.sleep(0.5)
            assert watcher.poll() is None, watcher.communicate()[1]
        for _ in range(3):  # it keeps growing a while longer: still left alone
            with open(growing, "ab") as file:
                file.write(b"\0" * 1000)
            time.sleep(0.5)
    finally:
        os.kill(watcher.pid, signal.SIGTERM)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == ExitCode.INTERRUPTED, err
    assert "stopped watching: 1 done, 0 failed" in err and "Traceback" not in err
    assert _frames(outputs / "arrived.mp4") == _frames(clip) == 30  # the whole copy
    assert sorted(p.name for p in outputs.iterdir() if p.suffix == ".mp4") == ["arrived.mp4"]
    with sqlite3.connect(outputs / "clipswap-batch.sqlite") as db:
        rows = db.execute("SELECT output, state FROM jobs").fetchall()
    assert [(Path(output).name, state) for output, state in rows] == [("arrived.mp4", "done")]
