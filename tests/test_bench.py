"""`bench` runs end to end on tiny clips and reports every promised key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipswap_video.cli import main


@pytest.mark.slow
def test_bench_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--json", "--work-dir", str(tmp_path), "--seconds", "1", "--long-seconds", "2",
            "--neural-seconds", "0.5", "--batch-clips", "2", "--batch-seconds", "0.5"]  # fmt: skip
    assert main([*args, "--width", "640", "--height", "360"]) == 0  # faces big enough for HOG
    results = json.loads(capsys.readouterr().out)
    for key in ("passthrough_vs_transcode", "rss_60s_vs_10s", "passthrough_fps", "rss_10s_mb"):
        assert results[key] > 0
    assert results["frames"] == 30
    assert 0.3 < results["rss_60s_vs_10s"] < 3  # same program, two lengths: same ballpark
    for key in (
        "jitter_raw_px",
        "jitter_smoothed_px",
        "error_raw_px",
        "analysis_fps",
        "classic_fps",
        "classic_vs_transcode",
        "classic_background_psnr_db",
        "generator_faces_per_s_b1",
        "generator_faces_per_s_b8",
        "generator_faces_per_s_b1_channels_last",  # the CPU's automatic batch size
        "generator_faces_per_s_b1_compiled",
        "clipswap_e2e_faces_per_s",
        "clipswap_e2e_vs_generator",
        "batch_single_runs_s",
        "batch_1_worker_s",
        "batch_2_workers_s",
        "batch_speedup_2_workers",
        "train_tiny_steps_per_s",
    ):
        assert results[key] > 0
    assert results["batch_clips"] == "2 x 0.5 s 640x360 classic"


def test_peak_rss_reports_failure(tmp_path: Path) -> None:
    from clipswap_video.bench import peak_rss_mb

    with pytest.raises(RuntimeError, match="does not exist"):
        peak_rss_mb([str(tmp_path / "no.jpg"), str(tmp_path / "no.mp4"), str(tmp_path / "o.mp4")])
