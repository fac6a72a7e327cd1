"""`clipswap-video faces`: what the face analysis sees in a photo or a video.

Boxes, scores, 5 landmarks and track ids per frame, which faces the selection
would swap, and an annotated preview, so a user can check the right person
will be swapped before starting a long render.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config import Settings
from clipswap_video.errors import UnreadableInputError
from clipswap_video.faces import (
    FaceAnalyzer,
    FaceDetector,
    FaceSelector,
    create_detector,
    parse_selection,
)
from clipswap_video.faces.identity import detect_still
from clipswap_video.faces.pose import estimate_yaw, facing
from clipswap_video.faces.types import Face
from clipswap_video.media import IMAGE_SUFFIXES, VideoReader, read_image
from clipswap_video.reports.preview import resized, write_image

PREVIEW_FRAMES = 6
_PREVIEW_WIDTH = 480


@dataclass
class FaceReport:
    """Per-frame faces of one input, and the pictures for the preview."""

    input: Path
    kind: str  # "image" or "video"
    width: int
    height: int
    frames: list[dict[str, Any]] = field(default_factory=list)
    previews: list[RgbImage] = field(default_factory=list)

    def tracks(self) -> list[dict[str, Any]]:
        """One summary per track id: frames seen, first and last, mean size, selected."""
        summary: dict[int, dict[str, Any]] = {}
        for frame in self.frames:
            for face in frame["faces"]:
                key = face["track_id"] if face["track_id"] is not None else face["index"]
                entry = summary.setdefault(
                    key,
                    {
                        "track_id": key,
                        "first": frame["index"],
                        "frames": 0,
                        "selected_frames": 0,
                        "size_sum": 0.0,
                    },
                )
                entry["last"] = frame["index"]
                entry["frames"] += 1
                entry["selected_frames"] += int(face["selected"])
                entry["size_sum"] += face["size"]
        for entry in summary.values():
            entry["mean_size"] = round(entry.pop("size_sum") / entry["frames"], 1)
        return sorted(summary.values(), key=lambda entry: entry["track_id"])

    def as_json(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "tracks": self.tracks(),
        }


def analyse_input(
    path: Path,
    settings: Settings,
    *,
    weights_dir: Path | None = None,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> FaceReport:
    """Runs detection (and tracking, for a video) over `path`.

    Args:
        on_start: called with the expected frame count once a video is open and
            every check has passed (the CLI starts its progress bar there).
        on_frame: called after each analysed video frame.
    """
    selection = parse_selection(settings.faces.select)
    detector = create_detector(settings.faces, weights_dir)
    selector = FaceSelector(selection, detector, settings.faces.source_face)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = read_image(path, what="image")
        faces = detect_still(detector, image)
        if selection.mode == "reference":  # embeddings are costly; this is their one use
            faces = detector.embed(image, faces)
        report = FaceReport(path, "image", image.shape[1], image.shape[0])
        chosen = facing(selector.select(faces), settings.faces.max_yaw)
        report.frames.append(_frame_entry(0, 0.0, faces, chosen))
        report.previews.append(annotate(image, faces, chosen))
        return report
    return _analyse_video(path, settings, detector, selector, on_start, on_frame)


def _analyse_video(
    path: Path,
    settings: Settings,
    detector: FaceDetector,
    selector: FaceSelector,
    on_start: Callable[[int | None], None] | None,
    on_frame: Callable[[], None] | None,
) -> FaceReport:
    with VideoReader(path, tolerate_errors=settings.input.tolerate_errors) as reader:
        video = reader.info.video
        if on_start is not None:
            on_start(video.frame_count)
        analyzer = FaceAnalyzer(detector, settings.faces, settings.track, video.rotation)
        report = FaceReport(path, "video", video.width, video.height)
        wanted = _preview_indices(video.frame_count)
        for frame in reader.frames():
            image = frame.rgb()
            faces = analyzer.analyse(image)
            chosen = facing(selector.select(faces), settings.faces.max_yaw)
            report.frames.append(_frame_entry(frame.index, frame.seconds, faces, chosen))
            if frame.index in wanted:
                turns = analyzer.quarter_turns
                report.previews.append(np.rot90(annotate(image, faces, chosen), turns))
            if on_frame is not None:
                on_frame()
    if not report.frames:
        raise UnreadableInputError(f"video {path} has no decodable frames")
    return report


def _preview_indices(frame_count: int | None) -> set[int]:
    if not frame_count:
        return {0}
    return {round(i) for i in np.linspace(0, frame_count - 1, min(PREVIEW_FRAMES, frame_count))}


def _frame_entry(
    index: int, seconds: float, faces: list[Face], chosen: list[Face]
) -> dict[str, Any]:
    chosen_ids = {id(face) for face in chosen}
    return {
        "index": index,
        "time": round(seconds, 6),
        "faces": [
            {
                "index": number,
                "track_id": face.track_id,
                "box": [round(float(v), 2) for v in face.box],
                "score": round(face.score, 4),
                "size": round(face.size, 1),
                "yaw": round(estimate_yaw(face.landmarks_5), 1),
                "landmarks_5": np.round(face.landmarks_5, 2).tolist(),
                "selected": id(face) in chosen_ids,
            }
            for number, face in enumerate(faces)
        ],
    }


def annotate(image: RgbImage, faces: list[Face], chosen: list[Face]) -> RgbImage:
    """A copy of `image` with boxes (green: will be swapped, red: left alone),
    landmarks and track ids drawn."""
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(1, round(max(image.shape[:2]) / 400))
    chosen_ids = {id(face) for face in chosen}
    for number, face in enumerate(faces):
        colour = (40, 220, 40) if id(face) in chosen_ids else (230, 40, 40)
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        for x, y in face.landmarks_5:
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 1, (255, 220, 0), -1)
        label = f"id {face.track_id}" if face.track_id is not None else f"#{number}"
        cv2.putText(
            canvas,
            label,
            (x1, max(12, y1 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness,
            colour,
            thickness,
        )
    return canvas


def contact_sheet(pictures: list[RgbImage]) -> RgbImage:
    """Up to 6 pictures in a grid of 3 columns, each scaled to 480 px wide."""
    tiles = [resized(picture, width=_PREVIEW_WIDTH) for picture in pictures]
    if len(tiles) == 1:
        return tiles[0]
    tile_height = max(tile.shape[0] for tile in tiles)
    rows = []
    for row in _chunks(tiles, 3):
        padded = [_pad(tile, tile_height, _PREVIEW_WIDTH) for tile in row]
        padded += [np.zeros_like(padded[0])] * (3 - len(padded))
        rows.append(np.hstack(padded))
    return np.vstack(rows)


def write_preview(pictures: list[RgbImage], path: Path) -> None:
    """Writes the contact sheet as an image (format from the suffix), atomically."""
    write_image(contact_sheet(pictures), path)


def _pad(tile: RgbImage, height: int, width: int) -> RgbImage:
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[: tile.shape[0], : tile.shape[1]] = tile
    return canvas


def _chunks(items: list[RgbImage], size: int) -> Iterator[list[RgbImage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "FaceReport",
    "analyse_input",
    "annotate",
    "contact_sheet",
    "write_preview",
]
