"""The classic swap, compositing and the swap stage, end to end on clips with faces."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from face_fixtures import (
    astronaut,
    astronaut_actor,
    grace_actor,
    grace_hopper,
    line_path,
    write_actor_clip,
)
from onnx_fixtures import write_arcface, write_scrfd
from PIL import Image

from clipswap_video.cli import main
from clipswap_video.config import Settings, load_settings
from clipswap_video.config_sections import CompositeSettings
from clipswap_video.demo import ASTRONAUT_LANDMARKS_5, write_demo_media
from clipswap_video.errors import CorruptWeightsError, ExitCode
from clipswap_video.faces import (
    alignment_matrices,
    arcface_template,
    create_detector,
    dlib_backend,
    source_identity,
)
from clipswap_video.faces.dlib_backend import DESCRIPTOR_FILE, PREDICTOR_FILE
from clipswap_video.media import Frame, VideoReader
from clipswap_video.pipeline import run_video
from clipswap_video.swap import CropBatch, FaceSwapper, create_backend
from clipswap_video.swap.composite import (
    ColourStats,
    face_mask,
    lab_stats,
    mouth_interior,
    multiband_blend,
    paste,
    soft_inside,
    transfer_colour,
)
from media_fixtures import packets, write_clip


def _save(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path)
    return path


def _astronaut_crop() -> np.ndarray:
    matrix = alignment_matrices(np.array(ASTRONAUT_LANDMARKS_5), 256)[0]
    return cv2.warpAffine(astronaut(), matrix, (256, 256))


@pytest.fixture(scope="module")
def classic(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    source = _save(grace_hopper(), tmp_path_factory.mktemp("src") / "grace.png")
    backend = create_backend("classic")
    backend.prepare_source(source_identity(create_detector(load_settings().faces), [source]))
    return backend


# Compositing -----------------------------------------------------------------


def test_mask_is_soft_inside_the_hull_and_an_open_mouth_is_kept(classic) -> None:  # type: ignore[no-untyped-def]
    points = classic.landmarks(_astronaut_crop())
    mask = face_mask(points, 256, CompositeSettings())
    assert mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
    nose = np.round(points[30]).astype(int)
    assert mask[nose[1], nose[0]] > 0.95
    assert mask[5, 5] == 0  # corner: outside the face
    x, y = np.round(points[60:68].mean(0)).astype(int)
    open_mouth = points.copy()
    open_mouth[[61, 62, 63]] -= [0, 8]  # upper inner lip up, lower lip down: a gap
    open_mouth[[65, 66, 67]] += [0, 8]
    inside = mouth_interior(open_mouth, 256)
    allowed = soft_inside(~inside, 12)
    assert inside[y, x] and allowed[inside].max() == 0  # the open mouth keeps the frame
    assert allowed[nose[1], nose[0]] == 1
    # A closed mouth is a line of pixels: the soft mask fills it rather than cut the lips.
    closed = points.copy()
    closed[60:68, 1] = closed[60:68, 1].mean()
    assert soft_inside(~mouth_interior(closed, 256), 12)[y, x] > 0.5


def test_multiband_blend_limits_and_seam() -> None:
    front = np.full((256, 256, 3), 200, np.uint8)
    back = np.full((256, 256, 3), 50, np.uint8)
    ones, zeros = np.ones((256, 256), np.float32), np.zeros((256, 256), np.float32)
    assert np.abs(multiband_blend(front, back, ones).astype(int) - 200).max() <= 1
    assert np.abs(multiband_blend(front, back, zeros).astype(int) - 50).max() <= 1
    half = zeros.copy()
    half[:, :128] = 1
    row = multiband_blend(front, back, half)[128, :, 0].astype(int)
    assert row[10] > 190 and row[245] < 60 and np.all(np.diff(row) <= 1)  # a smooth ramp


def test_multiband_blend_of_an_image_with_itself_is_that_image() -> None:
    """Whatever the mask, blending an image with itself changes no pixel: the
    pyramid's float reconstruction is rounded, not truncated."""
    image = _astronaut_crop()
    mask = cv2.GaussianBlur(np.tri(256, 256, 0, np.float32), (0, 0), 9)
    assert np.array_equal(multiband_blend(image, image, mask), image)


