"""One worker process per device: device lists, jobs spread over workers, a
failing job reported without stopping the others, a dead worker's job failed."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from clipswap_video.config import load_settings
from clipswap_video.errors import ConfigValueError, ExitCode
from clipswap_video.workers import (
    JobOutcome,
    VideoJob,
    _fail_dead_workers,
    expand_devices,
    run_on_devices,
)
from media_fixtures import write_clip


def test_device_lists() -> None:
    assert expand_devices("auto", cuda_count=0) == ["cpu"]
    assert expand_devices("auto", cuda_count=2) == ["cuda:0", "cuda:1"]
    assert expand_devices("cuda*2,cpu", cuda_count=2) == ["cuda:0", "cuda:1", "cpu"]
    assert expand_devices("cpu*3", cuda_count=0) == ["cpu"] * 3
    with pytest.raises(ConfigValueError, match="has 1 GPU"):
        expand_devices("cuda:1", cuda_count=1)
    with pytest.raises(ConfigValueError, match="not one of"):
        expand_devices("tpu:0", cuda_count=0)
    with pytest.raises(ConfigValueError, match="bad device count"):
        expand_devices("cpu*x", cuda_count=0)


@pytest.mark.slow
def test_jobs_run_on_two_workers_and_a_bad_one_is_reported(
    source_image: Path, tmp_path: Path
) -> None:
    clips = [write_clip(tmp_path / f"in{index}.mp4", frames=12) for index in range(3)]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    jobs = [VideoJob((source_image,), clip, tmp_path / f"out{n}.mp4") for n, clip in
            enumerate([clips[0], broken, clips[1], clips[2]])]  # fmt: skip
    seen: list[JobOutcome] = []
    settings = load_settings(overrides=["swap.swapper=none"])
    outcomes = run_on_devices(jobs, settings, ["cpu", "cpu"], on_outcome=seen.append)
    assert [outcome.job for outcome in outcomes] == jobs and len(seen) == 4
    assert [outcome.ok for outcome in outcomes] == [True, False, True, True]
    assert outcomes[1].exit_code == ExitCode.INPUT_UNREADABLE and "broken.mp4" in str(
        outcomes[1].error
    )
    assert not (tmp_path / "out1.mp4").exists()
    for outcome in outcomes[::2]:
        assert outcome.frames == 12 and outcome.device == "cpu"
        with av.open(str(outcome.job.output)) as container:
            assert container.streams.video[0].frames == 12


class _DeadWorker:
    name, exitcode = "clipswap-cuda:1", -9

    def is_alive(self) -> bool:
        return False


def test_a_dead_worker_fails_only_its_job(tmp_path: Path) -> None:
    job = VideoJob((tmp_path / "a.jpg",), tmp_path / "in.mp4", tmp_path / "out.mp4")
    running = {"clipswap-cuda:1": (3, job)}
    outcomes: dict[int, JobOutcome] = {}
    _fail_dead_workers([_DeadWorker()], running, outcomes, None)
    assert not running and outcomes[3].exit_code == ExitCode.INTERNAL
    assert "worker on cuda:1 died (exit code -9)" in str(outcomes[3].error)
