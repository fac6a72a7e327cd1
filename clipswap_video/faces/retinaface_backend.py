"""The `retinaface` detector: RetinaFace-Res50.h5, the detector FaceDancer and
ClipSwap ship, run in torch (clipswap_video.models.retinaface) on `faces.device`.

Differences from the papers' scripts, on purpose:
- Score threshold: `faces.min_score`, or the backend's MIN_SCORE when it is 0
  (theirs keeps every NMS survivor above the file's threshold, 0.02; "file").
- Size: the frame is shrunk so its longest side is at most `faces.detect_size`
  (0 = full size), but never so far that a face of `faces.min_size` pixels
  falls under the smallest anchor (SMALLEST_FACE) at the detection scale: a
  1080p frame with the default min_size of 24 is detected at 1280 x 720, not
  960 x 540. The graph is fully convolutional and takes any size, so a large
  frame is one pass at that size rather than tiles (tiles would cost the same
  and cut faces at their seams). The scripts divide the width by W // 640
  (1920 px -> 640, 1280 -> 640, 1000 -> 1000), which loses faces under about
  50 px in 1080p; `faces.detect_size = "paper"` follows it. Outputs are
  normalised, so they are mapped back by the frame's own width and height, as
  the scripts do.
- Identity: RetinaFace has no identity head, so `embed` is dlib's 128-d
  descriptor (clipswap_video.faces.dlib_backend) with dlib's match distance;
  the swap itself uses ArcFace, this only decides who is who. dlib's models
  are loaded on the first `embed`, not before: a detector that only detects
  (a GPU check, a bench) needs no dlib files.
- Transfers (docs/benchmarks.md, issue 18): a run of the graph is one upload
  of its batch (on CUDA from a pinned buffer, without waiting) and one copy of
  the candidates back (models/retinaface_post.py); refresh windows are pasted
  on one canvas size, so the graph sees one input shape while faces move.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import cv2
import numpy as np
import torch

from clipswap_video.arrays import RgbImage
from clipswap_video.config_sections import FaceSettings
from clipswap_video.devices import concrete_device, parse_device
from clipswap_video.errors import MissingWeightsError
from clipswap_video.faces.backends import RETINAFACE_WEIGHTS
from clipswap_video.faces.detect import detection_input, keep_faces, score_threshold
from clipswap_video.faces.dlib_backend import DLIB_MATCH_DISTANCE, DlibDetector
from clipswap_video.faces.pose import estimate_roll
from clipswap_video.faces.rolled import transform_face
from clipswap_video.faces.types import Face, box_iou
from clipswap_video.models.retinaface import RetinaFace, load_retinaface
from clipswap_video.models.retinaface_post import Detections
from clipswap_video.weights import find_weight, load_manifest, looked_for

WEIGHT_NAME = RETINAFACE_WEIGHTS
SMALLEST_FACE = 16.0
"""Side of the smallest anchors (stride 8) in detection pixels: smaller faces go unseen."""
REFRESH_FACE_SIZE = 128.0
"""Face side the refresh window is scaled to: well inside the 64-128 px anchors."""
REFRESH_CANVAS = 336
"""Side of the square canvas refresh windows are pasted on, top left, so the graph
sees one input shape while the windows drift by a pixel or two a frame (cuDNN
picks a plan per shape). A window is at most 2.5 x the face + 1 px of rounding,
scaled so the face is 128 px: 320 + 128 / face px, which fits for faces of 8 px
and more. Larger windows round the canvas up to a multiple of 32 px."""
REFRESH_MIN_IOU = 0.3
ROLL_TURN = 15.0
"""Roll (degrees) past which the refresh window is turned to level the face:
below it the landmarks are about as good as those of an upright face, and the
window is left as it is."""


def torch_device(name: str) -> torch.device:
    """`faces.device` as a torch device: auto -> CUDA when torch has it, else the CPU
    (the grammar of clipswap_video.devices, as `swap.device`).

    Raises:
        ConfigValueError: another form, or a CUDA device torch does not see.
    """
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = concrete_device(
        parse_device(name, "faces.device"), cuda_count, key="faces.device", runtime="torch"
    )
    return torch.device(str(device))


class RetinaFaceNetwork(Protocol):
    """A RetinaFace graph, torch (models.retinaface) or ONNX (faces.mobile_retinaface)."""

    @property
    def stored_min_score(self) -> float | None:
        """The score threshold stored with the graph, if it stores one."""
        ...

    def detect(self, images: torch.Tensor, min_score: float) -> list[Detections]: ...


class RetinaFaceDetector:
    """RetinaFace boxes and 5 landmarks, refreshed in a window around each face."""

    name = "retinaface"
    MIN_SCORE = 0.5
    """Lowest probability kept when `faces.min_score` is 0."""

    def __init__(
        self,
        settings: FaceSettings,
        weights_dir: Path | None = None,
        *,
        network: RetinaFace | None = None,
    ) -> None:
        """The detector of `settings`, with RetinaFace-Res50 from the weight folders,
        or `network` as it is (on its own device), for which no file is read:

            network = RetinaFace(RESNET50_SPEC).to("cuda").eval()  # random weights
            detector = RetinaFaceDetector(settings, network=network)
        """
        self.settings = settings
        self._weights_dir = weights_dir
        self.match_distance = settings.match_distance or DLIB_MATCH_DISTANCE
        if network is None:
            self.device, self.model = self._network(settings, weights_dir)
        else:
            self.device, self.model = next(network.parameters()).device, network
        stored = self.model.stored_min_score
        self.min_score = score_threshold(settings.min_score, self.MIN_SCORE, stored)
        self._staging = _Staging(self.device)

    def _network(
        self, settings: FaceSettings, weights_dir: Path | None
    ) -> tuple[torch.device, RetinaFaceNetwork]:
        """The device frames go to, and the graph: RetinaFace-Res50 from the weights."""
        device = torch_device(settings.device)
        return device, load_retinaface(weights_path(weights_dir), device=device)

    def detect(self, image: RgbImage, *, still: bool = False) -> list[Face]:
        """Faces in `image` pixels, best score first."""
        small = detection_input(image, self.settings, SMALLEST_FACE, still=still)
        # Back by the frame's own size over the small one's, as the papers' scripts do.
        x_scale, y_scale = image.shape[1] / small.shape[1], image.shape[0] / small.shape[0]
        to_frame = np.array([[x_scale, 0, 0], [0, y_scale, 0]])
        [found] = self._run([small])
        faces = [transform_face(face, to_frame) for face in found]
        return keep_faces(faces, min_size=self.settings.min_size)

    def refresh(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """Each face re-detected in a window of 2.5 x its size scaled so the face
        is about 128 px, and turned upright when the face's landmarks say it is
        rolled: fresh landmarks between full detections at a fraction of a full
        pass, the windows of all faces in one run of the graph. Faces no longer
        found there (gone, hidden) are left out."""
        windows = [(face, _window(image, face)) for face in faces]
        usable = [(face, window) for face, window in windows if window is not None]
        if not usable:
            return []
        pixels = [window.pixels for _, window in usable]
        side = _canvas_side(max(max(p.shape[:2]) for p in pixels))
        found = self._run(pixels, canvas=(side, side))
        refreshed = []
        for (face, window), in_window in zip(usable, found, strict=True):
            candidates = [transform_face(f, window.to_frame) for f in in_window]
            match = _overlapping(candidates, face)
            if match is not None:
                refreshed.append(match.with_(track_id=face.track_id, embedding=face.embedding))
        return refreshed

    def embed(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """dlib descriptors (68 points measured in each RetinaFace box).

        Raises:
            MissingWeightsError: dlib's model files are not installed (on the first call).
        """
        return self._identity.embed(image, faces)

    @functools.cached_property
    def _identity(self) -> DlibDetector:
        return DlibDetector(self.settings, self._weights_dir)

    def _run(
        self, images: Sequence[RgbImage], canvas: tuple[int, int] | None = None
    ) -> list[list[Face]]:
        """The faces of each image, in its own pixels, from one run of the graph.

        The images are pasted at the top left of black canvases of (height,
        width) `canvas` (default: the largest image's), which keeps each one's
        pixel coordinates.
        """
        height, width = canvas or (
            max(image.shape[0] for image in images),
            max(image.shape[1] for image in images),
        )
        batch = self._staging.batch((len(images), height, width, 3))
        for pasted, image in zip(batch.numpy(), images, strict=True):
            pasted[: image.shape[0], : image.shape[1]] = image
        tensor = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        canvas_size = np.array([width, height], np.float32)  # outputs are normalised to it
        return [_faces(found, canvas_size) for found in self.model.detect(tensor, self.min_score)]


class _Staging:
    """Host batches for the graph: on CUDA views of one pinned buffer, reused, so
    the upload need not wait for the device (a pageable copy does); elsewhere
    plain tensors, which need no copy.

    Reuse is safe: `detect` returns host results, so each run has finished with
    its upload before the next batch is written.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._pinned = torch.empty(0, dtype=torch.uint8)

    def batch(self, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """A zeroed uint8 host tensor of `shape`."""
        if self.device.type != "cuda":
            return torch.zeros(shape, dtype=torch.uint8)
        count = math.prod(shape)
        if self._pinned.numel() < count:
            self._pinned = torch.empty(count, dtype=torch.uint8, pin_memory=True)
        return self._pinned[:count].view(shape).zero_()


def _faces(found: Detections, canvas_size: np.ndarray) -> list[Face]:
    """One image's detections in the pixels of its (width, height) canvas."""
    return [
        Face(
            box=(box * np.tile(canvas_size, 2)).astype(np.float32),
            score=float(score),
            landmarks_5=(points * canvas_size).astype(np.float32),
        )
        for box, points, score in zip(found.boxes, found.landmarks, found.scores, strict=True)
    ]


def _canvas_side(largest: int) -> int:
    """REFRESH_CANVAS, or the largest window's side rounded up to 32 px beyond it."""
    return REFRESH_CANVAS if largest <= REFRESH_CANVAS else -(-largest // 32) * 32


@dataclass(frozen=True)
class _Window:
    """A face's refresh window, and the (2, 3) affine from its pixels to the frame's."""

    pixels: RgbImage
    to_frame: np.ndarray


def _window(image: RgbImage, face: Face) -> _Window | None:
    """The window of 2.5 x the face around it, scaled so the face is about 128 px
    and turned upright when it is rolled; None when too little of it is in the frame."""
    height, width = image.shape[:2]
    centre = (face.box[:2] + face.box[2:]) / 2
    half = 1.25 * max(face.size, 1.0)  # room for the motion since the last frame
    x0, y0 = (max(0, int(v)) for v in centre - half)
    x1, y1 = min(width, int(centre[0] + half)), min(height, int(centre[1] + half))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    scale = REFRESH_FACE_SIZE / max(face.size, 1.0)
    crop = cast(
        RgbImage,
        cv2.resize(
            image[y0:y1, x0:x1],
            (max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        ),
    )
    to_frame = np.array(
        [[(x1 - x0) / crop.shape[1], 0, x0], [0, (y1 - y0) / crop.shape[0], y0]], np.float64
    )
    roll = estimate_roll(face.landmarks_5)
    if abs(roll) <= ROLL_TURN:
        return _Window(crop, to_frame)
    turned, to_crop = _turned_upright(crop, (centre - [x0, y0]) / to_frame.diagonal(), roll)
    return _Window(turned, _compose(to_frame, to_crop))


def _overlapping(found: Sequence[Face], face: Face) -> Face | None:
    """The face of `found` whose box overlaps `face`'s most, if by REFRESH_MIN_IOU:
    not the best-scoring one, as near a crossing the window also holds the other face."""
    if not found:
        return None
    overlap = box_iou(np.stack([f.box for f in found]), face.box)[:, 0]
    best = int(np.argmax(overlap))
    return found[best] if overlap[best] >= REFRESH_MIN_IOU else None


def _turned_upright(crop: RgbImage, centre: np.ndarray, roll: float) -> tuple[RgbImage, np.ndarray]:
    """`crop` turned about `centre` by `roll` degrees counter-clockwise, which
    levels a face rolled by `roll`, and the (2, 3) matrix back to `crop` pixels.

    The window is turned after it is cut and scaled, so the face keeps its
    size and OpenCV's area filter still does any shrinking.
    """
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), roll, 1.0)
    turned = cv2.warpAffine(crop, turn, crop.shape[1::-1], flags=cv2.INTER_LINEAR)
    return cast(RgbImage, turned), cv2.invertAffineTransform(turn)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine matrix of `inner` followed by `outer`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:] + outer[:, 2:]])


def weights_path(weights_dir: Path | None) -> Path:
    """RetinaFace-Res50 (.safetensors when converted, else the .h5) in the weight folders.

    Raises:
        MissingWeightsError: in none of them; the message names where it looked.
        AmbiguousWeightsError: two files for it in the folder that holds it.
    """
    entry = next(entry for entry in load_manifest() if entry.name == WEIGHT_NAME)
    path = find_weight(entry, weights_dir)
    if path is None:
        raise MissingWeightsError(
            f"retinaface detector found no {looked_for(entry, weights_dir)}; "
            f"put the FaceDancer authors' file there (`clipswap-video weights fetch {WEIGHT_NAME} "
            "--url URL`) or use --set faces.detector=dlib"
        )
    return path


__all__ = ["RetinaFaceDetector", "RetinaFaceNetwork", "torch_device", "weights_path"]