def _rendered_by_opencv(
    frame: np.ndarray, crop: np.ndarray, mask: np.ndarray, matrix: np.ndarray
) -> np.ndarray:
    """cv2.warpAffine by the inverse matrix of the premultiplied crop (crop x mask)
    and of the mask, then face + frame x (1 - mask)."""
    height, width = frame.shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    face = cv2.warpAffine(crop * mask[..., None], inverse, (width, height))
    alpha = cv2.warpAffine(mask, inverse, (width, height))[..., None]
    return face + frame.astype(np.float32) * (1 - alpha)


def test_paste_matches_an_opencv_rendering() -> None:
    """`paste` against OpenCV: a soft mask on the astronaut, and a hard-edged
    mask (the crop filled to its border) at 40 random poses, faces up to three
    times larger in the frame than in the crop and partly off-frame, where the
    bilinear edge spans several frame pixels."""
    frame = astronaut().copy()
    matrix = alignment_matrices(np.array(ASTRONAUT_LANDMARKS_5) + [7.3, -4.6], 256)[0]
    crop = np.full((256, 256, 3), [230, 40, 120], np.uint8)
    soft = cv2.GaussianBlur(
        np.pad(np.ones((200, 180), np.float32), ((28, 28), (38, 38))), (0, 0), 12
    )
    expected = _rendered_by_opencv(frame, crop, soft, matrix)
    paste(frame, crop, soft, matrix)
    assert np.abs(frame - expected).max() <= 1
    rng = np.random.default_rng(0)
    crop, hard = crop[:64, :64], np.ones((64, 64), np.float32)
    template = arcface_template(112)
    for _ in range(40):
        frame = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 3)
        turn = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        matrix = alignment_matrices(template @ turn.T + rng.uniform(50, 350, 2), 64)[0]
        expected = _rendered_by_opencv(frame, crop, hard, matrix)
        paste(frame, crop, hard, matrix)
        assert np.abs(frame - expected).max() <= 1, (angle, scale)


def test_colour_transfer_matches_target_statistics() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    warmer = np.clip(image.astype(int) + [30, 0, -30], 0, 255).astype(np.uint8)
    mask = np.ones((64, 64), np.float32)
    moved = transfer_colour(image, lab_stats(image, mask), lab_stats(warmer, mask))
    assert np.allclose(lab_stats(moved, mask).mean, lab_stats(warmer, mask).mean, atol=1.5)
    # The spread moves too (Reinhard: per channel mean and std): a flatter target
    # in OpenCV's 8-bit LAB, computed here without the module's helpers.
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float64)
    flat = cv2.cvtColor(
        np.clip(lab.mean((0, 1)) + (lab - lab.mean((0, 1))) * 0.5, 0, 255).astype(np.uint8),
        cv2.COLOR_LAB2RGB,
    )
    calmer = transfer_colour(image, lab_stats(image, mask), lab_stats(flat, mask))
    spread = cv2.cvtColor(calmer, cv2.COLOR_RGB2LAB).astype(np.float64).std((0, 1))
    target = cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).astype(np.float64).std((0, 1))
    assert np.allclose(spread, target, rtol=0.1) and np.all(spread < 0.7 * lab.std((0, 1)))


def test_colour_statistics_come_from_inside_the_mask_only() -> None:
    """Pixels where the mask is at most 0.5 (its feathered edge, the background)
    do not count."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32], image[:, 32:] = (200, 120, 90), (20, 60, 200)  # skin, then a blue wall
    mask = np.full((32, 64), 0.4, np.float32)
    mask[:, :32] = 0.9
    skin = cv2.cvtColor(image[:, :32], cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    stats = lab_stats(image, mask)
    assert np.allclose(stats.mean, skin.mean(0)) and np.allclose(stats.std, 1e-3, atol=1e-6)


def test_colour_smoothing_weighs_the_previous_frame() -> None:
    """`temporal_smoothing` is the weight of the previous frame's statistics."""
    now = ColourStats(np.array([10.0, 0.0, 0.0]), np.array([2.0, 1.0, 1.0]))
    before = ColourStats(np.array([20.0, 0.0, 0.0]), np.array([4.0, 1.0, 1.0]))
    smoothed = now.blend(before, 0.8)
    assert np.allclose(smoothed.mean, [18.0, 0, 0]) and np.allclose(smoothed.std, [3.6, 1, 1])
    assert now.blend(before, 0.0) is now and now.blend(None, 0.8) is now


