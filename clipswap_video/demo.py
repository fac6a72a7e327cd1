"""The bundled demo media, made from public-domain face photos that ship in PyPI packages.

- source: Grace Hopper's portrait (US Navy, public domain), in matplotlib's sample data;
- target clip: the astronaut Eileen Collins (NASA, public domain), `skimage.data.astronaut()`,
  cut out as a soft-edged head sprite and moved over a procedural background along a
  known smooth path with gentle zoom and in-plane rotation, plus an AAC soundtrack;
- ground truth: the 5 facial landmarks of every frame (eye centres, nose tip, mouth
  corners, the ArcFace convention), i.e. the still's landmarks mapped through the
  exact affine transform that placed the sprite. Face-analysis tests measure against it.

scikit-image and matplotlib come with the `[demo]` extra, imported only where the
photos are read, so the drawing helpers here work without it.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
import numpy.typing as npt

from clipswap_video._resources import import_extra
from clipswap_video.arrays import FloatArray, RgbImage
from clipswap_video.atomic import atomic_output, write_text_atomic

Pose = tuple[float, float, float, float]  # centre x, centre y, scale, angle (degrees, ccw)
Path2D = Callable[[float], Pose | None]  # t seconds -> pose, or None when off-screen

# Measured once on the 512x512 astronaut still with dlib's HOG detector and
# 68-point predictor (eye centre = mean of points 36-41 / 42-47, nose tip = 30,
# mouth corners = 48, 54), drawn and checked by eye. Pixel-centre coordinates.
ASTRONAUT_LANDMARKS_5 = (
    (203.2, 101.5),
    (246.5, 104.2),
    (225.0, 127.0),
    (201.0, 139.0),
    (246.0, 141.0),
)
ASTRONAUT_FACE_BOX = (175.0, 76.0, 265.0, 166.0)  # dlib's detection box on the same still
_HEAD_CROP = (140, 20, 310, 210)  # x0, y0, x1, y1: hair to chin, clear of the suit below
_EYE_TO_MOUTH_720P = 96.0  # face size in a 720-line frame, pixels
_NEEDED_FOR = "the demo media"  # what the error for a missing [demo] extra names


@dataclass(frozen=True)
class DemoMedia:
    """The files `write_demo_media` made."""

    source_image: Path
    video: Path
    landmarks: Path


@dataclass(frozen=True)
class Actor:
    """A face sprite (RGBA) with its landmarks and face box in sprite pixels, and its motion."""

    sprite: npt.NDArray[np.uint8]
    landmarks_5: FloatArray
    face_box: tuple[float, float, float, float]
    path: Path2D

    @property
    def anchor(self) -> FloatArray:
        """The point the path moves: the centre of the five landmarks."""
        return self.landmarks_5.mean(axis=0)


def astronaut_actor(path: Path2D) -> Actor:
    """The astronaut's head as a feathered-ellipse sprite following `path`."""
    skimage_data = import_extra("skimage.data", "demo", _NEEDED_FOR)
    return sprite_actor(
        skimage_data.astronaut(), _HEAD_CROP, ASTRONAUT_LANDMARKS_5, ASTRONAUT_FACE_BOX, path
    )


def sprite_actor(
    still: RgbImage,
    head_crop: tuple[int, int, int, int],
    landmarks_5: Sequence[tuple[float, float]],
    box: tuple[float, float, float, float],
    path: Path2D,
) -> Actor:
    """The `head_crop` (x0, y0, x1, y1) of an RGB still as a feathered-ellipse sprite,
    with the still's landmarks and face box, following `path`."""
    x0, y0, x1, y1 = head_crop
    offset = np.array([x0, y0], float)
    return Actor(
        sprite=np.dstack([still[y0:y1, x0:x1], _feathered_ellipse(x1 - x0, y1 - y0)]),
        landmarks_5=np.array(landmarks_5, float) - offset,
        face_box=(box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0),
        path=path,
    )


