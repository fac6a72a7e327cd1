"""`bench` assembles its figures right: one real run on tiny clips and a narrow
generator (no torch.compile) reports every promised key with the right type,
and every derived figure agrees with the raw figures it reports beside it;
the table renders the targets' verdicts; the CLI's defaults are the full run."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from clipswap_video.bench import TARGETS, BenchOptions, NeuralOptions, run_bench
from clipswap_video.bench.containers import BASE, OUTPUTS
from clipswap_video.bench.models import BATCHES
from clipswap_video.bench.timing import peak_rss_mb
from clipswap_video.cli import main
from clipswap_video.cli.bench import results_table
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config

NARROW = GeneratorSpec(channels=(4, 4, 4, 4, 4, 4), mapping_depth=1, mapping_size=8)
SMALL = BenchOptions(
    seconds=1.0,
    long_seconds=2.0,
    width=640,
    height=360,
    fps=10,  # faces big enough for HOG
    repeats=1,
    neural_seconds=0.1,
    batch_clips=2,
    batch_seconds=0.2,
    batch_swapper="none",
    train_steps=1,
    swap_min_timed_s=0.0,
    enhancer_seconds=0.3,
    mask_seconds=0.2,
    segment_clip_seconds=4.0,
    segment_count=2,
    preview_swapper="none",  # the preview's process, seek and picture: a second each
    neural=NeuralOptions(
        device="cpu",
        generator=NARROW,
        batches=(1,),
        compile=False,
        repeats=1,
        min_timed_s=0.0,
        fault_calls=1,
    ),
)

# Every key of a CPU run with SMALL's options, by type (batch size 1, the CPU's
# automatic one, so channels-last is timed at 1 too).
KEYS: dict[type, set[str]] = {
    str: {
        "clip",
        "generator_device",
        "clipswap_e2e_setup",
        "batch_clips",
        "swappers_files",
        "segments_clip",
        "preview_clip",
    },
    int: {
        "frames",
        "smoothing_frames",
        "track_ids",
        "analysis_detect_every",
        "classic_frames_evaluated",
        "classic_frames_with_faces",
        "classic_frames_swapped",
        "generator_parameters",
        "train_tiny_steps",
    },
    float: {
        "passthrough_s",
        "transcode_s",
        "passthrough_fps",
        "transcode_fps",
        "passthrough_vs_transcode",
        "rss_10s_mb",
        "rss_60s_mb",
        "rss_60s_vs_10s",
        "landmark_noise_px",
        "truth_jitter_px",
        "jitter_raw_px",
        "jitter_smoothed_px",
        "jitter_reduction",
        "error_raw_px",
        "error_smoothed_px",
        "error_change",
        "analysis_fps",
        "analysis_only_fps",
        *(
            f"detect_ms_{detector}_{height}p"
            for detector in ("retinaface_mobile", "dlib")
            for height in (360, 720, 1080)
        ),
        "classic_s",
        "classic_fps",
        "classic_vs_transcode",
        "classic_identity_transfer",
        "classic_dist_to_source",
        "classic_dist_to_target",
        "classic_flicker_ratio",
        "classic_coverage",
        "generator_faces_per_s_b1",
        "generator_faces_per_s_b1_channels_last",
        "generator_page_faults_per_call_default",
        "generator_page_faults_per_call_kept",
        "clipswap_e2e_faces_per_s",
        "clipswap_e2e_generator_faces_per_s",
        "clipswap_e2e_vs_generator",
        "batch_single_runs_s",
        "batch_1_worker_s",
        "batch_2_workers_s",
        "batch_speedup_2_workers",
        "batch_overhead_s_per_job",
        "batch_outside_pipeline_s_per_job",
        "train_tiny_steps_per_s",
        *(
            f"{model}_{figure}"
            for model in ("inswapper", "simswap_256", "hyperswap_1a_256", "uniface_256")
            for figure in ("model_faces_per_s", "e2e_faces_per_s", "e2e_vs_model")
        ),
        *(f"pixel_boost_{factor}_cost" for factor in (2, 3, 4)),
        *(f"enhancer_flicker_{name}" for name in ("none", "fixed", "fresh")),
        "enhancer_flicker_added_fixed",
        "enhancer_flicker_added_fresh",
        "mask_parser_ms_per_face",
        "masks_default_fps",
        "masks_occlusion_region_fps",
        "masks_occlusion_region_cost",
        "masks_occluder_flicker_smoothed",
        "masks_occluder_flicker_raw",
        "segments_whole_s",
        "segments_split_s",
        "segments_speedup",
        "segments_join_s",
        "segments_warmup_fraction",
        "segments_work_added_fraction",
        *(f"encode_{name}_s" for name in OUTPUTS),
        *(f"encode_{name}_vs_mp4" for name in OUTPUTS if name != BASE),
        "preview_s",
        "preview_full_run_s",
        "preview_vs_full_run",
        "preview_10x_s",
        "preview_10x_vs_1x",
    },
}
INFINITE_AS_NONE = {"classic_background_psnr_db"}  # a background equal to the re-encode's
MAY_BE_NEGATIVE = {
    "error_change",
    "batch_overhead_s_per_job",
    "batch_outside_pipeline_s_per_job",
    "enhancer_flicker_added_fixed",
    "enhancer_flicker_added_fresh",
    "masks_occlusion_region_cost",
    "segments_work_added_fraction",
}
MAY_BE_ZERO = {
    "truth_jitter_px",
    "classic_identity_transfer",
    # the test's tiny generator may free no block over glibc's mmap threshold
    "generator_page_faults_per_call_default",
    "generator_page_faults_per_call_kept",
}


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """One real bench run on SMALL's options (about 40 s alone on 2 idle cores)."""
    return run_bench(SMALL)


