"""A face detector for benchmarks on clips whose faces are known: it pays a real
detector's cost and answers with the ground truth.

    detector = KnownFacesDetector.for_demo(media, cost=retinaface_detector)

The GPU check times whole jobs with random-weight networks, which find no faces.
The demo clip's landmarks are known exactly (clipswap_video.demo), so this
detector runs `cost` (RetinaFace-Res50 on the GPU) on every image and window the
job asks about, drops what it finds, and returns the known faces of the picture:
the job does the work of a real one, and swaps real faces. Pictures are recognised
by a small grey thumbnail (the nearest of the known ones, if near enough), so
frames decoded by NVDEC or the CPU, and still photos, all match; a picture it does
not know (a quarter-turned frame, another photo) has no faces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.demo import DemoMedia
from clipswap_video.faces import Face, FaceDetector, box_iou
from clipswap_video.media.factory import open_reader
from clipswap_video.media.image import read_image

GRACE_HOPPER_5 = ((214.0, 233.0), (307.0, 232.0), (262.0, 288.0), (222.0, 337.0), (300.0, 335.0))
"""The 5 landmarks (eyes, nose, mouth corners) of the demo's source photo,
matplotlib's grace_hopper.jpg (512 x 600), measured once with dlib."""
_THUMBNAIL = (48, 27)  # width, height: enough to tell the frames of a moving face apart
_MAX_DISTANCE = 12.0  # mean grey-level difference of the same picture decoded another way
_ONE_PERSON = np.full(8, 8**-0.5, np.float32)  # every known face is the same person


@dataclass(frozen=True)
class KnownPicture:
    """A picture's thumbnail, its size and its faces."""

    thumbnail: np.ndarray
    shape: tuple[int, int]
    faces: list[Face]


def thumbnail(image: RgbImage) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, _THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)


class KnownFacesDetector:
    """Known faces for known pictures, at the cost of `cost` (None: no cost)."""

    name = "known"
    match_distance = 0.5

    def __init__(self, known: Sequence[KnownPicture], cost: FaceDetector | None = None) -> None:
        self.known, self.cost = list(known), cost
        self._thumbnails = np.stack([picture.thumbnail for picture in self.known])

    @classmethod
    def for_demo(cls, media: DemoMedia, cost: FaceDetector | None = None) -> KnownFacesDetector:
        """The demo's source photo (Grace Hopper) and every frame of its clip,
        as decoded here, with the clip's ground-truth landmarks."""
        source = read_image(media.source_image)
        known = [KnownPicture(thumbnail(source), source.shape[:2], [_face(GRACE_HOPPER_5)])]
        truth = json.loads(media.landmarks.read_text())["frames"]
        with open_reader(media.video, quiet=True) as reader:
            for frame, entry in zip(reader.frames(), truth, strict=True):
                faces = [_face(face["landmarks_5"], face["box"]) for face in entry["faces"]]
                image = frame.rgb()
                known.append(KnownPicture(thumbnail(image), image.shape[:2], faces))
        return cls(known, cost)

    def detect(self, image: RgbImage, *, still: bool = False) -> list[Face]:
        if self.cost is not None:
            self.cost.detect(image, still=still)
        return self._faces_of(image)

    def refresh(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        if self.cost is not None and faces:
            self.cost.refresh(image, faces)
        known = self._faces_of(image)
        refreshed = []
        for face in faces:
            overlaps = [box_iou(face.box, candidate.box) for candidate in known]
            if overlaps and max(overlaps) > 0.3:
                best = known[int(np.argmax(overlaps))]
                refreshed.append(best.with_(track_id=face.track_id, embedding=face.embedding))
        return refreshed

    def embed(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        return [face.with_(embedding=_ONE_PERSON) for face in faces]

    def _faces_of(self, image: RgbImage) -> list[Face]:
        distances = np.abs(self._thumbnails - thumbnail(image)).mean(axis=(1, 2))
        nearest = int(np.argmin(distances))
        picture = self.known[nearest]
        if picture.shape != image.shape[:2] or distances[nearest] > _MAX_DISTANCE:
            return []
        return list(picture.faces)


def _face(landmarks: Sequence[Sequence[float]], box: Sequence[float] | None = None) -> Face:
    points = np.asarray(landmarks, np.float32)
    if box is None:  # a square around the landmarks, as a detector's box would be
        centre, side = points.mean(axis=0), 1.6 * float(np.ptp(points[:, 0]) + 1)
        box = [*(centre - side / 2), *(centre + side / 2)]
    return Face(box=np.asarray(box, np.float32), score=1.0, landmarks_5=points)


__all__ = ["GRACE_HOPPER_5", "KnownFacesDetector", "KnownPicture", "thumbnail"]