def demo_path(width: int, height: int) -> Path2D:
    """A smooth Lissajous path with ±12% zoom and ±8° roll that keeps the face in frame."""
    scale = _EYE_TO_MOUTH_720P / 37.5 * height / 720  # 37.5 px eye-to-mouth in the still
    reach = 85 * scale * 1.12  # face half-extent at the largest zoom, plus a margin
    ax, ay = max(width / 2 - reach, 0.0), max(height / 2 - reach, 0.0)

    def pose(t: float) -> Pose:
        return (
            width / 2 + ax * math.sin(2 * math.pi * t / 7.0),
            height / 2 + ay * math.sin(2 * math.pi * t / 5.0 + 0.6),
            scale * (1 + 0.12 * math.sin(2 * math.pi * t / 6.0)),
            8.0 * math.sin(2 * math.pi * t / 4.5),
        )

    return pose


def still_path(width: int, height: int, seconds: float) -> Path2D:
    """The demo face at the frame's centre, drifting 10 px to the right over the clip
    (a nearly still face, where flicker added to it shows most)."""
    scale = _EYE_TO_MOUTH_720P / 37.5 * height / 720

    def pose(t: float) -> Pose:
        return (width / 2 - 5 + 10 * t / seconds, height / 2, scale, 0.0)

    return pose


def actor_transform(actor: Actor, pose: Pose) -> FloatArray:
    """The 2x3 affine map from sprite pixels to frame pixels for `pose`."""
    cx, cy, scale, angle = pose
    anchor_x, anchor_y = actor.anchor
    matrix = cv2.getRotationMatrix2D((float(anchor_x), float(anchor_y)), angle, scale)
    return cast(
        FloatArray, matrix + np.array([[0.0, 0.0, cx - anchor_x], [0.0, 0.0, cy - anchor_y]])
    )


def background(width: int, height: int) -> RgbImage:
    """A deterministic faceless backdrop: a colour gradient with soft low-frequency texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    texture = 0.5 + 0.25 * np.sin(7 * u + 3 * v) * np.cos(5 * v - 2 * u) + 0.1 * np.sin(23 * u * v)
    rgb = np.stack([0.25 + 0.35 * u, 0.35 + 0.25 * v, 0.55 - 0.2 * u], axis=-1) * texture[..., None]
    return np.clip(rgb * 255 * 1.3, 0, 255).astype(np.uint8)


def render_frame(
    backdrop: RgbImage, actors: Sequence[Actor], t: float
) -> tuple[RgbImage, list[FloatArray | None]]:
    """The frame at time `t` and each actor's 5 landmarks in it (None when off-screen)."""
    frame = backdrop.astype(np.float32)
    placed: list[FloatArray | None] = []
    for actor in actors:
        pose = actor.path(t)
        if pose is None:
            placed.append(None)
            continue
        matrix = actor_transform(actor, pose)
        _composite(frame, actor.sprite, matrix)
        placed.append(_apply(matrix, actor.landmarks_5))
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8), placed


def face_box(actor: Actor, pose: Pose) -> list[float]:
    """The actor's face box in the frame: its still's detection box mapped through the pose
    (axis-aligned hull of the four transformed corners)."""
    x0, y0, x1, y1 = actor.face_box
    corners = _apply(
        actor_transform(actor, pose), np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
    )
    return [*corners.min(axis=0).round(2).tolist(), *corners.max(axis=0).round(2).tolist()]


def write_demo_media(
    directory: Path,
    *,
    seconds: float = 10.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    audio: bool = True,
    still: bool = False,
    keyframe_seconds: float | None = None,
) -> DemoMedia:
    """Writes source.jpg, target.mp4 and target_landmarks.json into `directory`
    (`still`: the face nearly still at the centre instead of the demo's motion;
    `keyframe_seconds`: a keyframe that often, as cameras and deliveries have,
    instead of x264's default of one every 250 frames)."""
    _check_arguments(seconds, width, height, fps)
    cbook = import_extra("matplotlib.cbook", "demo", _NEEDED_FOR)
    path = still_path(width, height, seconds) if still else demo_path(width, height)
    actor = astronaut_actor(path)  # both photos found before any file
    directory.mkdir(parents=True, exist_ok=True)
    media = DemoMedia(
        directory / "source.jpg", directory / "target.mp4", directory / "target_landmarks.json"
    )
    grace_hopper = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with atomic_output(media.source_image) as partial:
        shutil.copyfile(Path(str(grace_hopper)), partial)
    frame_count = round(seconds * fps)
    gop = round(keyframe_seconds * fps) if keyframe_seconds else None
    truth = _write_video(media.video, actor, frame_count, width, height, fps, audio, gop)
    write_text_atomic(media.landmarks, json.dumps(truth))
    return media


