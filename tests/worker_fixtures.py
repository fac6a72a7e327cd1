"""A detector factory for run_on_devices that reports, from inside each spawned
worker, what the worker was given (threads, allocator settings, current CUDA
device, memory cap), and can fail as a lost GPU does or die as a worker that
the OOM killer picks does. Importable in the workers: spawned processes get
this process's sys.path, tests/ included."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from face_fixtures import GRACE_FACE_BOX, GRACE_LANDMARKS_5

from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import NoFaceError
from clipswap_video.faces import ARCFACE_TEMPLATE_112, Face, unit

GRACE_SHAPE = (600, 512, 3)  # matplotlib's grace_hopper.jpg, the tests' source photo

LOST_GPU = "CUDA error: an illegal memory access was encountered"


class FixedFaceDetector:
    """One frontal face in every video frame, the ArcFace template's five points
    filling its middle; in photos, Grace Hopper's in hers (upright) only."""

    name = "fixed"
    match_distance = 0.5

    def detect(self, image: np.ndarray, *, still: bool = False) -> list[Face]:
        if still and image.shape != GRACE_SHAPE:
            return []
        if still:
            box, points = np.array(GRACE_FACE_BOX), np.array(GRACE_LANDMARKS_5, np.float32)
        else:
            side = 0.8 * min(image.shape[:2])
            corner = (np.array(image.shape[1::-1]) - side) / 2
            box = np.array([*corner, *(corner + side)])
            points = (ARCFACE_TEMPLATE_112 / 112 * side + corner).astype(np.float32)
        return [Face(box=box, score=1.0, landmarks_5=points)]

    def refresh(self, image: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        found = self.detect(image)[0]
        return [found.with_(track_id=face.track_id, embedding=face.embedding) for face in faces]

    def embed(self, image: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        return [face.with_(embedding=unit(np.eye(1, 128)[0])) for face in faces]


def reporting_detector(
    folder: Path,
    settings: FaceSettings,
    *,
    failures: int = 0,
    deaths: int = 0,
    wait_for: int = 0,
    refuse: bool = False,
) -> FixedFaceDetector:
    """Writes folder/<call>-<pid>.json with what this worker process was given,
    then: raises a lost GPU's error for the first `failures` calls, kills its
    own process (SIGKILL) in the first `deaths` calls (both counted over all
    processes; the job has started by then), waits up to a minute until
    `wait_for` reports exist (so that that many workers run at once), raises
    NoFaceError with `refuse` (the job ends before any model loads), else
    returns a FixedFaceDetector. Bind the folder and options with
    functools.partial."""
    import cv2
    import torch

    report: dict[str, object] = {
        "pid": os.getpid(),
        "device": settings.device,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads(),
        "cv2_threads": cv2.getNumThreads(),
        "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
    }
    if settings.device.startswith("cuda"):
        report["current_device"] = torch.cuda.current_device()
        report["memory_fraction"] = torch.cuda.get_per_process_memory_fraction()
    calls = len(list(folder.glob("*.json")))
    partial = folder / f"{calls:02d}-{os.getpid()}.part"
    partial.write_text(json.dumps(report))
    partial.rename(partial.with_suffix(".json"))  # whole, when another process reads it
    if calls < failures:
        raise RuntimeError(LOST_GPU)
    if calls < deaths:
        os.kill(os.getpid(), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while len(list(folder.glob("*.json"))) < wait_for and time.monotonic() < deadline:
        time.sleep(0.05)
    if refuse:
        raise NoFaceError("reported")
    return FixedFaceDetector()


def reports(folder: Path) -> list[dict[str, object]]:
    """The reports, in the order they were written."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
