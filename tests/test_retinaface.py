"""RetinaFace-Res50 in torch: narrow graphs in the released file's h5 layout
against an independent NumPy forward, and the `retinaface` detector backend end
to end (no TensorFlow, no 110 MB file). Post-processing: test_retinaface_post.py."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from keras_writer import (
    LayerWeights,
    batch_norm,
    conv,
    flat_node,
    functional,
    input_layer,
    layer,
    leaky,
    max_pool,
    node,
    op_layer,
    retinaface_model,
    write_keras_h5,
)

from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.faces.backends import create_detector
from clipswap_video.faces.detect import detection_input
from clipswap_video.faces.retinaface_backend import (
    REFRESH_CANVAS,
    SMALLEST_FACE,
    RetinaFaceDetector,
    torch_device,
    weights_path,
)
from clipswap_video.faces.types import Face
from clipswap_video.models.keras_h5 import KerasOpError, load_h5_graph
from clipswap_video.models.resnet import ResNet50, load_keras_weights
from clipswap_video.models.retinaface import load_retinaface

BLOCKS = (1, 2, 1, 1)
WIDTHS = (8, 8, 12, 8)


def _model(seed: int = 3) -> tuple[dict, LayerWeights]:
    return retinaface_model(np.random.default_rng(seed), blocks=BLOCKS, widths=WIDTHS)


def _write(tmp_path: Path, model: dict, weights: LayerWeights) -> Path:
    return write_keras_h5(tmp_path / "RetinaFace-Res50.h5", model, weights)


# NumPy reference forward, NHWC ---------------------------------------------------


def _resnet_numpy(arrays: dict[str, np.ndarray], x: np.ndarray, features: list[str]) -> list:
    def conv_bn(x: np.ndarray, prefix: str, stride: int, same: bool) -> np.ndarray:
        y = conv(
            x, arrays[f"{prefix}_conv/kernel:0"], arrays[f"{prefix}_conv/bias:0"], stride, same
        )
        bn = [
            arrays[f"{prefix}_bn/{leaf}:0"]
            for leaf in ("gamma", "beta", "moving_mean", "moving_variance")
        ]
        return batch_norm(y, *bn, eps=1.001e-5)

    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    x = relu(conv_bn(np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)]), "conv1", 2, False))
    x = max_pool(np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)]), 3, 2)
    outputs = {}
    for stage, count in enumerate(BLOCKS, start=2):
        for index in range(1, count + 1):
            prefix, stride = f"conv{stage}_block{index}", 2 if index == 1 and stage > 2 else 1
            shortcut = conv_bn(x, f"{prefix}_0", stride, False) if index == 1 else x
            y = relu(conv_bn(x, f"{prefix}_1", stride, False))
            y = relu(conv_bn(y, f"{prefix}_2", 1, True))
            x = relu(conv_bn(y, f"{prefix}_3", 1, False) + shortcut)
            outputs[f"{prefix}_out"] = x
    return [outputs[name] for name in features]


def _units_numpy(arrays: list[tuple[str, np.ndarray]]) -> list:
    """The 25 legacy-ordered arrays -> 5 functions x -> BN(conv(x)) (no activation)."""
    values = [array for _, array in arrays]

    def unit(i: int):  # type: ignore[no-untyped-def]
        kernel, gamma, beta = values[3 * i : 3 * i + 3]
        mean, var = values[15 + 2 * i : 17 + 2 * i]
        return lambda x: batch_norm(conv(x, kernel, 0), gamma, beta, mean, var, eps=1e-5)

    return [unit(i) for i in range(5)]


def _nearest(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """TF2 nearest resize: half-pixel centres."""
    rows = np.minimum(((np.arange(height) + 0.5) * x.shape[1] / height).astype(int), x.shape[1] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * x.shape[2] / width).astype(int), x.shape[2] - 1)
    return x[:, rows][:, :, cols]


def _retinaface_numpy(model: dict, weights: LayerWeights, image: np.ndarray) -> list:
    act = lambda v: leaky(v, 0.1)  # noqa: E731  (out_ch 16 <= 64)
    x = image[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    features = [entry[0] for entry in model["config"]["layers"][3]["config"]["output_layers"]]
    c3, c4, c5 = _resnet_numpy(dict(weights["ResNet50_extrator"]), x, features)
    out1, out2, out3, merge1, merge2 = _units_numpy(weights["FPN"])
    p3, p4, p5 = act(out1(c3)), act(out2(c4)), act(out3(c5))
    p4 = act(merge2(p4 + _nearest(p5, *p4.shape[1:3])))
    p3 = act(merge1(p3 + _nearest(p4, *p3.shape[1:3])))
    levels = []
    for level, p in enumerate((p3, p4, p5)):
        a, b, c, d, e = _units_numpy(weights[f"SSH_{level}"])
        mid = act(b(p))
        levels.append(np.maximum(np.concatenate([a(p), c(mid), e(act(d(mid)))], -1), 0))
    heads = []
    for names, k in (
        (["bbox_head", "bbox_head_1", "bbox_head_2"], 4),
        ([f"LandmarkHead_{i}" for i in range(3)], 10),
        ([f"ClassHead_{i}" for i in range(3)], 2),
    ):
        rows = [
            conv(f, *(a for _, a in weights[n])).reshape(1, -1, k)
            for n, f in zip(names, levels, strict=True)
        ]
        heads.append(np.concatenate(rows, 1))
    logits = heads[2] - heads[2].max(-1, keepdims=True)
    heads[2] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return heads


# The network ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(45, 61), (64, 64)])
def test_heads_match_numpy(tmp_path: Path, size: tuple[int, int]) -> None:
    model, weights = _model()
    net = load_retinaface(_write(tmp_path, model, weights))
    image = np.random.default_rng(0).uniform(0, 255, (1, *size, 3)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(image).permute(0, 3, 1, 2))
    expected = _retinaface_numpy(model, weights, image.astype(np.float64))
    anchors = sum(2 * math.ceil(size[0] / s) * math.ceil(size[1] / s) for s in (8, 16, 32))
    for tensor, reference in zip(got, expected, strict=True):
        assert tensor.shape[1] == anchors
        assert np.abs(tensor.numpy() - reference).max() <= 1e-4
    assert net.spec.nms_iou == pytest.approx(0.35)  # read from the NMS node
    assert net.spec.blocks == BLOCKS and net.spec.widths == WIDTHS


def test_resnet_outputs_match_the_interpreter(tmp_path: Path) -> None:
    """resnet.py against the generic .h5 interpreter on the same nested model."""
    model, weights = _model()
    backbone = {**model["config"]["layers"][3], "inbound_nodes": node("image")}
    names = [entry[0] for entry in backbone["config"]["output_layers"]]
    outer = functional(
        "outer", [input_layer("image", [None, None, None, 3]), backbone], ["image"], []
    )
    outer["config"]["output_layers"] = [["ResNet50_extrator", 1, i] for i in range(3)]
    arrays = weights["ResNet50_extrator"]
    graph = load_h5_graph(
        write_keras_h5(tmp_path / "resnet.h5", outer, {"ResNet50_extrator": arrays})
    )
    net = ResNet50(blocks=BLOCKS, widths=WIDTHS).eval()
    load_keras_weights(net.keras_layers(), arrays, owner="test")
    x = torch.randn(2, 3, 37, 50) * 50
    with torch.no_grad():
        expected, got = graph(x), net(x, names)
    for name, tensor in zip(names, expected, strict=True):
        torch.testing.assert_close(got[name], tensor, atol=1e-4, rtol=1e-4)


# The interpreter's SlicingOpLambda / nn.bias_add ----------------------------------


def _preprocess_graph(slice_spec: object) -> tuple[dict, LayerWeights]:
    layers = [
        input_layer("input_image", [None, None, None, 3]),
        op_layer(
            "SlicingOpLambda",
            "__operators__.getitem",
            flat_node("input_image", slice_spec=slice_spec),
        ),
        op_layer(
            "TFOpLambda",
            "nn.bias_add",
            flat_node("tf.__operators__.getitem", bias=[-1.0, -2.0, -3.0], data_format="NHWC"),
        ),
        layer(
            "Conv2D",
            "conv2d",
            node("tf.nn.bias_add"),
            filters=2,
            kernel_size=[1, 1],
            padding="same",
            activation="linear",
            use_bias=False,
        ),
    ]
    kernel = np.arange(6, dtype=np.float32).reshape(1, 1, 3, 2)
    return functional("pre", layers, ["input_image"], ["conv2d"]), {
        "conv2d": [("conv2d/kernel:0", kernel)]
    }


def test_slicing_and_bias_add_ops(tmp_path: Path) -> None:
    flip = [{"class_name": "__ellipsis__"}, {"start": None, "stop": None, "step": -1}]
    model = load_h5_graph(write_keras_h5(tmp_path / "pre.h5", *_preprocess_graph(flip)))
    image = np.random.default_rng(1).uniform(0, 255, (1, 5, 4, 3)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(image).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    kernel = np.arange(6, dtype=np.float32).reshape(3, 2)
    expected = (image[..., ::-1] - np.array([1, 2, 3], np.float32)) @ kernel
    np.testing.assert_allclose(got, expected, rtol=1e-6)

    crop = [{"start": None, "stop": None, "step": None}, {"start": 1, "stop": -1, "step": None}]
    model = load_h5_graph(write_keras_h5(tmp_path / "crop.h5", *_preprocess_graph(crop)))
    assert model(torch.zeros(1, 3, 5, 4)).shape == (1, 2, 3, 4)  # rows 1..3 of the H axis

    stride = [{"class_name": "__ellipsis__"}, {"start": None, "stop": None, "step": 2}]
    with pytest.raises(KerasOpError, match="step 2"):
        load_h5_graph(write_keras_h5(tmp_path / "step.h5", *_preprocess_graph(stride)))(
            torch.zeros(1, 3, 2, 2)
        )


# The detector backend ----------------------------------------------------------------


FRAME = (160, 240)  # height, width; detect_size 30 -> a 20 x 30 detection image
LANDMARK_DELTAS = np.linspace(-0.5, 0.5, 10).astype(np.float32)
HEADS = [f"{kind}_{level}" for kind in ("LandmarkHead", "ClassHead") for level in range(3)]


def _one_face_file(folder: Path) -> Path:
    """A tiny model whose only face is anchor 0 (256 px) of the one stride-32 cell:
    zero head kernels, so the biases alone set every anchor's output."""
    model, weights = _model()
    biases = {
        "bbox_head_2": [0.1, -0.2, -15, -14, 0, 0, 0, 0],
        "LandmarkHead_2": [*LANDMARK_DELTAS, *[0] * 10],
        "ClassHead_2": [0, 4, 4, 0],
    }
    for name in ("bbox_head", "bbox_head_1", "bbox_head_2", *HEADS):
        (kernel_name, kernel), (bias_name, bias) = weights[name]
        default = [4, 0, 4, 0] if name.startswith("ClassHead") else np.zeros_like(bias)
        bias = np.asarray(biases.get(name, default), np.float32)
        weights[name] = [(kernel_name, np.zeros_like(kernel)), (bias_name, bias)]
    folder.mkdir(parents=True, exist_ok=True)
    return write_keras_h5(folder / "RetinaFace-Res50.h5", model, weights)


