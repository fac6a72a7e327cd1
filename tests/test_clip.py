"""CLIP image embeddings on a tiny open_clip ViT, and the torchvision compatibility module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.models.clip import ClipImageEncoder
from clipswap_video.models.torchvision_compat import ensure_torchvision, uses_fallback_ops

TINY = "clipswap-test-tiny-vit"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def open_clip() -> ModuleType:
    ensure_torchvision()
    import open_clip

    return open_clip


@pytest.fixture(scope="module")
def tiny_weights(open_clip: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registers the TINY config with open_clip and saves random weights for it."""
    folder = tmp_path_factory.mktemp("clip")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY)
    save_file(model.state_dict(), folder / "tiny.safetensors")
    torch.save(model.state_dict(), folder / "tiny.pt")
    return folder / "tiny.safetensors"


@pytest.fixture(scope="module")
def encoder(tiny_weights: Path) -> ClipImageEncoder:
    return ClipImageEncoder(TINY, tiny_weights)


def images(*shapes: tuple[int, int], seed: int = 0) -> list[npt.NDArray[np.uint8]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def test_embeddings_have_the_model_width_and_unit_length(encoder: ClipImageEncoder) -> None:
    embeddings = encoder.embed(images((40, 56), (64, 48), (32, 32)))
    assert encoder.embedding_dim == 16
    assert embeddings.shape == (3, 16) and embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    assert encoder.embed([]).shape == (0, 16)


def test_embed_is_deterministic_across_calls_and_instances(
    encoder: ClipImageEncoder, tiny_weights: Path
) -> None:
    batch = images((50, 70), (33, 90))
    first = encoder.embed(batch)
    assert torch.equal(first, encoder.embed(batch))
    assert torch.equal(first, ClipImageEncoder(TINY, tiny_weights).embed(batch))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_equals_open_clip_on_its_own_preprocess(
    open_clip: ModuleType, tiny_weights: Path, suffix: str
) -> None:
    path = tiny_weights.with_suffix(suffix)
    batch = images((41, 67), (80, 30), seed=1)
    model, preprocess = open_clip.create_model_from_pretrained(TINY, pretrained=str(path))
    pixels = torch.stack([preprocess(Image.fromarray(image)) for image in batch])
    with torch.no_grad():
        expected = model.eval().encode_image(pixels, normalize=True)
    torch.testing.assert_close(ClipImageEncoder(TINY, path).embed(batch), expected)


def test_a_batch_equals_one_image_at_a_time(encoder: ClipImageEncoder) -> None:
    batch = images((45, 45), (60, 36), (36, 60), seed=2)
    one_by_one = torch.cat([encoder.embed([image]) for image in batch])
    torch.testing.assert_close(encoder.embed(batch), one_by_one, rtol=0, atol=1e-6)


def test_rejects_images_that_are_not_uint8_rgb(encoder: ClipImageEncoder) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        encoder.embed([np.zeros((32, 32), np.uint8)])


@pytest.fixture
def no_downloads(open_clip: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails the test (open_clip's download entry points)."""

    def download(*args: object, **kwargs: object) -> str:
        raise AssertionError("tried to download weights")

    for name in ("download_pretrained", "download_pretrained_from_hf", "hf_hub_download"):
        monkeypatch.setattr(open_clip.pretrained, name, download)
    monkeypatch.setattr(open_clip.factory, "download_pretrained", download)


def empty_hub_cache(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(folder))
    return folder


def check_one_line(error: pytest.ExceptionInfo[Exception], *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message


@pytest.mark.usefixtures("no_downloads", "tiny_weights")
@pytest.mark.parametrize(
    ("model", "weights", "words"),
    [
        (TINY, None, [TINY, "clip_weights"]),
        (TINY, "missing/tiny.safetensors", ["missing/tiny.safetensors", TINY, "no such file"]),
        ("ViT-B-32", "no_such_tag", ["no_such_tag", "laion2b_s34b_b79k", "clip_weights"]),
        ("ViT-B-32", "laion2b_s34b_b79k", ["ViT-B-32", "never downloaded", "clip_weights"]),
    ],
)
def test_missing_weights_fail_in_one_line_without_download(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model: str,
    weights: str | None,
    words: list[str],
) -> None:
    empty_hub_cache(monkeypatch, tmp_path)
    with pytest.raises(MissingWeightsError) as error:
        ClipImageEncoder(model, weights)
    check_one_line(error, *words)


def write_garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(3).bytes(4096))
    return path


def write_other_model(folder: Path) -> Path:
    save_file({"other": torch.zeros(2)}, folder / "other.safetensors")
    return folder / "other.safetensors"


@pytest.mark.parametrize(
    "write",
    [
        lambda folder: write_garbage(folder / "garbage.safetensors"),
        lambda folder: write_garbage(folder / "garbage.pt"),
        write_other_model,
    ],
    ids=["garbage-safetensors", "garbage-pt", "other-model"],
)
@pytest.mark.usefixtures("tiny_weights")
def test_unloadable_files_are_corrupt_weights(
    tmp_path: Path, write: Callable[[Path], Path]
) -> None:
    path = write(tmp_path)
    with pytest.raises(CorruptWeightsError) as error:
        ClipImageEncoder(TINY, path)
    check_one_line(error, str(path), TINY)


@pytest.mark.usefixtures("no_downloads")
def test_a_cached_pretrained_tag_is_loaded_from_the_hub_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The cache lookup finds open_clip's file; garbage there proves it was loaded."""
    repo = empty_hub_cache(monkeypatch, tmp_path) / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    cached = write_garbage(repo / "snapshots" / ("0" * 40) / "open_clip_model.safetensors")
    with pytest.raises(CorruptWeightsError) as error:
        ClipImageEncoder("ViT-B-32", "laion2b_s34b_b79k")
    check_one_line(error, str(cached))


def test_unknown_model_names_close_matches() -> None:
    with pytest.raises(ConfigValueError) as error:
        ClipImageEncoder("ViT-B-23", "weights.safetensors")
    check_one_line(error, "ViT-B-23", "ViT-B-32")


def numpy_nms(
    boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float
) -> list[int]:
    """Greedy NMS, written out plainly as the reference."""
    order = list(np.argsort(-scores, kind="stable"))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        best, order = order[0], order[1:]
        keep.append(int(best))
        top_left = np.maximum(boxes[best, :2], boxes[order, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[order, 2:])
        inter = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
        overlap = inter / (areas[best] + areas[order] - inter)
        order = [j for j, o in zip(order, overlap, strict=True) if o <= iou]
    return keep


@pytest.mark.parametrize("iou", [0.0, 0.3, 0.5, 0.9])
def test_torchvision_imports_and_its_nms_matches_numpy(iou: float) -> None:
    ensure_torchvision()
    ensure_torchvision()  # idempotent
    import torchvision

    rng = np.random.default_rng(4)
    corners = rng.uniform(0, 100, (300, 2)).astype(np.float32)
    boxes = np.concatenate(
        [corners, corners + rng.uniform(1, 40, (300, 2))], axis=1, dtype=np.float32
    )
    scores = rng.permutation(300).astype(np.float32)  # distinct, so the order is unambiguous
    keep = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou)
    assert keep.dtype == torch.int64
    assert keep.tolist() == numpy_nms(boxes, scores, iou)


def test_ops_without_a_fallback_say_so() -> None:
    ensure_torchvision()
    if not uses_fallback_ops():
        pytest.skip("torchvision's compiled ops load on this machine")
    import torchvision

    with pytest.raises(NotImplementedError, match="torchvision::roi_pool"):
        torchvision.ops.roi_pool(torch.rand(1, 3, 8, 8), [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], 2)


def test_is_a_no_op_where_the_compiled_ops_load() -> None:
    """Simulated in a fresh process: with ``_C`` loading, nothing is registered."""
    script = (
        "import torch\n"
        "from clipswap_video.models import torchvision_compat as compat\n"
        "compat._load_compiled_ops = lambda folder: True\n"
        "compat.ensure_torchvision()\n"
        "assert not compat.uses_fallback_ops()\n"
        "assert not hasattr(torch.ops.torchvision, 'nms')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def _wide_generator(folder: Path, z_dim: int) -> Path:
    """The test ClipSwap weights, with a generator taking a `z_dim` identity."""
    from keras_writer import write_keras_h5
    from test_clipswap_backend import _weights

    from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
    from clipswap_video.models.spec_graph import random_weights

    _weights(folder)
    spec = GeneratorSpec(z_dim=z_dim, channels=(4,) * 6, mapping_depth=1, mapping_size=8)
    config, shapes = generator_config(spec)
    write_keras_h5(folder / "ClipSwap.h5", config, random_weights(shapes, seed=1))
    return folder


def test_a_wider_identity_input_gets_the_clip_embedding(
    tiny_weights: Path, encoder: ClipImageEncoder, tmp_path: Path
) -> None:
    """Both halves of a wide z against crops aligned by hand (tests/identity_reference), over
    two different people: ArcFace's raw mean output, then the mean CLIP embedding."""
    from face_fixtures import astronaut, grace_hopper
    from identity_reference import aligned_crop, identity_net_output

    from clipswap_video.config import load_settings
    from clipswap_video.faces import create_detector, source_identity
    from clipswap_video.swap.backends import create_backend

    folder = _wide_generator(tmp_path / "w", 512 + encoder.embedding_dim)
    settings = load_settings(
        overrides=[f"swap.clip_model={TINY}", f"swap.clip_weights={tiny_weights}"]
    )
    backend = create_backend("clipswap", folder, settings.swap)
    sources = [tmp_path / "grace.png", tmp_path / "astronaut.png"]
    for path, image in zip(sources, [grace_hopper(), astronaut()], strict=True):
        Image.fromarray(image).save(path)
    identity = source_identity(create_detector(settings.faces), sources)
    backend.prepare_source(identity)
    z = backend.z  # type: ignore[attr-defined]
    assert z.shape == (1, 512 + encoder.embedding_dim)
    photos = list(zip(identity.images, (face.landmarks_5 for face in identity.faces), strict=True))
    arcface = np.mean([identity_net_output(aligned_crop(*photo, 112)) for photo in photos], axis=0)
    tolerance = 1e-4 * np.abs(arcface).max()
    np.testing.assert_allclose(z[0, :512].numpy(), arcface, rtol=1e-4, atol=tolerance)
    clip = encoder.embed([aligned_crop(*photo, 256) for photo in photos])
    torch.testing.assert_close(z[:, 512:], clip.mean(0, keepdim=True))
    assert (clip[0] - clip[1]).abs().max() > 0.01  # two people: one photo is not the mean
    narrow = _wide_generator(tmp_path / "x", 512 + 8)
    with pytest.raises(ConfigValueError, match="512 \\+ a 8-d CLIP embedding"):
        create_backend("clipswap", narrow, settings.swap)
