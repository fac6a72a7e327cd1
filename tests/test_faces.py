"""The dlib backend, alignment, source identity and selection on real photos."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from face_fixtures import GRACE_LANDMARKS_5, T1_IMAGE, astronaut, grace_hopper
from PIL import Image

from clipswap_video.config_sections import FaceSettings
from clipswap_video.demo import ASTRONAUT_FACE_BOX, ASTRONAUT_LANDMARKS_5
from clipswap_video.errors import ConfigValueError, InputNotFoundError, NoFaceError
from clipswap_video.faces import (
    FaceSelector,
    alignment_matrices,
    arcface_template,
    create_detector,
    embedding_distance,
    estimate_similarity,
    invert_affine,
    list_detectors,
    parse_selection,
    source_identity,
    warp_back,
    warp_crops,
)
from clipswap_video.faces.backends import resolve_detector
from clipswap_video.faces.types import Face, box_iou


@pytest.fixture(scope="module")
def dlib_detector():  # type: ignore[no-untyped-def]
    return create_detector(FaceSettings(detector="dlib"))


def _t1() -> np.ndarray:
    with Image.open(T1_IMAGE) as image:
        return np.asarray(image.convert("RGB"))


def _save(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path)
    return path


def test_every_detector_is_listed() -> None:
    assert list_detectors() == ["dlib", "insightface", "retinaface", "retinaface_mobile"]


def test_unknown_backend_is_a_config_error() -> None:
    settings = dataclasses.replace(FaceSettings(), detector="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigValueError, match="unknown face detector 'nope'"):
        create_detector(settings)


def test_astronaut_one_face_landmarks_where_measured(dlib_detector) -> None:  # type: ignore[no-untyped-def]
    faces = dlib_detector.detect(astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert box_iou(face.box, np.array(ASTRONAUT_FACE_BOX))[0, 0] > 0.8
    error = np.linalg.norm(face.landmarks_5 - np.array(ASTRONAUT_LANDMARKS_5), axis=1)
    assert error.max() < 2.0
    assert face.landmarks_dense is not None and face.landmarks_dense.shape == (68, 2)


def test_grace_hopper_one_face_with_sane_geometry(dlib_detector) -> None:  # type: ignore[no-untyped-def]
    faces = dlib_detector.detect(grace_hopper())
    assert len(faces) == 1
    left_eye, right_eye, nose, left_mouth, right_mouth = faces[0].landmarks_5
    assert left_eye[0] < nose[0] < right_eye[0]  # image left to right
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])
    x1, y1, x2, y2 = faces[0].box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in faces[0].landmarks_5)


def test_t1_six_faces_and_six_identities(dlib_detector) -> None:  # type: ignore[no-untyped-def]
    image = _t1()
    faces = dlib_detector.embed(image, dlib_detector.detect(image))
    assert len(faces) == 6
    assert (
        box_iou(np.stack([f.box for f in faces]), np.stack([f.box for f in faces])) < 0.1
    ).sum() == 30
    for a in range(6):  # six different people: no pair within the same-person distance
        for b in range(a + 1, 6):
            assert (
                embedding_distance(faces[a].embedding, faces[b].embedding)
                > dlib_detector.match_distance
            )


def test_downscaled_detection_maps_back_to_frame_pixels(dlib_detector) -> None:  # type: ignore[no-untyped-def]
    large = cv2.resize(astronaut(), (1536, 1536), interpolation=cv2.INTER_CUBIC)
    small = create_detector(dataclasses.replace(FaceSettings(detector="dlib"), detect_size=512))
    face = small.detect(large)[0]
    expected = np.array(ASTRONAUT_LANDMARKS_5) * 3 + 1  # pixel centres scale about -0.5
    assert np.linalg.norm(face.landmarks_5 - expected, axis=1).mean() < 5.0
    assert box_iou(face.box, np.array(ASTRONAUT_FACE_BOX) * 3)[0, 0] > 0.7


def test_min_size_drops_small_faces() -> None:
    detector = create_detector(dataclasses.replace(FaceSettings(), min_size=200))
    assert detector.detect(astronaut()) == []


def test_same_person_is_near_others_are_far(dlib_detector) -> None:  # type: ignore[no-untyped-def]
    image = astronaut()
    darker = np.clip(image * 0.7, 0, 255).astype(np.uint8)
    [a] = dlib_detector.embed(image, dlib_detector.detect(image))
    [b] = dlib_detector.embed(darker, dlib_detector.detect(darker))
    [c] = dlib_detector.embed(grace_hopper(), dlib_detector.detect(grace_hopper()))
    assert np.isclose(np.linalg.norm(a.embedding), 1.0, atol=1e-5)
    assert embedding_distance(a.embedding, b.embedding) < dlib_detector.match_distance
    assert embedding_distance(a.embedding, c.embedding) > dlib_detector.match_distance


def test_refresh_follows_a_moved_face(dlib_detector) -> None:  # type: ignore[no-untyped-def]
    [face] = dlib_detector.detect(astronaut())
    moved = np.roll(astronaut(), (6, 9), axis=(0, 1))  # 9 px right, 6 px down
    [refreshed] = dlib_detector.refresh(moved, [face])
    shift = (refreshed.landmarks_5 - face.landmarks_5).mean(0)
    assert np.allclose(shift, [9, 6], atol=1.5)
    assert box_iou(refreshed.box, face.box + [9, 6, 9, 6])[0, 0] > 0.75  # HOG boxes are coarse


# Alignment -------------------------------------------------------------------


def test_similarity_recovers_a_known_transform() -> None:
    angle, scale = np.deg2rad(20), 1.7
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = np.array(ASTRONAUT_LANDMARKS_5)
    moved = points @ rotation.T + [12.0, -30.0]
    matrix = estimate_similarity(points, moved)
    assert np.allclose(matrix, np.hstack([rotation, [[12.0], [-30.0]]]), atol=1e-9)


def test_similarity_of_mirrored_points_is_a_rotation_not_a_reflection() -> None:
    """A mirrored face (a selfie camera, a flopped plate) still aligns with a proper
    rotation: the least-squares similarity is scikit-image's, whose Umeyama
    estimate excludes reflections."""
    from skimage.transform import SimilarityTransform

    mirrored = np.array(ASTRONAUT_LANDMARKS_5) * [-1.0, 1.0] + [400.0, 0.0]
    template = arcface_template(256)
    matrix = estimate_similarity(mirrored, template)
    reference = SimilarityTransform.from_estimate(mirrored, template).params[:2]
    assert np.linalg.det(matrix[:, :2]) > 0
    assert np.allclose(matrix, reference, atol=1e-9)


def test_template_landmarks_align_onto_the_template() -> None:
    matrix = alignment_matrices(arcface_template(112) * 2 + 5, 256)[0]
    mapped = np.c_[arcface_template(112) * 2 + 5, np.ones(5)] @ matrix.T
    assert np.allclose(mapped, arcface_template(256), atol=1e-9)
    assert np.allclose(arcface_template(256)[0], [87.531, 118.163], atol=1e-3)


@pytest.mark.parametrize("size", [112, 256])
def test_torch_crops_match_opencv(size: int) -> None:
    image = astronaut()
    matrices = alignment_matrices(np.array(ASTRONAUT_LANDMARKS_5), size)
    frames = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    crop = warp_crops(frames, matrices, size)[0].permute(1, 2, 0).numpy()
    reference = cv2.warpAffine(image, matrices[0], (size, size), flags=cv2.INTER_LINEAR)
    assert np.abs(crop - reference).mean() < 0.5  # OpenCV rounds to uint8 and 1/32 px


def test_batched_crops_from_several_frames() -> None:
    images = np.stack([astronaut(), astronaut()[:, ::-1]])
    frames = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float()
    flipped = np.array(ASTRONAUT_LANDMARKS_5) * [-1, 1] + [511, 0]
    landmarks = np.stack([ASTRONAUT_LANDMARKS_5, flipped[[1, 0, 2, 4, 3]], ASTRONAUT_LANDMARKS_5])
    matrices = alignment_matrices(landmarks, 112)
    crops = warp_crops(frames, matrices, 112, frame_index=torch.tensor([0, 1, 0]))
    assert crops.shape == (3, 3, 112, 112)
    assert torch.equal(crops[0], crops[2])
    alone = warp_crops(frames[1:], matrices[1:2], 112)
    assert torch.allclose(crops[1], alone[0])


def test_warp_back_inverts_the_crop() -> None:
    image = astronaut()
    matrices = alignment_matrices(np.array(ASTRONAUT_LANDMARKS_5), 256)
    frames = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    crop = warp_crops(frames, matrices, 256)
    back = warp_back(crop, matrices, (512, 512))[0].permute(1, 2, 0).numpy()
    inner = (slice(95, 135), slice(205, 245))  # around the nose, well inside the crop
    assert np.abs(back[inner] - image[inner]).mean() < 4.0
    reference = cv2.warpAffine(
        crop[0].permute(1, 2, 0).numpy(), invert_affine(matrices)[0], (512, 512)
    )
    assert np.abs(back - reference).mean() < 0.05


@pytest.mark.parametrize("in_32nds", [False, True])
def test_warps_of_a_frame_region_match_the_whole_frame(in_32nds: bool) -> None:
    frame = torch.from_numpy(astronaut()).permute(2, 0, 1)[None].float()
    matrices = alignment_matrices(np.array(ASTRONAUT_LANDMARKS_5), 256)
    x0, y0, x1, y1 = 150, 40, 330, 230
    whole = warp_crops(frame, matrices, 256, in_32nds=in_32nds)
    region = frame[..., y0:y1, x0:x1]
    from_region = warp_crops(region, matrices, 256, origin=(x0, y0), in_32nds=in_32nds)
    inside = whole.new_ones(1, 1, 512, 512)
    inside_crop = warp_crops(inside[..., y0:y1, x0:x1], matrices, 256, origin=(x0, y0))
    covered = inside_crop == 1  # crop pixels whose four taps all lie in the region
    assert 0.3 < covered.float().mean() < 1
    # (float32 grid coordinates differ by ~1e-5 px between frame and region)
    assert torch.allclose(
        from_region[covered.expand_as(from_region)], whole[covered.expand_as(whole)], atol=0.05
    )
    back = warp_back(whole, matrices, (512, 512), in_32nds=in_32nds)
    back_region = warp_back(whole, matrices, (y1 - y0, x1 - x0), origin=(x0, y0), in_32nds=in_32nds)
    assert torch.allclose(back_region, back[..., y0:y1, x0:x1], atol=0.05)


def test_warp_back_in_32nds_samples_where_opencv_does() -> None:
    noise = np.random.default_rng(3).random((256, 256, 2))  # worst case for sub-pixel error
    landmarks = np.array(ASTRONAUT_LANDMARKS_5) + [[-150.3, 20.7]]  # reaching past the border
    matrices = alignment_matrices(landmarks, 256)
    crops = torch.from_numpy(noise).permute(2, 0, 1)[None].float()
    size = (300, 420)
    exact = warp_back(crops, matrices, size)[0].permute(1, 2, 0).numpy()
    stepped = warp_back(crops, matrices, size, in_32nds=True)[0].permute(1, 2, 0).numpy()
    # OpenCV warps float64 images in 1/32 px steps (and every type before OpenCV 5).
    reference = cv2.warpAffine(noise, invert_affine(matrices)[0], size[::-1])
    assert np.abs(stepped - reference).max() < 1e-5
    assert np.abs(exact - reference).max() > 1e-3


# Source identity and selection -------------------------------------------------


def test_source_identity_of_several_photos(dlib_detector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = _save(grace_hopper(), tmp_path / "a.png")
    second = _save(np.clip(grace_hopper() * 0.8, 0, 255).astype(np.uint8), tmp_path / "b.jpg")
    identity = source_identity(dlib_detector, [first, second])
    assert len(identity.faces) == 2 and identity.notes == ()
    one = source_identity(dlib_detector, [first]).embedding
    assert np.isclose(np.linalg.norm(identity.embedding), 1.0, atol=1e-5)
    assert embedding_distance(identity.embedding, one) < 0.01


def test_source_without_a_face_is_a_clear_error(dlib_detector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blank = _save(np.full((300, 300, 3), 128, np.uint8), tmp_path / "wall.png")
    with pytest.raises(NoFaceError, match=r"no face found in source image .*wall\.png"):
        source_identity(dlib_detector, [blank])
    with pytest.raises(InputNotFoundError):
        source_identity(dlib_detector, [tmp_path / "missing.jpg"])


def test_source_with_several_faces_takes_the_largest_or_the_nth(
    dlib_detector, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    group = _save(_t1(), tmp_path / "group.jpg")
    identity = source_identity(dlib_detector, [group])
    assert "has 6 faces; using the largest" in identity.notes[0]
    sizes = [face.size for face in dlib_detector.detect(_t1())]
    assert identity.faces[0].size == max(sizes)
    leftmost = source_identity(dlib_detector, [group], source_face=1).faces[0]
    assert leftmost.box[0] == min(face.box[0] for face in dlib_detector.detect(_t1()))
    with pytest.raises(NoFaceError, match="there is no face 7"):
        source_identity(dlib_detector, [group], source_face=7)


def test_small_photo_is_searched_at_twice_the_size(dlib_detector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = cv2.resize(grace_hopper(), (128, 150), interpolation=cv2.INTER_AREA)  # face ~54 px
    assert dlib_detector.detect(small) == []
    face = source_identity(dlib_detector, [_save(small, tmp_path / "s.png")]).faces[0]
    expected = (np.array(GRACE_LANDMARKS_5) + 0.5) / 4 - 0.5
    assert np.linalg.norm(face.landmarks_5 - expected, axis=1).mean() < 2.5


def test_parse_selection() -> None:
    assert parse_selection("all").mode == "all"
    assert parse_selection("largest").mode == "largest"
    assert parse_selection("reference:a.jpg,b.png").references == (Path("a.jpg"), Path("b.png"))
    for bad in ("biggest", "reference:", "all:x"):
        with pytest.raises(ConfigValueError):
            parse_selection(bad)


def test_reference_selects_the_matching_person(dlib_detector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = _t1()
    faces = dlib_detector.embed(image, dlib_detector.detect(image))
    target = faces[3]
    x1, y1, x2, y2 = (int(v) for v in target.box)
    pad = int(target.size)  # a portrait cut from the group photo
    portrait = image[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    reference = _save(cv2.resize(portrait, None, fx=2, fy=2), tmp_path / "ref.png")
    selector = FaceSelector(parse_selection(f"reference:{reference}"), dlib_detector)
    assert selector.select(faces) == [target]


def test_largest_is_sticky_between_similar_faces(dlib_detector) -> None:  # type: ignore[no-untyped-def]
    selector = FaceSelector(parse_selection("largest"), dlib_detector)
    box = np.array([0, 0, 100, 100], np.float32)
    points = np.zeros((5, 2), np.float32)
    a = Face(box=box, score=1, landmarks_5=points, track_id=1)
    b = Face(box=box * 1.1, score=1, landmarks_5=points, track_id=2)
    c = Face(box=box * 1.3, score=1, landmarks_5=points, track_id=2)
    assert selector.select([a]) == [a]
    assert selector.select([a, b]) == [a]  # 10% larger: no flip
    assert selector.select([a, c]) == [c]  # 30% larger: the new largest


def test_package_exports_match_the_lazy_table() -> None:
    import clipswap_video.faces as faces

    assert sorted(faces.__all__) == sorted(faces._MODULE_OF)
    assert all(getattr(faces, name) is not None for name in faces.__all__)


def test_source_face_score_takes_the_highest_scoring(tmp_path: Path) -> None:
    detector = create_detector(FaceSettings())
    group = _save(_t1(), tmp_path / "group.png")
    best = max(detector.detect(_t1()), key=lambda face: face.score)
    identity = source_identity(detector, [group], "score")
    assert identity.faces[0].box == pytest.approx(best.box, abs=1.0)
    assert "using the highest-scoring" in identity.notes[0]
    largest = source_identity(detector, [group], 0).faces[0]
    assert not np.allclose(largest.box, best.box, atol=1.0)  # t1's largest is another face


def test_auto_detector_follows_the_generator_training(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    auto = FaceSettings()
    assert auto.detector == "auto"
    assert resolve_detector(auto, "clipswap", weights)[0] == "retinaface_mobile"  # no file
    (weights / "RetinaFace-Res50.h5").write_bytes(b"")  # found by name; not loaded here
    name, why = resolve_detector(auto, "clipswap", weights)
    assert name == "retinaface" and "trained on its alignment" in why
    assert resolve_detector(auto, "classic", weights)[0] == "retinaface_mobile"
    assert resolve_detector(auto, None, weights)[0] == "retinaface_mobile"
    chosen = FaceSettings(detector="dlib")
    assert resolve_detector(chosen, "clipswap", weights) == ("dlib", "faces.detector")