def _settings(**changes: object) -> FaceSettings:
    base = dataclasses.replace(FaceSettings(), detector="retinaface", device="cpu")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_detector_maps_the_face_back_to_frame_pixels(tmp_path: Path) -> None:
    # min_size 0: nothing raises the 30 px detection size (see the next test).
    settings = _settings(detect_size=30, min_size=0)
    detector = create_detector(settings, _one_face_file(tmp_path / "w").parent)
    assert isinstance(detector, RetinaFaceDetector)
    image = np.random.default_rng(2).integers(0, 255, (*FRAME, 3), dtype=np.uint8)
    faces = detector.detect(image)
    assert len(faces) == 1
    # Prior: centre (16/30, 16/20) of the 30 x 20 image, 256 px; then x 240, x 160.
    cx, cy = 16 / 30 + 0.1 * 0.1 * 256 / 30, 16 / 20 - 0.2 * 0.1 * 256 / 20
    w, h = 256 / 30 * math.exp(-15 * 0.2), 256 / 20 * math.exp(-14 * 0.2)
    expected_box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * [240, 160, 240, 160]
    assert faces[0].box == pytest.approx(expected_box, abs=1e-3)
    deltas = LANDMARK_DELTAS.reshape(5, 2)
    points = np.array([16 / 30, 16 / 20]) + deltas * 0.1 * np.array([256 / 30, 256 / 20])
    assert faces[0].landmarks_5 == pytest.approx(points * [240, 160], abs=1e-3)
    assert faces[0].score == pytest.approx(1 / (1 + math.exp(-4)), abs=1e-5)
    embedded = detector.embed(image, faces)
    assert embedded[0].embedding is not None and embedded[0].embedding.shape == (128,)


