"""The onnx backend (FaceFusion's swappers) on stand-in files in the real
signatures (tests/facefusion_fixtures.py), and the knobs every backend takes
(pixel boost, swap strength): each model's normalisation and source against one
computed by hand, batched against per-face calls, broken and unknown files, a
FaceFusion models folder as it is, and runs end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from face_fixtures import GRACE_LANDMARKS_5, grace_hopper, grace_identity
from facefusion_fixtures import converter_matrix, swapper_reference, write_converter, write_swapper
from onnx_fixtures import arcface_reference, write_arcface

from clipswap_video.bench.swappers import SWAPPERS, write_standins
from clipswap_video.config import load_settings
from clipswap_video.errors import (
    ConfigValueError,
    CorruptWeightsError,
    ExitCode,
    MissingWeightsError,
)
from clipswap_video.faces import (
    SourceIdentity,
    alignment_matrices,
    alignment_template,
)
from clipswap_video.swap import CropBatch, SwappedBatch, create_backend
from clipswap_video.swap.adjust import PixelBoost, Strength
from clipswap_video.swap.onnx_models import MODELS, OnnxSwapperModel
from clipswap_video.swap.onnx_swapper import OnnxSwapperBackend
from media_fixtures import packets, rgb_frames


def _settings(model: str, *overrides: str):  # type: ignore[no-untyped-def]
    return load_settings(overrides=["swap.device=cpu", f"swap.model={model}", *overrides]).swap


def _folder(folder: Path, model: OnnxSwapperModel, **swapper: object) -> Path:
    """The model's files as FaceFusion names them: the swapper, its converter (the
    newer name) and the recogniser as arcface_w600k_r50.onnx."""
    write_swapper(folder / f"{model.name}.onnx", model, **swapper)  # type: ignore[arg-type]
    if model.converters:
        write_converter(folder / (model.converters[0].split(".", 1)[1] + ".onnx"))
    write_arcface(folder / "arcface_w600k_r50.onnx")
    return folder


def _crops(count: int, size: int) -> torch.Tensor:
    rng = np.random.default_rng(3)
    return torch.from_numpy(rng.uniform(0, 255, (count, 3, size, size)).astype(np.float32))


def _expected_source(model: OnnxSwapperModel) -> np.ndarray:
    """By hand, as FaceFusion prepares it: the raw w600k_r50 embedding of norm_crop(112),
    converted and/or normalised; or the aligned source crop in [0, 1]."""
    import cv2
    from insightface.utils import face_align

    image, points = grace_hopper(), np.array(GRACE_LANDMARKS_5, np.float32)
    if model.source == "image":
        size = model.source_size
        matrix = alignment_matrices(points, size, model.source_alignment)[0]
        crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
        return (crop.astype(np.float32) / 255).transpose(2, 0, 1)[None]
    embedding = arcface_reference(face_align.norm_crop(image, points, 112))
    if model.source == "embedding":
        return (embedding / np.linalg.norm(embedding))[None]
    converted = embedding @ converter_matrix()
    if model.source == "converted_unit":
        converted = converted / np.linalg.norm(converted)
    return np.asarray(converted)[None]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_model_runs_by_its_facts(tmp_path: Path, name: str) -> None:
    """Crops in, crops out: the source input and the normalisation in and out are
    the model's (a wrong mean, std, output range or source shows in the pixels)."""
    model = MODELS[name]
    backend = OnnxSwapperBackend(_folder(tmp_path, model), _settings(name))
    assert (backend.crop_size, backend.alignment) == (model.crop_size, model.alignment)
    backend.prepare_source(grace_identity())
    assert backend.source is not None
    np.testing.assert_allclose(backend.source, _expected_source(model), atol=2e-3)
    crops = _crops(2, model.crop_size)
    swapped = backend.swap(CropBatch(crops)).crops
    expected = swapper_reference(model, crops.numpy(), backend.source)
    assert swapped.shape == crops.shape and swapped.dtype == torch.float32
    np.testing.assert_allclose(swapped.numpy(), expected, atol=0.05)


def test_batched_equals_per_face_calls(tmp_path: Path) -> None:
    model = MODELS["hyperswap_1a_256"]
    free = OnnxSwapperBackend(_folder(tmp_path / "free", model), _settings(model.name))
    fixed = OnnxSwapperBackend(_folder(tmp_path / "one", model, batch=1), _settings(model.name))
    assert free.batched and not fixed.batched
    for backend in (free, fixed):
        backend.prepare_source(grace_identity())
    crops = _crops(4, 256)
    together, one_by_one = free.swap(CropBatch(crops)).crops, fixed.swap(CropBatch(crops)).crops
    np.testing.assert_allclose(together.numpy(), one_by_one.numpy(), atol=1e-3)


