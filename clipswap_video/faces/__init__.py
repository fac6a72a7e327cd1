"""Face analysis: detection, landmarks, tracking, alignment, selection, source identity.

Knows nothing of swap models; the pipeline wires it in (DESIGN.md, "Faces").
"""

from clipswap_video.faces.align import (
    ARCFACE_TEMPLATE_112,
    alignment_matrices,
    arcface_template,
    estimate_similarity,
    invert_affine,
    warp_back,
    warp_crops,
)
from clipswap_video.faces.analysis import FaceAnalyzer
from clipswap_video.faces.detect import (
    FaceDetector,
    create_detector,
    list_detectors,
    register_detector,
)
from clipswap_video.faces.identity import SourceIdentity, detect_still, source_identity
from clipswap_video.faces.select import FaceSelection, FaceSelector, parse_selection
from clipswap_video.faces.track import FaceTracker
from clipswap_video.faces.types import Face, box_iou, embedding_distance, unit

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "Face",
    "FaceAnalyzer",
    "FaceDetector",
    "FaceSelection",
    "FaceSelector",
    "FaceTracker",
    "SourceIdentity",
    "alignment_matrices",
    "arcface_template",
    "box_iou",
    "create_detector",
    "detect_still",
    "embedding_distance",
    "estimate_similarity",
    "invert_affine",
    "list_detectors",
    "parse_selection",
    "register_detector",
    "source_identity",
    "unit",
    "warp_back",
    "warp_crops",
]
