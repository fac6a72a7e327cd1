"""Face analysis: detection, landmarks, tracking, alignment, selection, source identity.

Knows nothing of swap models; the pipeline wires it in (docs/architecture.md).

The public names are loaded on first use (PEP 562): `faces.align` imports
torch and the backends import dlib or onnxruntime, hundreds of MB that a job
which never looks at a face (`--swapper none`, `probe`) should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "align": [
        "ARCFACE_TEMPLATE_112",
        "AlignmentName",
        "alignment_matrices",
        "alignment_template",
        "arcface_template",
        "crop_grid_theta",
        "estimate_similarity",
        "insightface_template",
        "invert_affine",
        "sample_crops",
        "warp_back",
        "warp_crops",
    ],
    "analysis": ["FaceAnalyzer"],
    "backends": ["create_detector", "list_detectors"],
    "detect": ["FaceDetector"],
    "identity": ["SourceIdentity", "detect_still", "source_identity"],
    "select": ["FaceSelection", "FaceSelector", "parse_selection"],
    "track": ["FaceTracker"],
    "types": ["Face", "box_iou", "embedding_distance", "unit"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from clipswap_video.faces.align import (
        ARCFACE_TEMPLATE_112,
        AlignmentName,
        alignment_matrices,
        alignment_template,
        arcface_template,
        crop_grid_theta,
        estimate_similarity,
        insightface_template,
        invert_affine,
        sample_crops,
        warp_back,
        warp_crops,
    )
    from clipswap_video.faces.analysis import FaceAnalyzer
    from clipswap_video.faces.backends import create_detector, list_detectors
    from clipswap_video.faces.detect import FaceDetector
    from clipswap_video.faces.identity import SourceIdentity, detect_still, source_identity
    from clipswap_video.faces.select import FaceSelection, FaceSelector, parse_selection
    from clipswap_video.faces.track import FaceTracker
    from clipswap_video.faces.types import Face, box_iou, embedding_distance, unit


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_MODULE_OF[name]}")
    return getattr(module, name)


__all__ = [
    "ARCFACE_TEMPLATE_112",
    "AlignmentName",
    "Face",
    "FaceAnalyzer",
    "FaceDetector",
    "FaceSelection",
    "FaceSelector",
    "FaceTracker",
    "SourceIdentity",
    "alignment_matrices",
    "alignment_template",
    "arcface_template",
    "box_iou",
    "create_detector",
    "crop_grid_theta",
    "detect_still",
    "embedding_distance",
    "estimate_similarity",
    "insightface_template",
    "invert_affine",
    "list_detectors",
    "parse_selection",
    "sample_crops",
    "source_identity",
    "unit",
    "warp_back",
    "warp_crops",
]