def test_mask_erode_keeps_the_mask_that_far_inside_the_hull(classic) -> None:  # type: ignore[no-untyped-def]
    """With no feather, `mask_erode` = e leaves exactly the pixels whose
    chessboard distance to the outside of the un-eroded mask is over e."""
    points = classic.landmarks(_astronaut_crop())
    full = face_mask(points, 256, CompositeSettings(mask_erode=0, mask_feather=0))
    eroded = face_mask(points, 256, CompositeSettings(mask_erode=5, mask_feather=0))
    # The crop's border counts as outside.
    inside = np.pad((full > 0.5).astype(np.uint8), 1)
    distance = cv2.distanceTransform(inside, cv2.DIST_C, 3)[1:-1, 1:-1]
    assert np.array_equal(eroded > 0.5, distance > 5)
    assert 0.5 * full.sum() < eroded.sum() < 0.95 * full.sum()


def test_a_hull_past_the_crop_fades_out_inside_it(classic) -> None:  # type: ignore[no-untyped-def]
    """A chin below the crop: the mask reaches zero before the crop's edge, so
    the paste has no seam where the crop ends."""
    points = classic.landmarks(_astronaut_crop()) + [0, 40]  # the jaw well past row 255
    assert points[:, 1].max() > 280
    mask = face_mask(points, 256, CompositeSettings())
    assert mask[-1].max() < 0.01 and mask[:, 0].max() < 0.01 and mask[:, -1].max() < 0.01
    nose = np.round(points[30]).astype(int)
    assert mask[nose[1], nose[0]] > 0.95
    rows = mask[:, nose[0]]
    assert np.all(np.diff(rows[nose[1] :]) <= 1e-6)  # fading down to the edge, not a step


def test_paste_round_trip_and_empty_mask() -> None:
    frame = astronaut().copy()
    matrix = alignment_matrices(np.array(ASTRONAUT_LANDMARKS_5), 256)[0]
    crop = cv2.warpAffine(frame, matrix, (256, 256))
    untouched = frame.copy()
    paste(untouched, np.zeros_like(crop), np.zeros((256, 256), np.float32), matrix)
    assert np.array_equal(untouched, frame)
    mask = np.zeros((256, 256), np.float32)
    mask[60:200, 60:200] = 1
    pasted = frame.copy()
    paste(pasted, crop, mask, matrix)
    inner = (slice(100, 140), slice(205, 245))
    assert np.abs(pasted[inner].astype(int) - frame[inner]).mean() < 3  # crop of itself
    assert np.array_equal(pasted[400:], frame[400:])  # far from the face: not touched


# Classic backend ---------------------------------------------------------------


def test_classic_puts_source_features_on_target_geometry(classic) -> None:  # type: ignore[no-untyped-def]
    target = _astronaut_crop()
    swapped = classic.swap(CropBatch(torch.from_numpy(target).permute(2, 0, 1)[None].float()))
    assert swapped.crops.shape == (1, 3, 256, 256) and swapped.landmarks_68 is not None
    assert swapped.landmarks_68.shape == (1, 68, 2)
    crop = swapped.crops[0].permute(1, 2, 0).round().byte().numpy()
    found = classic.landmarks(crop)
    error = np.linalg.norm(found - swapped.landmarks_68[0], axis=1)
    assert np.median(error) < 4.0  # the warped face sits on the target's landmarks


# The swap stage in the pipeline --------------------------------------------------