def test_older_converter_name_is_taken_when_the_newer_is_not_there(tmp_path: Path) -> None:
    model = MODELS["simswap_256"]
    folder = _folder(tmp_path, model)
    (folder / "crossface_simswap.onnx").rename(folder / "arcface_converter_simswap.onnx")
    backend = OnnxSwapperBackend(folder, _settings(model.name))
    backend.prepare_source(grace_identity())
    np.testing.assert_allclose(backend.source, _expected_source(model), atol=2e-3)  # type: ignore[arg-type]


def test_unknown_or_no_model_is_one_line() -> None:
    for name, said in [("", "needs a model"), ("simswap_1024", "not a known ONNX swapper")]:
        with pytest.raises(ConfigValueError) as caught:
            create_backend("onnx", None, _settings(name))
        message = str(caught.value)
        assert said in message and "simswap_256" in message and "\n" not in message


def test_missing_files_are_named(tmp_path: Path) -> None:
    model = MODELS["ghost_2_256"]
    folder = _folder(tmp_path, model)
    (folder / "crossface_ghost.onnx").unlink()
    (folder / "arcface_w600k_r50.onnx").unlink()
    with pytest.raises(MissingWeightsError) as caught:
        OnnxSwapperBackend(folder, _settings(model.name))
    message = str(caught.value)
    assert "crossface_ghost.onnx or arcface_converter_ghost.onnx" in message
    assert "w600k_r50.onnx" in message and "\n" not in message


@pytest.mark.parametrize("damage", ["random", "truncated", "another size", "inputs renamed"])
def test_broken_swapper_file_is_one_line_and_nothing_written(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    damage: str,
) -> None:
    model = MODELS["simswap_256"]
    folder = _folder(tmp_path / "w", model)
    path = folder / "simswap_256.onnx"
    if damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "another size":
        write_swapper(path, model, size=512)
    else:
        write_arcface(path)
    with pytest.raises(CorruptWeightsError) as caught:
        OnnxSwapperBackend(folder, _settings(model.name))
    assert str(path) in str(caught.value)
    media = _demo(tmp_path)
    output = tmp_path / "out.mp4"
    code, err = cli(media.source_image, media.video, output, "--swapper", "onnx:simswap_256",
                    "--weights", folder)  # fmt: skip
    assert code == ExitCode.CORRUPT_WEIGHTS and err.count("\n") == 1, err
    assert not output.exists()


def _demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    from clipswap_video.demo import write_demo_media

    return write_demo_media(tmp_path / "demo", seconds=0.5, width=640, height=360, fps=30)


@pytest.mark.slow
@pytest.mark.parametrize("swapper", SWAPPERS)
def test_end_to_end_from_a_facefusion_checkout(cli, tmp_path: Path, swapper: str) -> None:  # type: ignore[no-untyped-def]
    """`--weights` at a FaceFusion checkout (files in .assets/models, as it keeps
    them), one swapper per kind of source input: every frame, the audio packets as
    they were, the disclosure tag, and the face changed in every frame."""
    from clipswap_video.media import probe

    write_standins(tmp_path / "facefusion" / ".assets" / "models")
    media, output = _demo(tmp_path), tmp_path / "out.mp4"
    code, err = cli(media.source_image, media.video, output, "--swapper", swapper,
                    "--weights", tmp_path / "facefusion")  # fmt: skip
    assert code == 0, err
    frames, originals = rgb_frames(output), rgb_frames(media.video)
    assert len(frames) == len(originals) == 15
    assert packets(output, "audio") == packets(media.video, "audio")
    assert probe(output).metadata["comment"].startswith("synthetic: face swapped by clipswap-video")
    changed = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, originals, strict=True)]
    assert min(changed) > 0.3  # the face changed in every frame (the rest is encoder noise)


class _Echo:
    """A backend that returns its crops (plus a constant), recording the shapes it saw."""

    name, crop_size, alignment, device = "echo", 128, "insightface", torch.device("cpu")

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def prepare_source(self, identity: SourceIdentity) -> None:
        del identity

    def swap(self, batch: CropBatch) -> SwappedBatch:
        self.shapes.append(tuple(batch.crops.shape))
        return SwappedBatch(batch.crops + 10.0)


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_pixel_boost_splits_and_interleaves(factor: int) -> None:
    inner = _Echo()
    boosted = PixelBoost(inner, factor)  # type: ignore[arg-type]
    assert boosted.crop_size == 128 * factor
    crops = _crops(2, 128 * factor)
    out = boosted.swap(CropBatch(crops)).crops
    assert inner.shapes == [(2 * factor**2, 3, 128, 128)]  # every sub-crop at the model's size
    np.testing.assert_array_equal(out.numpy(), crops.numpy() + 10.0)  # back in place


