"""The face detectors by name, and building the one the settings ask for.

The table names each backend's class as "module:Class", imported only when
that backend is built: listing the detectors loads neither dlib, onnxruntime
nor torch, and the backends depend on the interface (faces.detect) while
nothing depends on them. `DetectorName` in clipswap_video.config_sections is
the one list of names; a test keeps this table's keys equal to it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path

from clipswap_video.config_sections import DetectorName, FaceSettings, SwapBackendName
from clipswap_video.errors import ConfigValueError
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.weights import find_weight, load_manifest

RETINAFACE_WEIGHTS = "retinaface_res50.official"
"""The manifest entry `auto` looks for when the clipswap swapper runs."""

DETECTORS: dict[DetectorName, str] = {
    "dlib": "clipswap_video.faces.dlib_backend:DlibDetector",
    "insightface": "clipswap_video.faces.insightface_backend:InsightfaceDetector",
    "retinaface": "clipswap_video.faces.retinaface_backend:RetinaFaceDetector",
    "retinaface_mobile": "clipswap_video.faces.mobile_retinaface:MobileRetinaFaceDetector",
}
"""Detector name -> "module:Class"; the class is called as Class(settings, weights_dir)."""

DetectorClass = Callable[[FaceSettings, Path | None], FaceDetector]


def list_detectors() -> list[DetectorName]:
    """The detector names, sorted (imports no backend)."""
    return sorted(DETECTORS)


def resolve_detector(
    settings: FaceSettings, swapper: SwapBackendName | None, weights_dir: Path | None = None
) -> tuple[DetectorName, str]:
    """The backend `faces.detector` stands for, and why, for a job with `swapper`
    (None: no swap, as in `faces`): auto is retinaface when the clipswap swapper
    runs and RetinaFace-Res50.h5 is found, else retinaface_mobile."""
    choice = settings.detector
    if choice != "auto":
        return choice, "faces.detector"
    if swapper == "clipswap":
        entry = next(e for e in load_manifest() if e.name == RETINAFACE_WEIGHTS)
        found = find_weight(entry, weights_dir)
        if found is not None:
            return "retinaface", f"{found} found: the generator was trained on its alignment"
    return "retinaface_mobile", "auto, the bundled detector"


def create_detector(settings: FaceSettings, weights_dir: Path | None = None) -> FaceDetector:
    """The backend named by `settings.detector` (auto: as `resolve_detector` without
    a swapper), loaded and ready.

    Raises:
        ConfigValueError: unknown backend name.
        MissingWeightsError / CorruptWeightsError: the backend's model files.
    """
    name, _ = resolve_detector(settings, None, weights_dir)
    entry = DETECTORS.get(name)
    if entry is None:
        known = ", ".join(list_detectors())
        raise ConfigValueError(f"unknown face detector {name!r}; choose one of {known}")
    module, _, class_name = entry.partition(":")
    detector_class: DetectorClass = getattr(importlib.import_module(module), class_name)
    return detector_class(dataclasses.replace(settings, detector=name), weights_dir)


__all__ = [
    "DETECTORS",
    "RETINAFACE_WEIGHTS",
    "create_detector",
    "list_detectors",
    "resolve_detector",
]