def _changed(tmp_path: Path, clip: Path, source: Path, *overrides: str) -> list[np.ndarray]:
    """Per frame, |swapped - decoded| (H x W), from a stage that runs after the swap."""
    changes: list[np.ndarray] = []

    def record(frame: Frame) -> None:
        original = frame.decoded.to_ndarray(format="rgb24").astype(int)
        changes.append(np.abs(frame.rgb().astype(int) - original).max(axis=2))

    settings = load_settings(overrides=["swap.swapper=classic", *overrides])
    run_video(source, clip, tmp_path / "out.mp4", settings, stages=[record])
    return changes


def test_frames_without_a_face_are_untouched(tmp_path: Path) -> None:
    path = line_path((120, 170), (520, 190), 2, 1.25, hidden=(0.5, 1.0))
    truth = write_actor_clip(tmp_path / "gone.mp4", [astronaut_actor(path)], seconds=2)
    source = _save(grace_hopper(), tmp_path / "grace.png")
    changes = _changed(tmp_path, tmp_path / "gone.mp4", source, "track.max_gap=0")
    for change, points in zip(changes, truth, strict=True):
        if points[0] is None:
            assert change.max() == 0
    assert sum(1 for c in changes if c.max() > 30) >= sum(p[0] is not None for p in truth) - 4
    # Bridging a lost face (track.max_gap) keeps it swapped for that many frames.
    max_gap = Settings().track.max_gap
    bridged = _changed(tmp_path, tmp_path / "gone.mp4", source)
    gap = [
        change.max() > 0 for change, points in zip(bridged, truth, strict=True) if points[0] is None
    ]
    assert gap == [True] * max_gap + [False] * (len(gap) - max_gap)


def test_faces_selection_limits_what_is_swapped(tmp_path: Path) -> None:
    actors = [
        astronaut_actor(line_path((150, 180), (200, 180), 1, 1.25)),
        grace_actor(line_path((480, 180), (450, 180), 1, 0.5)),
    ]
    write_actor_clip(tmp_path / "two.mp4", actors, seconds=1)
    source = _save(grace_hopper(), tmp_path / "grace.png")
    reference = _save(astronaut(), tmp_path / "astronaut.png")
    every = _changed(tmp_path, tmp_path / "two.mp4", source, "faces.select=all")
    only = _changed(tmp_path, tmp_path / "two.mp4", source, f'faces.select="reference:{reference}"')
    for both, one in zip(every, only, strict=True):
        assert both[:, :320].max() > 30 and both[:, 320:].max() > 30
        assert one[:, :320].max() > 30 and one[:, 320:].max() == 0  # Grace left alone


