"""Face-analysis figures for `clipswap-video bench`, on the demo clip with ground truth.

- Smoothing: the same detections, with Gaussian noise added to every measured
  landmark, are tracked with and without the Kalman filter. Jitter is the RMS
  of the frame-to-frame second difference of the landmarks (px); error is the
  mean distance to the ground truth (px).
- Throughput: frames per second of decode + analysis (detect every k frames,
  landmark refresh in between) with the default detector, and of the analysis alone.
- Detector cost: milliseconds of one full detection (median of DETECT_REPEATS)
  on the demo's first frame scaled to 360p, 720p and 1080p, for the bundled
  RetinaFace-MobileNet and dlib's HOG, each at its own detection size.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config import Settings
from clipswap_video.config_sections import DetectorName
from clipswap_video.demo import DemoMedia
from clipswap_video.faces import FaceAnalyzer, FaceDetector, create_detector
from clipswap_video.faces.types import Face
from clipswap_video.media import VideoReader

NOISE_FRACTION = 0.01
"""Std of the noise added to each landmark, as a fraction of the face size."""
DETECT_REPEATS = 5
DETECT_HEIGHTS = (360, 720, 1080)
COST_DETECTORS: tuple[DetectorName, ...] = ("retinaface_mobile", "dlib")


class NoisyDetector:
    """A detector whose landmarks get seeded Gaussian noise (a worse detector)."""

    def __init__(self, detector: FaceDetector, fraction: float, seed: int = 0) -> None:
        self.detector, self.fraction = detector, fraction
        self.name, self.match_distance = detector.name, detector.match_distance
        self.rng = np.random.default_rng(seed)

    def detect(self, image: RgbImage, *, still: bool = False) -> list[Face]:
        return self._noisy(self.detector.detect(image, still=still))

    def refresh(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        return self._noisy(self.detector.refresh(image, faces))

    def embed(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        return self.detector.embed(image, faces)

    def _noisy(self, faces: list[Face]) -> list[Face]:
        return [face.with_(landmarks_5=face.landmarks_5 + self._noise(face.size)) for face in faces]

    def _noise(self, size: float) -> np.ndarray:
        return self.rng.normal(0.0, self.fraction * size, (5, 2)).astype(np.float32)


def face_figures(clip: DemoMedia, settings: Settings) -> dict[str, Any]:
    """Smoothing and throughput figures on `clip` (a demo clip with one face)."""
    truth = [
        np.array(entry["faces"][0]["landmarks_5"]) if entry["faces"] else None
        for entry in json.loads(clip.landmarks.read_text())["frames"]
    ]
    detector = create_detector(settings.faces)
    results = _smoothing(clip.video, truth, detector, settings)
    results.update(_throughput(clip.video, detector, settings))
    results.update(_detector_cost(clip.video, settings))
    return results


def _smoothing(
    video: Path, truth: list[np.ndarray | None], detector: FaceDetector, settings: Settings
) -> dict[str, Any]:
    raw_track = dataclasses.replace(settings.track, smooth=False)
    analyzers = {
        "raw": FaceAnalyzer(NoisyDetector(detector, NOISE_FRACTION), settings.faces, raw_track),
        "smoothed": FaceAnalyzer(
            NoisyDetector(detector, NOISE_FRACTION), settings.faces, settings.track
        ),
    }
    points: dict[str, list[np.ndarray]] = {name: [] for name in analyzers}
    kept: list[np.ndarray] = []
    sizes: list[float] = []
    ids: set[int | None] = set()
    with VideoReader(video) as reader:
        for frame in reader.frames():
            image = frame.rgb()
            found = {name: analyzer.analyse(image) for name, analyzer in analyzers.items()}
            expected = truth[frame.index]
            if expected is None or not all(len(f) == 1 for f in found.values()):
                continue  # jitter is measured on the frames where every run saw the face
            kept.append(expected)
            sizes.append(found["raw"][0].size)
            ids.update(f[0].track_id for f in found.values())
            for name, faces in found.items():
                points[name].append(faces[0].landmarks_5)
    if len(kept) < 3:  # e.g. a clip too small for the detector: nothing to measure
        return {"smoothing_frames": len(kept)}
    reference = np.stack(kept)
    jitter = {name: _jitter(np.stack(p)) for name, p in points.items()}
    error = {name: _error(np.stack(p), reference) for name, p in points.items()}
    return {
        "smoothing_frames": len(kept),
        "landmark_noise_px": round(NOISE_FRACTION * float(np.mean(sizes)), 2),
        "truth_jitter_px": round(_jitter(reference), 3),
        "jitter_raw_px": round(jitter["raw"], 3),
        "jitter_smoothed_px": round(jitter["smoothed"], 3),
        "jitter_reduction": round(1 - jitter["smoothed"] / jitter["raw"], 3),
        "error_raw_px": round(error["raw"], 3),
        "error_smoothed_px": round(error["smoothed"], 3),
        "error_change": round(error["smoothed"] / error["raw"] - 1, 3),
        "track_ids": len(ids),
    }


def _throughput(video: Path, detector: FaceDetector, settings: Settings) -> dict[str, Any]:
    analyzer = FaceAnalyzer(detector, settings.faces, settings.track)
    frames, analysis_s = 0, 0.0
    started = time.perf_counter()
    with VideoReader(video) as reader:
        for frame in reader.frames():
            image = frame.rgb()
            before = time.perf_counter()
            analyzer.analyse(image)
            analysis_s += time.perf_counter() - before
            frames += 1
    total_s = time.perf_counter() - started
    return {
        "analysis_detect_every": settings.faces.detect_every,
        "analysis_fps": round(frames / total_s, 1),  # decode + RGB + analysis
        "analysis_only_fps": round(frames / analysis_s, 1),
    }


def _detector_cost(video: Path, settings: Settings) -> dict[str, Any]:
    with VideoReader(video) as reader:
        first = next(iter(reader.frames())).rgb()
    results: dict[str, Any] = {}
    for name in COST_DETECTORS:
        detector = create_detector(dataclasses.replace(settings.faces, detector=name))
        for height in DETECT_HEIGHTS:
            width = round(first.shape[1] * height / first.shape[0])
            frame = cast(RgbImage, cv2.resize(first, (width, height), interpolation=cv2.INTER_AREA))
            times = []
            for _ in range(DETECT_REPEATS):
                started = time.perf_counter()
                detector.detect(frame)
                times.append(time.perf_counter() - started)
            results[f"detect_ms_{name}_{height}p"] = round(1000 * float(np.median(times)), 1)
    return results


def _jitter(points: np.ndarray) -> float:
    second = points[2:] - 2 * points[1:-1] + points[:-2]
    return float(np.sqrt((second**2).sum(-1).mean()))


def _error(points: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(points - truth, axis=-1).mean())


__all__ = ["NOISE_FRACTION", "NoisyDetector", "face_figures"]
