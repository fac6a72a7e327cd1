"""The parts of the GPU check, each run in a process of its own by
clipswap_video.bench.gpu_check (so that a part over its time box can be
stopped without losing the others):

    python -m clipswap_video.bench.gpu_parts PART OPTIONS_JSON RESULT_JSON

A part writes its figures into RESULT_JSON as it measures them: a part stopped
for time keeps what it had. `small` shrinks every size for the CPU rehearsal
(the same code and keys, in seconds instead of minutes).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import torch

from clipswap_video.bench.gpu_env import environment
from clipswap_video.bench.gpu_job import batch_part, job_part
from clipswap_video.bench.gpu_setup import PartOptions, Results, generator_spec
from clipswap_video.bench.gpu_train import training_steps_per_s
from clipswap_video.bench.models import NeuralOptions, generator_throughput
from clipswap_video.models import create_model
from clipswap_video.swap.device import resolve_device


def environment_part(options: PartOptions, results: Results) -> None:
    results.update(environment(resolve_device(options.device)))


def cuda_tests_part(options: PartOptions, results: Results) -> None:
    """`pytest -m cuda` on the repository's tests (each test's outcome; on a
    machine without CUDA every one is skipped)."""
    tests = Path(__file__).resolve().parents[2] / "tests"
    if not tests.is_dir():
        results["cuda_tests"] = "no tests folder: run from a clone of the repository"
        return
    # Only the files that hold cuda tests: collecting the whole suite imports every module.
    files = [str(f) for f in sorted(tests.glob("test_*.py")) if "mark.cuda" in f.read_text()]
    report = results.path.with_suffix(".xml")
    command = [sys.executable, "-m", "pytest", "-m", "cuda", *files, "-p", "no:cacheprovider",
               "-q", "-o", "addopts=", f"--junitxml={report}", "--timeout", "120"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=options.budget_s - 5
    )
    sys.stderr.write(done.stdout[-20_000:] + done.stderr[-5_000:])
    if not report.exists():
        results["cuda_tests"] = f"pytest did not run (exit {done.returncode})"
        return
    outcomes: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            outcomes["failed"] += 1
            message = (problem.get("message") or "").splitlines()[:1]
            failures.append(f"{case.get('name')}: {message[0][:200] if message else ''}")
        elif case.find("skipped") is not None:
            outcomes["skipped"] += 1
        else:
            outcomes["passed"] += 1
    results.update({f"cuda_tests_{key}": count for key, count in outcomes.items()})
    results["cuda_tests_failures"] = failures


def generator_part(options: PartOptions, results: Results) -> None:
    """Faces per second of the generator at each batch size and precision;
    then at the engine's batch with channels-last, then compiled (slowest last:
    a part stopped for time loses the least)."""
    device = resolve_device(options.device)
    spec = generator_spec(options.small)
    model = create_model(spec, device=device)
    results["generator_parameters"] = sum(p.numel() for p in model.parameters())
    neural = NeuralOptions(device=str(device), generator=spec, repeats=2, min_timed_s=0.5)
    if options.small:  # one timed call a figure: the rehearsal proves the code, not the speed
        neural = dataclasses.replace(neural, repeats=1, min_timed_s=0.0)
    precisions = options.precisions(device)
    for precision in precisions:
        run = dataclasses.replace(neural, precision=precision)
        for batch in options.generator_batches:
            results[f"generator_{precision}_b{batch}"] = generator_throughput(model, batch, run)
    batch = options.engine_batch
    for precision in precisions:
        run = dataclasses.replace(neural, precision=precision)
        layout = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        results[f"generator_{precision}_b{batch}_channels_last"] = generator_throughput(
            layout, batch, run, memory_format=torch.channels_last
        )
    model = model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    if options.small:
        results["generator_compiled"] = "not run with --small (minutes of compiling on a CPU)"
        return
    for precision in reversed(precisions):  # bf16 first: the likely choice on a GPU
        run = dataclasses.replace(neural, precision=precision)
        compiled = torch.compile(model, dynamic=False)
        started = time.perf_counter()
        generator_throughput(compiled, batch, run, repeats=1)  # the first call compiles
        results[f"generator_{precision}_b{batch}_compile_s"] = round(
            time.perf_counter() - started, 1
        )
        results[f"generator_{precision}_b{batch}_compiled"] = generator_throughput(
            compiled, batch, run
        )


def train_part(options: PartOptions, results: Results) -> None:
    """Steps per second of `train default` (full-size networks, random frozen
    ones; `small`: the tiny config) in bf16 and fp16, after its face cache is made."""
    device = resolve_device(options.device)
    for precision in ("bf16", "fp16"):
        if precision == "fp16" and device.type != "cuda":
            results[f"train_{precision}_steps_per_s"] = "needs CUDA"
            continue
        results[f"train_{precision}_steps_per_s"] = training_steps_per_s(options, precision)


PARTS: dict[str, Callable[[PartOptions, Results], None]] = {
    "environment": environment_part,
    "cuda_tests": cuda_tests_part,
    "generator": generator_part,
    "job": job_part,
    "batch": batch_part,
    "train": train_part,
}


def main(arguments: list[str]) -> None:
    name, options_json, result_path = arguments
    options = PartOptions(**json.loads(options_json))
    results = Results(Path(result_path))
    PARTS[name](options, results)


if __name__ == "__main__":
    main(sys.argv[1:])


__all__ = ["PARTS", "main"]