@pytest.mark.parametrize(
    ("size", "min_size", "detected"),
    [
        ((360, 640), 24, (360, 640)),  # under detect_size: full size
        ((1080, 1920), 24, (720, 1280)),  # a 24 px face shrunk to 16 px, not to 12
        ((2160, 3840), 24, (1440, 2560)),
        ((1080, 1920), 48, (540, 960)),  # detect_size is small enough for 48 px faces
        ((1080, 1920), 0, (540, 960)),  # no smallest face asked for
    ],
)
def test_detection_size_keeps_min_size_faces_above_the_smallest_anchor(
    size: tuple[int, int], min_size: int, detected: tuple[int, int]
) -> None:
    image = np.zeros((*size, 3), np.uint8)
    settings = FaceSettings(detect_size=960, min_size=min_size)
    assert detection_input(image, settings, SMALLEST_FACE).shape[:2] == detected


@pytest.mark.parametrize(
    ("size", "detected"),
    [
        ((360, 640), (360, 640)),  # step 640 // 640 = 1
        ((720, 1279), (720, 1279)),  # still step 1: the scripts keep it whole
        ((720, 1280), (360, 640)),  # step 2
        ((1080, 1920), (360, 640)),  # step 3
        ((1920, 1080), (1920, 1080)),  # portrait goes by its width: step 1
        ((2160, 3840), (360, 640)),  # step 6
        ((1081, 1921), (360, 640)),  # 1921 // 3 = 640, 1081 // 3 = 360: floors
        ((300, 500), (300, 500)),  # narrower than 640: as it is
    ],
)
def test_the_papers_detection_size_rule(size: tuple[int, int], detected: tuple[int, int]) -> None:
    image = np.zeros((*size, 3), np.uint8)
    settings = FaceSettings(detect_size="paper", min_size=24)  # min_size does not raise it
    assert detection_input(image, settings, SMALLEST_FACE).shape[:2] == detected
    # Their scripts search the source photo as it is.
    assert detection_input(image, settings, SMALLEST_FACE, still=True).shape[:2] == size


