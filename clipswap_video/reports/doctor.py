"""`clipswap-video doctor`: what this machine offers the pipeline.

Like `python -m av --version --codecs --hwdevices`: versions of Python, torch,
PyAV and FFmpeg; CUDA devices; which encoders and hardware device types exist;
which weight files were found.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

import av

from clipswap_video import __version__
from clipswap_video.errors import AmbiguousWeightsError
from clipswap_video.media.encoder import WELL_KNOWN_VIDEO_ENCODERS
from clipswap_video.weights import find_weight, load_manifest, search_dirs

_ENCODERS = [*WELL_KNOWN_VIDEO_ENCODERS, "aac", "libopus"]


def collect(weights_dir: Path | None = None) -> dict[str, Any]:
    """Everything `doctor` reports, as plain data (the `--json` output)."""
    return {
        "clipswap_video": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": _torch_report(),
        "clip": _clip_report(),
        "enhancers": _enhancer_report(),
        "av": av.__version__,
        "ffmpeg": {name: ".".join(map(str, v)) for name, v in av.library_versions.items()},
        "encoders": {name: name in av.codecs_available for name in _ENCODERS},
        "hw_devices": _hw_devices(),
        "faces": _faces_report(),
        "weights_search": [str(folder) for folder in search_dirs(weights_dir)],
        **_weights_report(weights_dir),
    }


def _weights_report(weights_dir: Path | None) -> dict[str, Any]:
    """The file found for each manifest entry (None: none), and the line of each
    entry whose folder holds two files for it (its path is None too)."""
    found: dict[str, str | None] = {}
    conflicts: dict[str, str] = {}
    by_role: dict[str, list[str]] = {"enhancer": [], "mask": []}
    for entry in load_manifest():
        try:
            path = find_weight(entry, weights_dir)
        except AmbiguousWeightsError as error:
            path, conflicts[entry.name] = None, str(error)
        found[entry.name] = str(path) if path else None
        if path is not None and entry.role in by_role:
            by_role[entry.role].append(entry.file)
    return {"weights": found, "weights_conflicts": conflicts, "found_by_role": by_role}


def _torch_report() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"version": None, "cuda": False, "devices": []}
    cuda = torch.cuda.is_available()
    devices = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    )
    return {
        "version": torch.__version__,
        "cuda": cuda,
        "cuda_version": torch.version.cuda,
        "devices": devices,
    }


def _clip_report() -> dict[str, Any]:
    """open_clip's version and whether torchvision runs on its own compiled ops
    or on the pure-torch fallbacks (the CUDA-only wheel on a CPU torch)."""
    try:
        from clipswap_video.models.torchvision_compat import ensure_torchvision, uses_fallback_ops

        ensure_torchvision()
        import open_clip
        import torchvision
    except ImportError as error:
        return {"open_clip": None, "error": str(error)}
    ops = "pure-torch fallbacks" if uses_fallback_ops() else "compiled"
    return {
        "open_clip": open_clip.__version__,
        "torchvision": torchvision.__version__,
        "torchvision_ops": ops,
    }


def _enhancer_report() -> dict[str, Any]:
    """spandrel's version, and whether CodeFormer's architecture (the optional,
    non-commercial `codeformer` extra) is installed."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for package in ("spandrel", "spandrel_extra_arches"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def _faces_report() -> dict[str, Any]:
    from clipswap_video.errors import MissingWeightsError
    from clipswap_video.faces.dlib_backend import dlib_models_dir

    try:
        dlib_models: str | None = str(dlib_models_dir())
    except MissingWeightsError:
        dlib_models = None
    try:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    except ImportError:
        providers = []
    return {"dlib_models": dlib_models, "onnxruntime_providers": providers}


def _hw_devices() -> list[str]:
    try:
        from av.codec.hwaccel import hwdevices_available
    except ImportError:
        return []
    return sorted(hwdevices_available())


__all__ = ["collect"]