@pytest.mark.slow
def test_demo_swap_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    media = write_demo_media(tmp_path, seconds=2, width=640, height=360, fps=30)
    output, preview = tmp_path / "out.mp4", tmp_path / "side.png"
    args = [media.source_image, media.video, output, "--preview", preview]
    assert main([str(arg) for arg in args]) == 0
    err = capsys.readouterr().err
    assert "using the classic swapper" in err
    assert ": 60 frames, faces swapped in 60, in " in err  # the face is in every frame
    with av.open(str(output)) as container:
        assert container.metadata["comment"].startswith("synthetic: face swapped")
        assert sum(1 for _ in container.decode(video=0)) == 60
    assert packets(output, "audio") == packets(media.video, "audio")
    with Image.open(preview) as picture:
        assert picture.height == 360
    assert main(["evaluate", str(media.source_image), str(media.video), str(output), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["identity_transfer"] >= 0.9
    assert metrics["dist_to_source"] < metrics["dist_to_target"]
    assert metrics["flicker_ratio"] <= 1.5
    assert metrics["background_psnr_db"] >= 40
    assert metrics["frames_evaluated"] >= 20
    assert metrics["coverage"] >= 0.95 and metrics["frames_with_faces"] >= 55


def test_source_without_a_face_fails_before_any_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = tmp_path / "in.mp4"
    write_actor_clip(
        clip, [astronaut_actor(line_path((300, 180), (340, 180), 1, 1.25))], seconds=0.2
    )
    wall = _save(np.full((300, 300, 3), 128, np.uint8), tmp_path / "wall.png")
    code, err = cli(wall, clip, tmp_path / "out.mp4", "--swapper", "classic")
    assert code == 12 and "no face found in source image" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "wall.png"]


def test_a_corrupt_68_point_model_is_one_weights_error(cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The classic backend's landmark model is read by the dlib backend's checked
    loader: a broken file is a CorruptWeightsError naming it (exit 14), not dlib's
    RuntimeError. The CLI run detects with insightface (small ONNX stand-ins), so
    the dlib detector, which reads the same file, does not meet it first."""
    real = dlib_backend.dlib_models_dir()
    models = tmp_path / "dlib_models"
    models.mkdir()
    (models / DESCRIPTOR_FILE).symlink_to(real / DESCRIPTOR_FILE)
    (models / PREDICTOR_FILE).write_bytes(b"not a dlib model")
    monkeypatch.setattr(dlib_backend, "dlib_models_dir", lambda: models)
    with pytest.raises(CorruptWeightsError, match=PREDICTOR_FILE):
        create_backend("classic")

    pack = tmp_path / "weights" / "buffalo_l"
    pack.mkdir(parents=True)
    face = {
        "stride": 16,
        "cell": (20, 20),
        "anchor": 0,
        "score": 0.9,
        "box": (260, 240, 380, 400),
        "points": np.full((5, 2), 320.0),
    }
    face["points"][:, 0] += [-25, 25, 0, -20, 20]
    face["points"][:, 1] += [-20, -20, 10, 40, 40]
    write_scrfd(pack / "det_10g.onnx", (640, 640), [face])
    write_arcface(pack / "w600k_r50.onnx")
    source = _save(grace_hopper(), tmp_path / "grace.png")
    clip = write_clip(tmp_path / "in.mp4", frames=5)
    code, err = cli(
        source,
        clip,
        tmp_path / "out.mp4",
        "--swapper",
        "classic",
        "--detector",
        "insightface",
        "--weights",
        pack.parent,
    )
    assert code == ExitCode.CORRUPT_WEIGHTS, err
    assert err.count("\n") == 1 and f"{PREDICTOR_FILE} cannot be loaded" in err
    assert not (tmp_path / "out.mp4").exists()


def test_evaluate_errors_are_one_line(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = tmp_path / "in.mp4"
    write_actor_clip(
        clip, [astronaut_actor(line_path((300, 180), (340, 180), 1, 1.25))], seconds=0.2
    )
    code, err = cli("evaluate", source_image, clip, tmp_path / "missing.mp4")
    assert code == 5 and err.count("\n") == 1
    short = tmp_path / "short.mp4"
    write_actor_clip(
        short, [astronaut_actor(line_path((300, 180), (340, 180), 1, 1.25))], seconds=0.1
    )
    code, err = cli("evaluate", source_image, clip, short)
    assert code == 6 and "different frame counts" in err


def test_paper_mask_values() -> None:
    from clipswap_video.swap.composite import paper_mask

    mask = paper_mask()
    assert mask.shape == (256, 256) and mask.dtype == np.float32
    assert mask[158, 128] == pytest.approx(1.0, abs=1e-6)
    assert mask[77, 128] == pytest.approx(0.528, abs=1e-3)  # the reference's figure
    assert mask[0, 0] == 0 and mask[5, 128] < 1e-6
    assert paper_mask(128).shape == (128, 128)


def test_paper_mask_in_the_stage(tmp_path: Path) -> None:
    path = line_path((300, 180), (330, 180), 0.3, 1.25)
    write_actor_clip(tmp_path / "in.mp4", [astronaut_actor(path)], seconds=0.3)
    source = _save(grace_hopper(), tmp_path / "grace.png")
    changes = _changed(tmp_path, tmp_path / "in.mp4", source, "composite.masks=paper")
    assert all(change.max() > 30 for change in changes)


@pytest.mark.slow  # two swaps through the stage: 27 s on a busy 2-core machine
def test_several_source_photos(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two different people: the identity is the re-normalised mean of each photo's own unit
    embedding, and the neural swap of both differs from the swap of the first alone."""
    from test_clipswap_backend import _weights

    grace = _save(grace_hopper(), tmp_path / "grace.png")
    second = _save(astronaut(), tmp_path / "astronaut.png")
    settings = load_settings(overrides=["swap.swapper=clipswap"])
    swapper = FaceSwapper(settings, [grace, second], _weights(tmp_path / "w"))
    each = [source_identity(swapper.detector, [path]) for path in (grace, second)]
    mean = (each[0].embedding + each[1].embedding) / 2
    both = swapper.identity.embedding
    np.testing.assert_allclose(both, mean / np.linalg.norm(mean), rtol=0, atol=1e-6)
    assert all(np.linalg.norm(both - one.embedding) > 0.1 for one in each)  # neither alone
    clip = tmp_path / "in.mp4"
    write_actor_clip(
        clip, [astronaut_actor(line_path((300, 180), (330, 180), 1, 1.25))], seconds=0.1
    )  # 3 frames: the generator takes about a second a frame on the CPU
    outputs = []
    for identity in (swapper.identity, each[0]):
        swapper.backend.prepare_source(identity)
        with VideoReader(clip) as reader:
            stage = swapper.stage_for(reader.info)
            done = [out for frame in reader.frames() for out in stage.push(frame)] + stage.flush()
        assert stage.coverage.faces_swapped == len(done) == 3
        outputs.append(np.stack([frame.pixels for frame in done]).astype(int))
    face = (slice(None), slice(130, 230), slice(250, 350))
    assert np.abs(outputs[0][face] - outputs[1][face]).mean() > 5
    code, err = cli(f"{grace},{tmp_path / 'missing.png'}", clip, tmp_path / "o2.mp4")
    assert code == 5 and "missing.png" in err


def test_the_paper_composite_pastes_in_detection_order(tmp_path: Path) -> None:
    grace = _save(grace_hopper(), tmp_path / "grace.png")
    settings = load_settings(
        overrides=[
            "swap.swapper=classic",
            'composite.masks=["paper"]',
            "composite.keep_mouth=false",
            'composite.blend="alpha"',
        ]
        + ["composite.colour_transfer=false"]
    )
    clip = write_clip(tmp_path / "plain.mp4", frames=1)
    swapper = FaceSwapper(settings, [grace])
    [face] = swapper.detector.detect(astronaut())
    # The tracker reports by id; the paper pastes by score, best first.
    by_id = [face.with_(track_id=0, score=0.6), face.with_(track_id=1, score=0.9)]
    with VideoReader(clip) as reader:
        stage = swapper.stage_for(reader.info)
        assert stage.engine.pastes
        stage.analyzer.analyse = lambda image: by_id  # type: ignore[method-assign]
        submitted = []
        stage.engine.submit = lambda work: submitted.append(work) or []  # type: ignore[method-assign]
        stage.push(next(iter(reader.frames())))
    assert [f.track_id for f in submitted[0].faces] == [1, 0]


def test_a_crop_much_larger_than_its_face_is_averaged_before_the_paste() -> None:
    """A 512 px crop pasted onto a face a fifth its size: a fine checkerboard in
    the crop lands as its mean grey (a bare bilinear warp would pick pixels and
    leave a pattern that shifts as the face moves)."""
    from clipswap_video.swap.composite import paste

    crop = np.zeros((512, 512, 3), np.uint8)
    crop[::2, ::2] = crop[1::2, 1::2] = 200  # mean 100
    matrix = np.array([[5.0, 0.0, -150.0], [0.0, 5.0, -150.0]])  # 5 crop px per frame px
    for shift in (0.0, 0.3):
        frame = np.zeros((200, 200, 3), np.uint8)
        moved = matrix.copy()
        moved[:, 2] += 5.0 * shift
        paste(frame, crop, np.ones((512, 512), np.float32), moved)
        inside = frame[60:110, 60:110].astype(float)
        assert abs(inside.mean() - 100) < 2 and inside.std() < 3, (shift, inside.std())