def _check_arguments(seconds: float, width: int, height: int, fps: int) -> None:
    if seconds <= 0 or fps <= 0:
        raise ValueError(f"seconds and fps must be positive (got {seconds}, {fps})")
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for 4:2:0 H.264 (got {width}x{height})")
    if min(width, height) < 64:
        raise ValueError(f"{width}x{height} is too small to hold a face (at least 64x64)")


def _write_video(
    path: Path,
    actor: Actor,
    frame_count: int,
    width: int,
    height: int,
    fps: int,
    audio: bool,
    gop: int | None,
) -> dict[str, object]:
    backdrop = background(width, height)
    frames = []
    with atomic_output(path) as partial, av.open(str(partial), "w") as container:
        video = _video_stream(container, width, height, fps, gop)
        sound = container.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for index in range(frame_count):
            t = index / fps
            image, placed = render_frame(backdrop, [actor], t)
            container.mux(video.encode(_to_video_frame(image, index)))
            frames.append(_truth_entry(index, actor, t, placed[0]))
        container.mux(video.encode(None))
        if sound is not None:
            _write_audio(container, sound, frame_count / fps)
    return {
        "width": width,
        "height": height,
        "fps": fps,
        "frame_count": frame_count,
        "time_base": f"1/{fps}",
        "frames": frames,
    }


def _video_stream(  # type: ignore[no-untyped-def]
    container: av.container.OutputContainer, width: int, height: int, fps: int, gop: int | None
):
    options = {"crf": "18", "preset": "veryfast"}
    if gop is not None:
        options["g"] = str(gop)
    video = container.add_stream("libx264", rate=fps, options=options)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.time_base = video.codec_context.time_base = Fraction(1, fps)
    context = video.codec_context
    context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
    context.color_range = 1  # limited ("tv") range
    return video


def _to_video_frame(image: RgbImage, index: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
    frame.pts = index
    return frame


def _truth_entry(
    index: int, actor: Actor, t: float, landmarks: FloatArray | None
) -> dict[str, object]:
    faces = []
    pose = actor.path(t)
    if landmarks is not None and pose is not None:
        faces.append(
            {"id": 0, "landmarks_5": landmarks.round(3).tolist(), "box": face_box(actor, pose)}
        )
    return {"index": index, "pts": index, "faces": faces}


def _write_audio(container: av.container.OutputContainer, stream, seconds: float) -> None:  # type: ignore[no-untyped-def]
    rate, size = 48000, stream.codec_context.frame_size or 1024
    for start, samples in _soundtrack(rate, size, round(seconds * rate)):
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _soundtrack(rate: int, size: int, total: int) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """A quiet A-major chord, and a 50 ms 1 kHz beep at every whole second (sync check)."""
    for start in range(0, total, size):
        t = np.arange(start, min(start + size, total)) / rate
        chord = sum(0.04 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63))
        beep = 0.2 * np.sin(2 * np.pi * 1000 * t) * ((t % 1.0) < 0.05)
        mono = (chord + beep).astype(np.float32)
        yield start, np.stack([mono, mono])


def _feathered_ellipse(width: int, height: int) -> npt.NDArray[np.uint8]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.hypot((x - width / 2) / (width / 2), (y - height / 2) / (height / 2))
    return (np.clip((1.0 - r) / 0.18, 0, 1) * 255).astype(np.uint8)


def _composite(
    frame: npt.NDArray[np.float32], sprite: npt.NDArray[np.uint8], matrix: FloatArray
) -> None:
    height, width = frame.shape[:2]
    warped = cv2.warpAffine(
        sprite,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    alpha = warped[..., 3:4].astype(np.float32) / 255.0
    frame *= 1.0 - alpha
    frame += warped[..., :3].astype(np.float32) * alpha


def _apply(matrix: FloatArray, points: FloatArray) -> FloatArray:
    return points @ matrix[:, :2].T + matrix[:, 2]


__all__ = [
    "ASTRONAUT_FACE_BOX",
    "ASTRONAUT_LANDMARKS_5",
    "Actor",
    "DemoMedia",
    "Path2D",
    "Pose",
    "actor_transform",
    "astronaut_actor",
    "background",
    "demo_path",
    "face_box",
    "render_frame",
    "sprite_actor",
    "still_path",
    "write_demo_media",
]
