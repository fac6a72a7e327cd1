"""`clipswap-video gpu-check`: the whole GPU path proven with one command, on a
machine lent for minutes (docs/benchmarks.md, "The GPU check").

Each part runs in a process of its own under its own time box, in this order
(the likeliest failures first): the environment, the `cuda` tests, the
generator's throughput, the whole `--swapper clipswap` job against its parts,
the batch executor with two workers on one GPU, and training steps. A part
over its box is stopped and keeps what it had measured; the rest still run.
DIR gets gpu_check.json (every figure), gpu_check.txt (a short summary) and
gpu_check.log (what the parts printed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clipswap_video.atomic import write_text_atomic
from clipswap_video.bench.gpu_job import PRESETS, TARGET
from clipswap_video.bench.gpu_setup import PartOptions

BUDGET_S = {  # seconds per part; 470 in all, inside the 8 minutes the check may take
    "environment": 20,
    "cuda_tests": 90,
    "generator": 120,
    "job": 120,
    "batch": 70,
    "train": 50,
}
_LOG_TAIL = 6_000  # characters of each part's output kept in the log
SMALL_BUDGET_SCALE = 3
"""The rehearsal's boxes are wider: a busy 2-core CI machine is slower than the
GPU machine's 16 cores at the parts that stay on the CPU."""


@dataclass(frozen=True)
class GpuCheckOptions:
    out: Path
    device: str = "auto"
    small: bool = False
    """The CPU rehearsal's sizes: every part end to end in a few minutes."""


def run_gpu_check(options: GpuCheckOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Runs every part; writes and returns the figures (and each part's status)."""
    options.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"parts": {}}
    log = []
    with tempfile.TemporaryDirectory(prefix="clipswap-gpu-check-") as scratch:
        for name, budget in BUDGET_S.items():
            budget *= SMALL_BUDGET_SCALE if options.small else 1
            say(f"{name} (at most {budget} s)")
            part = PartOptions(options.device, options.small, str(Path(scratch) / name), budget)
            status, figures, output = _run_part(name, part, Path(scratch) / f"{name}.json")
            report["parts"][name] = status
            report |= figures
            log.append(f"=== {name}: {status}\n{output[-_LOG_TAIL:]}")
            say(f"{name}: {status}")
    report["targets"] = targets(report)
    write_text_atomic(options.out / "gpu_check.json", json.dumps(report, indent=1))
    write_text_atomic(options.out / "gpu_check.txt", summary(report))
    write_text_atomic(options.out / "gpu_check.log", "\n".join(log))
    return report


def _run_part(name: str, part: PartOptions, result: Path) -> tuple[str, dict[str, Any], str]:
    """Status ("ok", "failed (exit N)", "stopped after N s"), figures and output of one part."""
    Path(part.work).mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "clipswap_video.bench.gpu_parts", name,
               json.dumps(asdict(part)), str(result)]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=part.budget_s)
        status = "ok" if process.returncode == 0 else f"failed (exit {process.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the part and anything it started
        output, _ = process.communicate()
        status = f"stopped after {round(time.monotonic() - started)} s"
    figures = json.loads(result.read_text()) if result.exists() else {}
    return status, figures, output or ""


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 18's targets against the figures: the job at least 0.85 of its
    slowest part alone; the GPU busy 80 % of the job when the generator is the wall."""
    found: dict[str, Any] = {}
    for preset in PRESETS:
        ratio = report.get(f"job_{preset}_vs_slowest_part")
        if isinstance(ratio, (int, float)):
            found[f"job_{preset}_vs_slowest_part"] = {"value": ratio, "met": ratio >= TARGET}
        busy = report.get(f"job_{preset}_gpu_busy_pct")
        if report.get(f"job_{preset}_wall") == "generator" and isinstance(busy, (int, float)):
            found[f"job_{preset}_gpu_busy_pct"] = {"value": busy, "met": busy >= 80}
    return found


def summary(report: dict[str, Any]) -> str:
    """The short text: each part's status, the headline figures and the targets."""
    lines = [f"gpu-check on {report.get('gpu') or report.get('device', '?')}"]
    lines += [f"  {name}: {status}" for name, status in report["parts"].items()]
    for key in (
        "cuda_tests_passed",
        "cuda_tests_failed",
        "cuda_tests_skipped",
        "job_generator_faces_per_s",
        "job_analysis_fps",
        *[f"{kind}_{preset}_fps" for preset in PRESETS for kind in ("plain", "job")],
        *[f"job_{preset}_wall" for preset in PRESETS],
        "job_veryfast_nvdec_fps",
        "batch_2_vs_1_workers",
        "train_bf16_steps_per_s",
        "train_fp16_steps_per_s",
    ):
        if key in report:
            lines.append(f"  {key}: {report[key]}")
    for failure in report.get("cuda_tests_failures", []):
        lines.append(f"  FAILED {failure}")
    for key, target in report["targets"].items():
        lines.append(f"  target {key}: {target['value']} ({'met' if target['met'] else 'NOT met'})")
    return "\n".join(lines) + "\n"


def all_parts_ran(report: dict[str, Any]) -> bool:
    return all(status == "ok" for status in report["parts"].values()) and not report.get(
        "cuda_tests_failed"
    )


__all__ = ["BUDGET_S", "GpuCheckOptions", "all_parts_ran", "run_gpu_check", "summary", "targets"]