@pytest.mark.parametrize(("stored", "expected"), [(0.3, 0.3), (None, 0.02)])
def test_min_score_file_is_the_threshold_the_weight_file_stores(
    tmp_path: Path, stored: float | None, expected: float
) -> None:
    model, weights = retinaface_model(
        np.random.default_rng(3), blocks=BLOCKS, widths=WIDTHS, score_threshold=stored
    )
    folder = _write(tmp_path, model, weights).parent
    assert create_detector(_settings(min_score="file"), folder).min_score == expected
    assert create_detector(_settings(), folder).min_score == 0.5  # 0: the backend's own
    assert create_detector(_settings(min_score=0.7), folder).min_score == 0.7


def test_refresh_window_scale_and_choice(tmp_path: Path) -> None:
    detector = create_detector(_settings(), _one_face_file(tmp_path / "w").parent)
    assert isinstance(detector, RetinaFaceDetector)
    track = Face(
        box=np.array([100, 60, 140, 100], np.float32),
        score=0.9,
        landmarks_5=np.zeros((5, 2), np.float32),
        track_id=7,
    )
    calls, canvases = [], []

    def in_window(face: Face) -> Face:  # frame pixels -> the window's: 2.5 x 40 px at 70, 30
        return face.with_(box=(face.box - [70, 30, 70, 30]) * 3.2, track_id=None)

    def fake_run(images: list[np.ndarray], canvas: tuple[int, int]) -> list[list[Face]]:
        calls.append([image.shape for image in images])
        canvases.append(canvas)
        near = in_window(track.with_(box=track.box + 2, score=0.8))
        far = in_window(track.with_(box=track.box + 60, score=0.99))
        return [[far, near] for _ in images]

    detector._run = fake_run  # type: ignore[method-assign]
    image = np.zeros((*FRAME, 3), np.uint8)
    refreshed = detector.refresh(image, [track])
    assert len(refreshed) == 1 and refreshed[0].track_id == 7
    assert refreshed[0].box == pytest.approx(track.box + 2)
    assert calls[0] == [(320, 320, 3)]  # 2.5 x the 40 px face, scaled so the face is 128 px
    assert canvases[0] == (REFRESH_CANVAS, REFRESH_CANVAS)
    track_gone = track.with_(box=np.array([5, 5, 45, 45], np.float32))
    assert detector.refresh(image, [track_gone]) == []  # only the far face: dropped
    detector.refresh(image, [track, track.with_(track_id=8), track.with_(track_id=9)])
    assert len(calls[-1]) == 3  # the windows of all faces in one run


