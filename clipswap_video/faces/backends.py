"""The face detectors by name, and building the one the settings ask for.

The table names each backend's class as "module:Class", imported only when
that backend is built: listing the detectors loads neither dlib, onnxruntime
nor torch, and the backends depend on the interface (faces.detect) while
nothing depends on them. `DetectorName` in clipswap_video.config is the one
list of names; a test keeps this table's keys equal to it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from clipswap_video.config import DetectorName, FaceSettings
from clipswap_video.errors import ConfigValueError
from clipswap_video.faces.detect import FaceDetector

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


def create_detector(settings: FaceSettings, weights_dir: Path | None = None) -> FaceDetector:
    """The backend named by `settings.detector`, loaded and ready.

    Raises:
        ConfigValueError: unknown backend name.
        MissingWeightsError / CorruptWeightsError: the backend's model files.
    """
    entry = DETECTORS.get(settings.detector)
    if entry is None:
        known = ", ".join(list_detectors())
        raise ConfigValueError(
            f"unknown face detector {settings.detector!r}; choose one of {known}"
        )
    module, _, name = entry.partition(":")
    detector_class: DetectorClass = getattr(importlib.import_module(module), name)
    return detector_class(settings, weights_dir)


__all__ = ["DETECTORS", "create_detector", "list_detectors"]