@pytest.mark.slow
def test_every_key_with_its_type_and_a_sane_value(results: dict[str, Any]) -> None:
    assert set(results) == set().union(*KEYS.values(), INFINITE_AS_NONE)
    for kind, keys in KEYS.items():
        for key in keys:
            assert type(results[key]) is kind, key
    for key in INFINITE_AS_NONE:
        assert results[key] is None or (type(results[key]) is float and results[key] > 0), key
    numbers = KEYS[int] | KEYS[float]
    for key in numbers - MAY_BE_NEGATIVE:
        assert results[key] >= 0 if key in MAY_BE_ZERO else results[key] > 0, key
    assert all(math.isfinite(results[key]) for key in numbers)
    assert -1 <= results["jitter_reduction"] <= 1 and results["classic_identity_transfer"] <= 1
    assert set(TARGETS) <= set(results)  # a target whose key is gone would never be judged
    json.dumps(results)  # `--json` prints it as is


@pytest.mark.slow
def test_the_figures_describe_the_run_they_were_asked_for(results: dict[str, Any]) -> None:
    assert results["clip"] == "640x360 10 fps h264+aac"
    assert results["frames"] == 10  # 1 s at 10 fps
    assert results["smoothing_frames"] <= 10 and results["classic_frames_evaluated"] <= 10
    assert results["track_ids"] == 1
    _, shapes = generator_config(NARROW)  # the narrow generator, not the full-size one
    assert results["generator_parameters"] == sum(
        math.prod(shape) for weights in shapes.values() for _, shape in weights
    )
    assert results["generator_device"] == "cpu fp32"
    assert results["clipswap_e2e_setup"].startswith("batch 1, channels_last False, ")
    assert results["batch_clips"] == "2 x 0.2 s 640x360 none"
    assert results["train_tiny_steps"] == 1


def _agrees(
    reported: float, digits: int, formula: Callable[..., float], *parts: tuple[float, int | None]
) -> bool:
    """Whether `reported` (rounded to `digits`) can be `formula` of `parts`, each a
    reported (value, digits it was rounded to; None: exact): the formulas here are
    monotonic in each part, so the corners of the rounding box bound them."""
    spans = [
        (value,) if d is None else (value - 0.5 * 10**-d, value + 0.5 * 10**-d)
        for value, d in parts
    ]
    values = [formula(*corner) for corner in itertools.product(*spans)]
    slack = 0.5 * 10**-digits + 1e-9
    return min(values) - slack <= reported <= max(values) + slack