def test_pixel_boost_sub_crops_take_every_nth_pixel() -> None:
    seen: list[torch.Tensor] = []

    class Keep(_Echo):
        def swap(self, batch: CropBatch) -> SwappedBatch:
            seen.append(batch.crops)
            return SwappedBatch(batch.crops)

    crops = _crops(1, 256)
    PixelBoost(Keep(), 2).swap(CropBatch(crops))  # type: ignore[arg-type]
    for index, (row, column) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        np.testing.assert_array_equal(seen[0][index].numpy(), crops[0, :, row::2, column::2])


@pytest.mark.parametrize("alignment", ["arcface", "insightface", "arcface_v1", "ffhq", "mtcnn"])
def test_templates_scale_with_the_crop(alignment: str) -> None:
    """Pixel boost aligns a crop N times the model's: the same face, N times larger."""
    for size in (128, 256, 512):
        for factor in (2, 3, 4):
            np.testing.assert_allclose(
                alignment_template(size * factor, alignment),  # type: ignore[arg-type]
                alignment_template(size, alignment) * factor,  # type: ignore[arg-type]
                atol=1e-9,
            )


def test_strength_blends_with_the_target_crop() -> None:
    crops = _crops(2, 128)
    for weight in (0.0, 0.25, 1.0):
        out = Strength(_Echo(), weight).swap(CropBatch(crops)).crops  # type: ignore[arg-type]
        np.testing.assert_allclose(out.numpy(), crops.numpy() + 10.0 * weight, atol=1e-4)


def test_knobs_wrap_the_backend_only_off_their_defaults(tmp_path: Path) -> None:
    model = MODELS["hyperswap_1b_256"]
    folder = _folder(tmp_path, model)
    plain = create_backend("onnx", folder, _settings(model.name))
    assert isinstance(plain, OnnxSwapperBackend)
    both = create_backend(
        "onnx", folder, _settings(model.name, "swap.pixel_boost=2", "swap.weight=0.5")
    )
    assert isinstance(both, Strength) and isinstance(both.inner, PixelBoost)
    assert both.crop_size == 512 and both.alignment == "insightface"


@pytest.mark.parametrize(
    ("flag", "said"),
    [("onnx:nope", "not a known ONNX swapper"), ("onnx", "needs a model")],
)
def test_onnx_without_a_known_model_is_one_line(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, flag: str, said: str
) -> None:
    media = _demo(tmp_path)
    output = tmp_path / "out.mp4"
    status, err = cli(media.source_image, media.video, output, "--swapper", flag)
    assert status == ExitCode.BAD_CONFIG_VALUE and said in err and err.count("\n") == 1, err
    assert not output.exists()


@pytest.mark.parametrize("flag", ["onnx:", "classic:simswap_256", "simswap_256"])
def test_swapper_flag_takes_a_model_only_after_onnx(  # type: ignore[no-untyped-def]
    cli, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli("src.jpg", "in.mp4", "out.mp4", "--swapper", flag)
    assert caught.value.code == ExitCode.USAGE and "onnx:MODEL" in capsys.readouterr().err


def _one_face_only(path: Path) -> Path:
    """simswap_256's signature with a free batch dimension, but a graph that fits one
    crop only (a Reshape to batch 1): a file that fails on its own input shapes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, 3, 256, 256], np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["target", "shape"], ["reshaped"]),
        helper.make_node("ReduceMean", ["source"], ["level"], axes=[1], keepdims=1),
        helper.make_node("Add", ["reshaped", "level"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "broken",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 3, 256, 256]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, ["N", 512]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 256, 256])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_graph_that_fails_on_its_own_shapes_is_one_line(tmp_path: Path) -> None:
    model = MODELS["simswap_256"]
    folder = _folder(tmp_path, model)
    _one_face_only(folder / "simswap_256.onnx")
    backend = OnnxSwapperBackend(folder, _settings(model.name))
    backend.prepare_source(grace_identity())
    assert backend.swap(CropBatch(_crops(1, 256))).crops.shape == (1, 3, 256, 256)
    with pytest.raises(CorruptWeightsError) as caught:
        backend.swap(CropBatch(_crops(2, 256)))
    assert "simswap_256.onnx fails on its own input shapes" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("wrong", ["converter", "recogniser"])
def test_a_wrong_converter_or_recogniser_is_one_line(tmp_path: Path, wrong: str) -> None:
    model = MODELS["ghost_3_256"]
    folder = _folder(tmp_path, model)
    if wrong == "converter":
        write_arcface(folder / "crossface_ghost.onnx")  # 112 px image in, not 512-d
        said = "not an embedding converter"
    else:
        write_arcface(folder / "arcface_w600k_r50.onnx", width=128)
        said = "128-d embeddings, expected 512"
    with pytest.raises(CorruptWeightsError) as caught:
        OnnxSwapperBackend(folder, _settings(model.name))
    assert said in str(caught.value) and "\n" not in str(caught.value)
