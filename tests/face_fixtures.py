"""Face photos that ship inside PyPI packages, and clips of them with known motion.

The clips are written with plain PyAV; the ground truth of every frame is the
still's landmarks mapped through the exact affine each sprite was drawn with.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import matplotlib.cbook
import numpy as np
from PIL import Image
from skimage import data as skimage_data

from clipswap_video.demo import (
    Actor,
    Path2D,
    Pose,
    astronaut_actor,
    background,
    render_frame,
    sprite_actor,
)
from clipswap_video.faces import Face, SourceIdentity

# Found by location: importing insightface itself would load onnx and more.
_INSIGHTFACE = importlib.util.find_spec("insightface")
assert _INSIGHTFACE is not None and _INSIGHTFACE.origin is not None, "pip install insightface"
INSIGHTFACE_IMAGES = Path(_INSIGHTFACE.origin).parent / "data" / "images"
T1_IMAGE = INSIGHTFACE_IMAGES / "t1.jpg"  # six people
HANKS_IMAGE = INSIGHTFACE_IMAGES / "Tom_Hanks_54745.png"  # 112 x 112 aligned crop

# Measured once on matplotlib's grace_hopper.jpg (512 x 600) with dlib's HOG
# detector and 68-point predictor, as the astronaut's are in clipswap_video.demo.
GRACE_LANDMARKS_5 = ((222.2, 197.2), (310.8, 191.5), (266.0, 238.0), (233.0, 278.0), (309.0, 272.0))
GRACE_FACE_BOX = (161.0, 137.0, 376.0, 352.0)
_GRACE_HEAD_CROP = (120, 70, 420, 400)


def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def grace_hopper() -> np.ndarray:
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as image:
        return np.asarray(image.convert("RGB"))


def grace_identity() -> SourceIdentity:
    """Grace Hopper's photo as a job's source, her face where dlib finds it (what a
    backend's prepare_source takes; the embedding is not used by the ONNX ones)."""
    face = Face(
        box=np.array(GRACE_FACE_BOX),
        score=1.0,
        landmarks_5=np.array(GRACE_LANDMARKS_5, np.float32),
    )
    return SourceIdentity(
        np.zeros(512, np.float32), (face,), (grace_hopper(),), (Path("grace.png"),)
    )


def assert_first_face_swapped(frames: list[np.ndarray], originals: list[np.ndarray]) -> None:
    """Every frame is there; in the first, where the actor clip's face starts has
    changed and a corner far from it has not (beyond encoder noise)."""
    assert len(frames) == len(originals) == 15
    face = (slice(130, 230), slice(250, 330))
    assert np.abs(frames[0][face].astype(int) - originals[0][face]).mean() > 5
    corner = (slice(0, 40), slice(0, 40))
    assert np.abs(frames[0][corner].astype(int) - originals[0][corner]).mean() < 2


def grace_actor(path: Path2D) -> Actor:
    """Grace Hopper's head as a sprite following `path`."""
    return sprite_actor(grace_hopper(), _GRACE_HEAD_CROP, GRACE_LANDMARKS_5, GRACE_FACE_BOX, path)


def line_path(
    start: tuple[float, float],
    end: tuple[float, float],
    seconds: float,
    scale: float,
    hidden: tuple[float, float] | None = None,
) -> Path2D:
    """Straight motion from `start` to `end` over `seconds`, off-screen during `hidden`."""

    def pose(t: float) -> Pose | None:
        if hidden is not None and hidden[0] <= t < hidden[1]:
            return None
        u = min(max(t / seconds, 0.0), 1.0)
        x = start[0] + (end[0] - start[0]) * u
        y = start[1] + (end[1] - start[1]) * u
        return (x, y, scale, 3.0 * math.sin(2 * math.pi * t))

    return pose


def write_actor_clip(
    path: Path,
    actors: Sequence[Actor],
    *,
    seconds: float,
    fps: int = 30,
    size: tuple[int, int] = (640, 360),
    rotation: int = 0,
    edit: Callable[[int, np.ndarray, list[np.ndarray | None]], np.ndarray] | None = None,
    x264_params: str | None = None,
) -> list[list[np.ndarray | None]]:
    """Writes an H.264 clip of `actors` on the demo backdrop.

    With `rotation` (degrees counter-clockwise, a multiple of 90) the frames are
    stored turned the other way and tagged to display upright, as phones do.
    `edit(index, frame, landmarks)` may change each drawn frame (an occluding
    bar, a cut to another shot); the truth stays the actors' landmarks.
    `x264_params` (`keyint=10:min-keyint=10:scenecut=0`) places keyframes.

    Returns:
        Per frame, each actor's (5, 2) ground-truth landmarks or None when hidden,
        in upright (displayed) pixels.
    """
    width, height = size
    backdrop = background(width, height)
    truth = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        turns = rotation // 90
        stored_size = (height, width) if turns % 2 else (width, height)
        stream.width, stream.height, stream.pix_fmt = *stored_size, "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        if x264_params is not None:
            stream.options = {**stream.options, "x264-params": x264_params}
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(round(seconds * fps)):
            frame, landmarks = render_frame(backdrop, actors, index / fps)
            if edit is not None:
                frame = edit(index, frame, landmarks)
            truth.append(landmarks)
            stored = np.ascontiguousarray(np.rot90(frame, -turns))
            picture = av.VideoFrame.from_ndarray(stored, format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return truth


__all__ = [
    "GRACE_FACE_BOX",
    "GRACE_LANDMARKS_5",
    "HANKS_IMAGE",
    "T1_IMAGE",
    "assert_first_face_swapped",
    "astronaut",
    "astronaut_actor",
    "grace_actor",
    "grace_hopper",
    "grace_identity",
    "line_path",
    "write_actor_clip",
]