@pytest.mark.slow
def test_derived_figures_follow_from_the_raw_ones(results: dict[str, Any]) -> None:
    r, wrong = results, []

    def check(key: str, digits: int, formula: Callable[..., float], *parts: Any) -> None:
        if not _agrees(r[key], digits, formula, *parts):
            wrong.append((key, r[key], parts))

    frames = (r["frames"], None)
    check(
        "passthrough_vs_transcode",
        3,
        lambda p, t: p / t,
        (r["passthrough_s"], 3),
        (r["transcode_s"], 3),
    )
    check("passthrough_fps", 1, lambda n, p: n / p, frames, (r["passthrough_s"], 3))
    check("transcode_fps", 1, lambda n, t: n / t, frames, (r["transcode_s"], 3))
    check(
        "rss_60s_vs_10s",
        3,
        lambda long, short: long / short,
        (r["rss_60s_mb"], 1),
        (r["rss_10s_mb"], 1),
    )
    check(
        "jitter_reduction",
        3,
        lambda smooth, raw: 1 - smooth / raw,
        (r["jitter_smoothed_px"], 3),
        (r["jitter_raw_px"], 3),
    )
    check(
        "error_change",
        3,
        lambda smooth, raw: smooth / raw - 1,
        (r["error_smoothed_px"], 3),
        (r["error_raw_px"], 3),
    )
    check("classic_fps", 1, lambda n, c: n / c, frames, (r["classic_s"], 3))
    check("preview_full_run_s", 1, lambda fps: 20 / fps, (r["classic_fps"], 1))  # 2 s at 10 fps
    check(
        "preview_vs_full_run",
        4,
        lambda preview, full: preview / full,
        (r["preview_s"], 2),
        (r["preview_full_run_s"], 1),
    )
    check(
        "preview_10x_vs_1x",
        3,
        lambda tenfold, once: tenfold / once,
        (r["preview_10x_s"], 2),
        (r["preview_s"], 2),
    )
    check("classic_vs_transcode", 3, lambda c, t: c / t, (r["classic_s"], 3), (r["transcode_s"], 3))
    check(
        "clipswap_e2e_vs_generator",
        3,
        lambda job, alone: job / alone,
        (r["clipswap_e2e_faces_per_s"], 2),
        (r["clipswap_e2e_generator_faces_per_s"], 2),
    )
    check(
        "batch_speedup_2_workers",
        3,
        lambda one, two: one / two,
        (r["batch_1_worker_s"], 2),
        (r["batch_2_workers_s"], 2),
    )
    check(
        "batch_overhead_s_per_job",
        3,
        lambda one, singles: (one - singles) / 2,
        (r["batch_1_worker_s"], 2),
        (r["batch_single_runs_s"], 2),
    )
    for model in ("inswapper", "simswap_256", "hyperswap_1a_256", "uniface_256"):
        check(
            f"{model}_e2e_vs_model",
            3,
            lambda job, alone: job / alone,
            (r[f"{model}_e2e_faces_per_s"], 2),
            (r[f"{model}_model_faces_per_s"], 2),
        )
    for name in ("fixed", "fresh"):
        check(
            f"enhancer_flicker_added_{name}",
            3,
            lambda restored, alone: restored / alone - 1,
            (r[f"enhancer_flicker_{name}"], 3),
            (r["enhancer_flicker_none"], 3),
        )
    check(
        "masks_occlusion_region_cost",
        3,
        lambda plain, masked: plain / masked - 1,
        (r["masks_default_fps"], 2),
        (r["masks_occlusion_region_fps"], 2),
    )
    assert not wrong  # every mis-wired figure at once
    assert r["analysis_only_fps"] >= r["analysis_fps"]  # the same frames without the decode


def _rendered_rows(results: dict[str, Any]) -> dict[str, str]:
    out = StringIO()
    Console(file=out, width=200, color_system=None).print(results_table(results))
    rows = {}
    for line in out.getvalue().splitlines():
        cells = [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
        if len(cells) == 3:
            rows[cells[0]] = f"{cells[1]} | {cells[2]}".strip()
    return rows


def test_the_table_judges_each_target() -> None:
    results = {
        "clip": "test",
        "frames": 10,  # no target
        "passthrough_vs_transcode": 1.1,  # <= 1.10, on the line
        "rss_60s_vs_10s": 1.2,  # <= 1.10
        "jitter_reduction": 0.6,  # >= 0.60, on the line
        "analysis_fps": 24.9,  # >= 25.0
        "classic_fps": 30.0,  # >= 20.0
        "clipswap_e2e_vs_generator": 0.5,  # >= 0.85
    }
    assert _rendered_rows(results) == {
        "measure": "value | target",
        "frames": "10 |",
        "passthrough_vs_transcode": "1.1 | <= 1.1 ok",
        "rss_60s_vs_10s": "1.2 | <= 1.1 missed",
        "jitter_reduction": "0.6 | >= 0.6 ok",
        "analysis_fps": "24.9 | >= 25.0 missed",
        "classic_fps": "30.0 | >= 20.0 ok",
        "clipswap_e2e_vs_generator": "0.5 | >= 0.85 missed",
    }


def test_the_cli_defaults_are_the_full_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """`clipswap-video bench` (make bench) measures the full-size generator with
    torch.compile, batches 1, 4 and 8, 8 batch clips and 40 training steps."""
    asked: list[BenchOptions] = []

    def record(options: BenchOptions, say: Any = None) -> dict[str, Any]:
        asked.append(options)
        return {"clip": "none"}

    monkeypatch.setattr("clipswap_video.bench.run_bench", record)
    assert main(["bench", "--json"]) == 0
    assert asked == [BenchOptions()]
    neural = asked[0].neural
    assert neural.generator == GeneratorSpec() and neural.compile and neural.batches == BATCHES
    assert BATCHES == (1, 4, 8) and GeneratorSpec().channels == (64, 128, 256, 512, 512, 512)
    assert (asked[0].seconds, asked[0].long_seconds, asked[0].width, asked[0].height) == (
        10.0,
        60.0,
        1280,
        720,
    )
    assert (asked[0].batch_clips, asked[0].train_steps, neural.min_timed_s) == (8, 40, 2.0)


def test_peak_rss_reports_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        peak_rss_mb([str(tmp_path / "no.jpg"), str(tmp_path / "no.mp4"), str(tmp_path / "o.mp4")])