def test_device_names() -> None:
    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("auto").type in ("cpu", "cuda")
    for bad in ("gpu", "cpu:0", "cuda:x", f"cuda:{torch.cuda.device_count()}"):
        with pytest.raises(ConfigValueError, match="faces.device"):
            torch_device(bad)


# Weight files ----------------------------------------------------------------------------


def test_missing_file_names_what_was_searched(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError) as error:
        create_detector(_settings(), tmp_path / "mine")
    message = str(error.value)
    assert "RetinaFace-Res50.h5" in message and str(tmp_path / "mine") in message
    assert "\n" not in message


def test_the_official_sub_folder_in_any_case_loads(tmp_path: Path) -> None:
    folder = tmp_path / "w" / "RetinaFace"
    folder.mkdir(parents=True)
    written = write_keras_h5(folder / "RETINAFACE-RES50.H5", *_model())
    assert weights_path(tmp_path / "w") == written
    assert load_retinaface(written).spec.blocks == BLOCKS  # read as .h5 whatever its case


def _without(weights: LayerWeights, layer_name: str, index: int) -> LayerWeights:
    changed = dict(weights)
    changed[layer_name] = [a for i, a in enumerate(weights[layer_name]) if i != index]
    return changed


@pytest.mark.parametrize(
    "damage",
    ["not_hdf5", "weights_only", "not_retinaface", "fpn_array", "backbone_array", "head_shape"],
)
def test_corrupt_files_give_one_line_errors(tmp_path: Path, damage: str) -> None:
    model, weights = _model()
    path = tmp_path / "RetinaFace-Res50.h5"
    if damage == "not_hdf5":
        path.write_bytes(b"not an hdf5 file" * 10)
    elif damage == "weights_only":
        write_keras_h5(path, model, weights, with_config=False)
    elif damage == "not_retinaface":
        write_keras_h5(path, *_preprocess_graph([{"start": None, "stop": None, "step": -1}]))
    elif damage == "fpn_array":
        _write(tmp_path, model, _without(weights, "FPN", 3))
    elif damage == "backbone_array":
        _write(tmp_path, model, _without(weights, "ResNet50_extrator", 0))
    else:
        _write(tmp_path, model, weights)
        with h5py.File(path, "r+") as file:
            group = file["model_weights/ClassHead_1/ClassHead_1/conv2d"]
            del group["bias:0"]
            group.create_dataset("bias:0", data=np.zeros(5, np.float32))
    with pytest.raises(CorruptWeightsError) as error:
        create_detector(_settings(), tmp_path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
