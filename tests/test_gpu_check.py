"""`clipswap-video gpu-check`: the CPU rehearsal runs every part end to end
with the keys the GPU run writes (so the check never rots between GPU runs), a
part over its time box is stopped without the others, and the known-faces
detector answers with the demo's ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clipswap_video.bench.gpu_check import _run_part
from clipswap_video.bench.gpu_setup import PartOptions
from clipswap_video.bench.known_faces import KnownFacesDetector
from clipswap_video.demo import write_demo_media
from clipswap_video.media.factory import open_reader

KEYS = [
    "python", "torch", "encoders_open", "nvdec_opens",
    "cuda_tests_passed", "cuda_tests_failed", "cuda_tests_skipped",
    "generator_fp32_b1", "generator_bf16_b2", "generator_fp32_b2_channels_last",
    "job_setup", "job_generator_faces_per_s", "job_analysis_fps",
    "plain_veryfast_fps", "job_veryfast_fps", "job_veryfast_vs_slowest_part", "job_veryfast_wall",
    "plain_medium_fps", "job_medium_fps", "job_medium_vs_slowest_part",
    "job_veryfast_nvdec_fps", "batch_1_workers_fps", "batch_2_workers_fps",
    "batch_2_vs_1_workers", "train_bf16_steps_per_s", "train_fp16_steps_per_s",
]  # fmt: skip


@pytest.mark.slow
def test_the_cpu_rehearsal_runs_every_part(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "clipswap_video",
            "gpu-check",
            "--device",
            "cpu",
            "--small",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(report["parts"].values()) == {"ok"}, report["parts"]
    missing = [key for key in KEYS if key not in report]
    assert not missing, missing
    assert report["cuda_tests_skipped"] >= 10 and report["cuda_tests_failed"] == 0
    for key in ("generator_fp32_b1", "job_veryfast_fps", "batch_2_workers_fps"):
        assert isinstance(report[key], float) and report[key] > 0, key
    assert report["job_veryfast_wall"] in {"generator", "analysis", "decode+encode"}
    assert isinstance(report["train_bf16_steps_per_s"], float)
    assert "job_veryfast_vs_slowest_part" in report["targets"]
    text = (tmp_path / "gpu_check.txt").read_text()
    assert "job_veryfast_fps" in text and "target job_veryfast_vs_slowest_part" in text
    assert "=== train: ok" in (tmp_path / "gpu_check.log").read_text()


def test_a_part_over_its_time_box_is_stopped(tmp_path: Path) -> None:
    part = PartOptions("cpu", True, str(tmp_path / "work"), budget_s=1.0)
    started = time.monotonic()
    status, figures, _ = _run_part("generator", part, tmp_path / "generator.json")
    assert status.startswith("stopped after") and time.monotonic() - started < 15
    assert figures == {} or "generator_parameters" in figures  # what it had measured


def test_known_faces_are_the_demos_ground_truth(tmp_path: Path) -> None:
    media = write_demo_media(tmp_path, seconds=0.5, width=320, height=240, audio=False)
    detector = KnownFacesDetector.for_demo(media)
    truth = json.loads(media.landmarks.read_text())["frames"]
    with open_reader(media.video, quiet=True) as reader:
        frames = [frame.rgb() for frame in reader.frames()]
    for index in (0, 7, 14):
        [face] = detector.detect(frames[index])
        expected = np.array(truth[index]["faces"][0]["landmarks_5"])
        assert np.abs(face.landmarks_5 - expected).max() < 1e-3
    tracked = detector.detect(frames[3])[0].with_(track_id=5)
    [refreshed] = detector.refresh(frames[4], [tracked])
    assert refreshed.track_id == 5
    assert not np.allclose(refreshed.landmarks_5, tracked.landmarks_5)  # the next frame's
    assert detector.detect(np.rot90(frames[3]).copy()) == []  # a picture it does not know
    assert detector.detect(255 - frames[3]) == []
