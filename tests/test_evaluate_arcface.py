"""`evaluate`'s ArcFace column, with a stand-in ArcFace-Res50 saved in the real
Keras format: cosines near 1 against a plain re-encode and clearly lower where
the faces were blurred away, the temporal figure on each track, the per-face
lists in `--json`; without the weights the keys are null and say why, and the
other metrics are unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from face_fixtures import astronaut
from identity_reference import aligned_crop
from keras_writer import small_identity_graph, write_keras_h5

from clipswap_video.cli import main
from clipswap_video.config import load_settings
from clipswap_video.demo import DemoMedia, write_demo_media
from clipswap_video.faces import ARCFACE_TEMPLATE_112, Face
from clipswap_video.pipeline import run_video
from clipswap_video.reports._arcface import ArcFaceEmbedder, IdentityCosines, aligned_crops
from clipswap_video.reports.evaluate import evaluate
from media_fixtures import write_clip

ARCFACE_KEYS = [
    "id_cos_source_mean",
    "id_cos_source_p5",
    "id_cos_target_mean",
    "id_cos_target_p5",
    "id_cos_temporal",
    "id_cos_temporal_input",
    "id_cos_note",
]
KEYS = [
    "identity_transfer",
    "dist_to_source",
    "dist_to_target",
    *ARCFACE_KEYS,
    "flicker_ratio",
    "background_psnr_db",
    "frames_evaluated",
    "coverage",
    "frames_with_faces",
    "frames_swapped",
    "id_cos_source",
    "id_cos_target",
]


def _stand_in_arcface(folder: Path) -> Path:
    """A 112 px RGB -> 512 network saved as ArcFace-Res50.h5: a linear 3x3
    stride-2 convolution whose kernels sum to zero on each input channel, 2x2
    average pooling, Dense 512.

    Such kernels see edges, not brightness or colour: with random positive
    features (the ReLU identity net of the swap tests, or the ArcFace-shaped
    ResNet of keras_writer) any two faces score above 0.97, so a face replaced
    by another would not show."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    kernel -= kernel.mean(axis=(0, 1), keepdims=True)
    dense = rng.normal(size=(27 * 27 * 4, 512)).astype(np.float32)
    model, weights = small_identity_graph(kernel, dense, activation="linear")
    folder.mkdir(parents=True, exist_ok=True)
    return write_keras_h5(folder / "ArcFace-Res50.h5", model, weights)


def _faces_blurred(media: DemoMedia, output: Path) -> Path:
    """The demo clip with every true face box blurred: the faces are gone, the rest stays."""
    truth = json.loads(media.landmarks.read_text())
    with av.open(str(media.video)) as source, av.open(str(output), "w") as container:
        stream = container.add_stream("libx264", rate=truth["fps"])
        stream.width, stream.height, stream.pix_fmt = truth["width"], truth["height"], "yuv420p"
        stream.time_base = Fraction(1, truth["fps"])
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for index, (frame, marks) in enumerate(
            zip(source.decode(video=0), truth["frames"], strict=True)
        ):
            pixels = frame.to_ndarray(format="rgb24")
            for face in marks["faces"]:
                x0, y0, x1, y1 = np.clip(np.round(face["box"]).astype(int), 0, None)
                pixels[y0:y1, x0:x1] = cv2.GaussianBlur(pixels[y0:y1, x0:x1], (0, 0), 6)
            picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return output


@dataclass(frozen=True)
class Clips:
    media: DemoMedia
    weights: Path
    reencoded: Path
    blurred: Path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    folder = tmp_path_factory.mktemp("evaluate-arcface")
    media = write_demo_media(folder / "demo", seconds=0.5, width=640, height=360, fps=30)
    reencoded = folder / "none.mp4"
    run_video(
        media.source_image, media.video, reencoded, load_settings(overrides=["swap.swapper=none"])
    )
    blurred = _faces_blurred(media, folder / "blurred.mp4")
    return Clips(media, _stand_in_arcface(folder / "weights").parent, reencoded, blurred)


def _evaluate(clips: Clips, output: Path, weights: Path) -> dict[str, Any]:
    return evaluate(
        clips.media.source_image, clips.media.video, output, load_settings(), weights_dir=weights
    )


@pytest.mark.slow
def test_a_reencode_keeps_the_identity_and_the_other_metrics(
    clips: Clips, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["evaluate", clips.media.source_image, clips.media.video, clips.reencoded, "--json"]
    assert main([str(arg) for arg in [*args, "--weights", clips.weights]]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics) == KEYS
    faces = metrics["frames_evaluated"]  # one face in each sampled frame
    assert faces >= 12 and len(metrics["id_cos_source"]) == len(metrics["id_cos_target"]) == faces
    assert metrics["id_cos_target_mean"] >= 0.98 and metrics["id_cos_target_p5"] >= 0.98
    assert 0.9 <= metrics["id_cos_temporal"] <= 1  # the head turns a little between samples
    assert metrics["id_cos_source_mean"] < 0.5  # even this stand-in tells Grace Hopper apart
    assert metrics["id_cos_source_p5"] <= metrics["id_cos_source_mean"]
    assert "not an independent judge" in metrics["id_cos_note"]
    without = _evaluate(clips, clips.reencoded, tmp_path / "empty")
    assert list(without) == KEYS
    assert {key: without[key] for key in KEYS if not key.startswith("id_cos")} == {
        key: metrics[key] for key in KEYS if not key.startswith("id_cos")
    }
    nulls = [key for key in KEYS if key.startswith("id_cos_") and key != "id_cos_note"]
    assert all(without[key] is None for key in nulls)
    assert without["id_cos_note"].startswith("not measured: looked for ArcFace-Res50.h5 or ")
    assert without["id_cos_note"].endswith(f" in {tmp_path / 'empty'}, weights; see --weights")


@pytest.mark.slow
def test_blurred_faces_score_clearly_lower(clips: Clips) -> None:
    metrics = _evaluate(clips, clips.blurred, clips.weights)
    assert metrics["id_cos_target_mean"] < 0.9
    assert -1 <= metrics["id_cos_temporal"] <= 1
    assert len(metrics["id_cos_target"]) == metrics["frames_evaluated"] >= 12


def _face(x: float, y: float, track_id: int, scale: float = 1.0) -> Face:
    """A face whose landmarks are the 112 px template scaled by `scale`, at (x, y)."""
    landmarks = (ARCFACE_TEMPLATE_112 * scale + (x, y)).astype(np.float32)
    box = np.array([x, y, x + 112 * scale, y + 112 * scale], np.float32)
    return Face(box, 1.0, landmarks, track_id=track_id)


def test_crops_are_aligned_as_the_reference_aligns_them() -> None:
    image = astronaut()
    turn = np.deg2rad(20)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    tilted = _face(250, 200, 3)
    tilted = tilted.with_(landmarks_5=(tilted.landmarks_5 - 250) @ rotation.T + 250)
    faces = [_face(150, 60, 1), _face(10, 300, 2, scale=1.7), tilted]
    for crop, face in zip(aligned_crops(image, faces), faces, strict=True):
        expected = aligned_crop(image, face.landmarks_5, 112)
        assert np.abs(crop.astype(int) - expected).max() <= 1


def test_each_track_is_compared_with_its_previous_sample(tmp_path: Path) -> None:
    """Three sampled frames: tracks 1 and 2, then 1 and 3, then 3: the temporal
    figure compares track 1 (frames 1-2) and track 3 (frames 2-3), nothing else."""
    embedder = ArcFaceEmbedder(_stand_in_arcface(tmp_path), "cpu")
    image = astronaut()
    frames = [image, np.roll(image, 3, axis=1), np.roll(image, 6, axis=0)]
    tracks = [
        [_face(150, 60, 1), _face(300, 300, 2)],
        [_face(150, 60, 1), _face(300, 300, 3)],
        [_face(300, 300, 3)],
    ]
    source = embedder.embed(aligned_crops(image, [_face(150, 60, 0)]))[0]
    cosines = IdentityCosines(embedder, source)
    # IN: the first frame as OUT (its faces unchanged), then other crops than OUT.
    befores = [frames[0]] + [np.roll(frame, 2, axis=0) for frame in frames[1:]]
    for before, frame, faces in zip(befores, frames, tracks, strict=True):
        cosines.add(before, frame, faces)
    outputs = [
        embedder.embed(aligned_crops(frame, faces))
        for frame, faces in zip(frames, tracks, strict=True)
    ]
    expected_temporal = [outputs[1][0] @ outputs[0][0], outputs[2][0] @ outputs[1][1]]
    inputs = [
        embedder.embed(aligned_crops(before, faces))
        for before, faces in zip(befores, tracks, strict=True)
    ]
    expected_input = [inputs[1][0] @ inputs[0][0], inputs[2][0] @ inputs[1][1]]
    figures = cosines.figures()
    assert figures["id_cos_temporal"] == pytest.approx(np.mean(expected_temporal), abs=1e-4)
    assert figures["id_cos_temporal_input"] == pytest.approx(np.mean(expected_input), abs=1e-4)
    assert figures["id_cos_temporal_input"] != pytest.approx(figures["id_cos_temporal"], abs=1e-4)
    to_source = np.concatenate(outputs) @ source
    assert figures["id_cos_source"] == pytest.approx(to_source, abs=1e-4)
    assert figures["id_cos_source_p5"] == pytest.approx(np.percentile(to_source, 5), abs=1e-4)
    assert figures["id_cos_source"][0] == pytest.approx(1, abs=1e-4)  # the source's own crop
    assert len(figures["id_cos_target"]) == 5 and figures["id_cos_target"][0] == pytest.approx(
        1, abs=1e-4
    )


def test_without_arcface_the_keys_are_null_and_say_where_they_looked(
    source_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = write_clip(tmp_path / "plain.mp4", frames=6)  # OUT = IN: only the keys matter here
    args = [source_image, clip, clip, "--json", "--weights", tmp_path / "w"]
    assert main([str(arg) for arg in ["evaluate", *args]]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics) == KEYS
    assert all(
        metrics[key] is None for key in KEYS if key.startswith("id_cos_") and key != "id_cos_note"
    )
    note = metrics["id_cos_note"]  # the flat name, the official layouts, the folders
    assert note.startswith("not measured: looked for ArcFace-Res50.h5 or ")
    assert "arcface_model/ArcFace-Res50.h5" in note
    assert note.endswith(f" in {tmp_path / 'w'}, weights; see --weights")
