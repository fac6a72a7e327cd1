"""Keras 2 `.h5` files written by the tests, in the real layout (root attrs
model_config / keras_version, model_weights/<layer> groups with weight_names,
optionally chunked layer_names0..N), plus NumPy reference ops in NHWC.

Narrow graphs of the same layer classes as FaceDancer / ArcFace files, so the
interpreter is checked without TensorFlow and without the 90-160 MB originals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

LayerWeights = dict[str, list[tuple[str, np.ndarray]]]


def node(*refs: str | tuple[str, int, int]) -> list[list[list[Any]]]:
    """inbound_nodes of a layer called once on `refs` (name or (name, node, tensor))."""
    entries = [[r, 0, 0, {}] if isinstance(r, str) else [*r, {}] for r in refs]
    return [entries]


def layer(class_name: str, name: str, inbound: Any = (), **config: Any) -> dict[str, Any]:
    return {
        "class_name": class_name,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": list(inbound),
    }


def input_layer(name: str, shape: list[int | None]) -> dict[str, Any]:
    return layer("InputLayer", name, batch_input_shape=shape, dtype="float32")


def functional(
    name: str,
    layers: list[dict[str, Any]],
    inputs: list[str],
    outputs: list[str],
    inbound: Any = (),
) -> dict[str, Any]:
    return {
        "class_name": "Functional",
        "name": name,
        "inbound_nodes": list(inbound),
        "config": {
            "name": name,
            "layers": layers,
            "input_layers": [[n, 0, 0] for n in inputs],
            "output_layers": [[n, 0, 0] for n in outputs],
        },
    }


def write_keras_h5(
    path: Path,
    model: dict[str, Any],
    weights: LayerWeights,
    *,
    chunks: int = 1,
    with_config: bool = True,
) -> Path:
    """Writes `model` (a Functional config) and `weights` as Keras 2.14 would."""
    names = [entry["name"] for entry in model["config"]["layers"]]
    with h5py.File(path, "w") as file:
        file.attrs["keras_version"] = "2.14.0"
        file.attrs["backend"] = "tensorflow"
        if with_config:
            file.attrs["model_config"] = json.dumps(model).encode("utf-8")
        group = file.create_group("model_weights")
        if chunks == 1:
            group.attrs["layer_names"] = np.array(names, dtype="S")
        else:  # as Keras does past 64 KB: layer_names0, layer_names1, ...
            for index, part in enumerate(np.array_split(np.array(names, dtype="S"), chunks)):
                group.attrs[f"layer_names{index}"] = part
        for name in names:
            layer_group = group.create_group(name)
            arrays = weights.get(name, [])
            layer_group.attrs["weight_names"] = np.array([n for n, _ in arrays], dtype="S")
            for weight_name, array in arrays:
                layer_group.create_dataset(weight_name, data=array)
    return path


# NumPy reference ops, NHWC -------------------------------------------------------


def same_pad(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    def amount(size: int) -> tuple[int, int]:
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    return np.pad(x, [(0, 0), amount(x.shape[1]), amount(x.shape[2]), (0, 0)])


def conv(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int = 1, same: bool = True
) -> np.ndarray:
    k = kernel.shape[0]
    padded = same_pad(x, k, stride) if same else x
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (N, H', W', C, k, k)
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias


def instance_norm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-3
) -> np.ndarray:
    mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def batch_norm(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
) -> np.ndarray:
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def leaky(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x >= 0, x, alpha * x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def avg_pool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean((2, 4))


def max_pool(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    return windows[:, ::stride, ::stride].max(axis=(4, 5))


def upsample2_bilinear(x: np.ndarray) -> np.ndarray:
    """x2 with half-pixel centres (TF2 resize / Keras UpSampling2D bilinear)."""
    for axis in (1, 2):
        size = x.shape[axis]
        source = np.clip((np.arange(2 * size) + 0.5) / 2 - 0.5, 0, size - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, size - 1)
        frac = (source - low).reshape([-1 if a == axis else 1 for a in range(4)])
        x = np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac
    return x


# keras.applications ResNet50 v1 + the ArcFace head -------------------------------


def resnet50_v1(
    rng: np.random.Generator,
    *,
    blocks: tuple[int, ...],
    widths: tuple[int, ...],
    image_size: int,
    name: str = "resnet50",
    inbound: Any = (),
) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
    """A keras.applications ResNet50 v1 (its layer names and classes, any width) as a
    nested Functional layer, and its one weight group: trainable arrays of every
    sub-layer first, then all moving statistics, as Keras writes a nested model."""
    layers = [input_layer("input_resnet", [None, image_size, image_size, 3])]
    trainable: list[tuple[str, np.ndarray]] = []
    statistics: list[tuple[str, np.ndarray]] = []

    def add(class_name: str, layer_name: str, source: str, **config: Any) -> str:
        layers.append(layer(class_name, layer_name, node(source), **config))
        return layer_name

    def conv_bn(
        source: str, prefix: str, cin: int, cout: int, k: int, stride: int, padding: str
    ) -> str:
        add(
            "Conv2D",
            f"{prefix}_conv",
            source,
            filters=cout,
            kernel_size=[k, k],
            strides=[stride, stride],
            padding=padding,
            activation="linear",
            use_bias=True,
        )
        trainable.extend(
            [
                (f"{prefix}_conv/kernel:0", _kernel(rng, (k, k, cin, cout))),
                (f"{prefix}_conv/bias:0", _vector(rng, cout)),
            ]
        )
        gamma_beta, moving = _bn(add, rng, f"{prefix}_conv", f"{prefix}_bn", cout)
        trainable.extend(gamma_beta)
        statistics.extend(moving)
        return f"{prefix}_bn"

    x = add("ZeroPadding2D", "conv1_pad", "input_resnet", padding=[[3, 3], [3, 3]])
    x = add(
        "Activation",
        "conv1_relu",
        conv_bn(x, "conv1", 3, widths[0], 7, 2, "valid"),
        activation="relu",
    )
    x = add("ZeroPadding2D", "pool1_pad", x, padding=[[1, 1], [1, 1]])
    x = add("MaxPooling2D", "pool1_pool", x, pool_size=[3, 3], strides=[2, 2], padding="valid")
    cin = widths[0]
    for stage, (count, width) in enumerate(zip(blocks, widths, strict=True), start=2):
        for index in range(1, count + 1):
            prefix, stride = f"conv{stage}_block{index}", 2 if index == 1 and stage > 2 else 1
            shortcut = x
            if index == 1:
                shortcut = conv_bn(x, f"{prefix}_0", cin, 4 * width, 1, stride, "valid")
            y = conv_bn(x, f"{prefix}_1", cin, width, 1, stride, "valid")
            y = add("Activation", f"{prefix}_1_relu", y, activation="relu")
            y = add(
                "Activation",
                f"{prefix}_2_relu",
                conv_bn(y, f"{prefix}_2", width, width, 3, 1, "same"),
                activation="relu",
            )
            y = conv_bn(y, f"{prefix}_3", width, 4 * width, 1, 1, "valid")
            layers.append(layer("Add", f"{prefix}_add", node(shortcut, y)))
            x = add("Activation", f"{prefix}_out", f"{prefix}_add", activation="relu")
            cin = 4 * width
    model = functional(name, layers, ["input_resnet"], [x], inbound)
    return model, trainable + statistics


def arcface_graph(
    rng: np.random.Generator,
    *,
    blocks: tuple[int, ...] = (1, 1, 1, 1),
    widths: tuple[int, ...] = (8, 8, 8, 8),
    embedding_dim: int = 16,
) -> tuple[dict[str, Any], LayerWeights]:
    """ArcFace-Res50's candidate graph at 112x112: the nested ResNet (referenced at
    node 1), then BN -> Dropout -> Flatten -> Dense -> BN."""
    backbone, backbone_weights = resnet50_v1(
        rng, blocks=blocks, widths=widths, image_size=112, inbound=node("input_1")
    )
    channels, side = 4 * widths[-1], 4
    layers = [input_layer("input_1", [None, 112, 112, 3]), backbone]

    def add(class_name: str, layer_name: str, source: str, **config: Any) -> str:
        ref = ("resnet50", 1, 0) if source == "resnet50" else source
        layers.append(layer(class_name, layer_name, node(ref), **config))
        return layer_name

    gamma_beta, moving = _bn(add, rng, "resnet50", "batch_normalization", channels)
    weights: LayerWeights = {
        "resnet50": backbone_weights,
        "batch_normalization": gamma_beta + moving,
    }
    x = add("Flatten", "flatten", add("Dropout", "dropout", "batch_normalization", rate=0.4))
    x = add("Dense", "dense", x, units=embedding_dim, activation="linear", use_bias=True)
    weights["dense"] = [
        ("dense/kernel:0", _kernel(rng, (side * side * channels, embedding_dim))),
        ("dense/bias:0", _vector(rng, embedding_dim)),
    ]
    gamma_beta, moving = _bn(add, rng, "dense", "batch_normalization_1", embedding_dim)
    weights["batch_normalization_1"] = gamma_beta + moving
    return functional("arcface", layers, ["input_1"], ["batch_normalization_1"]), weights


def _bn(
    add: Any, rng: np.random.Generator, source: str, name: str, channels: int
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """Adds a BatchNormalization layer; returns its (gamma, beta) and moving
    statistics, non-trivial so that a swapped array shows."""
    eps = 1.001e-5 if name.endswith("_bn") else 1e-3  # keras.applications / Keras default
    add("BatchNormalization", name, source, axis=3 if name.endswith("_bn") else -1, epsilon=eps)
    variance = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    return (
        [
            (f"{name}/gamma:0", 1 + _vector(rng, channels)),
            (f"{name}/beta:0", _vector(rng, channels)),
        ],
        [
            (f"{name}/moving_mean:0", _vector(rng, channels)),
            (f"{name}/moving_variance:0", variance),
        ],
    )


def _kernel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)


def _vector(rng: np.random.Generator, size: int) -> np.ndarray:
    return (0.1 * rng.standard_normal(size)).astype(np.float32)


# RetinaFace-Res50 graphs (reference section 3) -----------------------------------


def _random(rng: np.random.Generator, *shape: int, scale: float = 0.3) -> np.ndarray:
    return (rng.normal(size=shape) * scale).astype(np.float32)


def _bn_arrays(rng: np.random.Generator, channels: int) -> list[np.ndarray]:
    """gamma, beta, moving_mean, moving_variance, all away from their 1/0 defaults."""
    return [
        1 + _random(rng, channels, scale=0.2),
        _random(rng, channels, scale=0.2),
        _random(rng, channels, scale=0.2),
        rng.uniform(0.5, 1.5, channels).astype(np.float32),
    ]


def flat_node(source: str, **kwargs: Any) -> list[list[Any]]:
    """inbound_nodes of a TFOpLambda / SlicingOpLambda: one flat [src, 0, 0, kwargs]."""
    return [[source, 0, 0, kwargs]]


def op_layer(class_name: str, function: str, inbound: Any) -> dict[str, Any]:
    name = f"tf.{function}"
    return {
        "class_name": class_name,
        "name": name,
        "config": {"name": name, "trainable": True, "dtype": "float32", "function": function},
        "inbound_nodes": inbound,
    }


def conv_units_arrays(
    rng: np.random.Generator, layer_name: str, units: list[tuple[str, int, int, int]]
) -> list[tuple[str, np.ndarray]]:
    """A custom FPN / SSH layer's 25 arrays in Keras' legacy order: kernel, gamma,
    beta of every ConvUnit (name, dim_in, dim_out, kernel), then the moving stats."""
    trainable, statistics = [], []
    for unit, dim_in, dim_out, k in units:
        gamma, beta, mean, var = _bn_arrays(rng, dim_out)
        scope = f"{layer_name}/{unit}"
        trainable += [
            (
                f"{scope}/conv2d/kernel:0",
                _random(rng, k, k, dim_in, dim_out, scale=1 / np.sqrt(k * k * dim_in)),
            ),
            (f"{scope}/batch_normalization/gamma:0", gamma),
            (f"{scope}/batch_normalization/beta:0", beta),
        ]
        statistics += [
            (f"{scope}/batch_normalization/moving_mean:0", mean),
            (f"{scope}/batch_normalization/moving_variance:0", var),
        ]
    return trainable + statistics


RETINAFACE_HEADS = {
    "bbox_head": ("BboxHead", 4),
    "LandmarkHead_": ("LandmarkHead", 10),
    "ClassHead_": ("ClassHead", 2),
}


def retinaface_head_names(prefix: str) -> list[str]:
    """The released file's names: bbox_head, bbox_head_1, _2; LandmarkHead_0..2, ..."""
    if prefix == "bbox_head":
        return ["bbox_head", "bbox_head_1", "bbox_head_2"]
    return [f"{prefix}{level}" for level in range(3)]


def retinaface_model(
    rng: np.random.Generator,
    *,
    blocks: tuple[int, ...] = (1, 1, 1, 1),
    widths: tuple[int, ...] = (8, 8, 8, 8),
    out_ch: int = 16,
    nms_iou: float = 0.35,
    score_threshold: float | None = 0.02,
) -> tuple[dict[str, Any], LayerWeights]:
    """A narrow RetinaFace graph in the released file's layout: RGB -> BGR slice and
    Caffe-mean bias_add ops, the nested ResNet `ResNet50_extrator` (3 outputs, used
    at node 1), custom FPN / SSH layers, the heads, and an NMS TFOpLambda node."""
    features = [f"conv{stage}_block{blocks[stage - 2]}_out" for stage in (3, 4, 5)]
    backbone, backbone_arrays = resnet50_v1(
        rng,
        blocks=blocks,
        widths=widths,
        image_size=0,
        name="ResNet50_extrator",
        inbound=node("tf.nn.bias_add"),
    )
    # The port's backbone: any image size, three outputs (C3, C4, C5).
    backbone["config"]["layers"][0]["config"]["batch_input_shape"] = [None, None, None, 3]
    backbone["config"]["output_layers"] = [[name, 0, 0] for name in features]
    slice_spec = [{"class_name": "__ellipsis__"}, {"start": None, "stop": None, "step": -1}]
    mean = [-103.939, -116.779, -123.68]
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
            flat_node("tf.__operators__.getitem", bias=mean, data_format="NHWC"),
        ),
        backbone,
        layer("FPN", "FPN", [[["ResNet50_extrator", 1, i, {}] for i in range(3)]], out_ch=out_ch),
        *(layer("SSH", f"SSH_{i}", node(("FPN", 0, i)), out_ch=out_ch) for i in range(3)),
    ]
    dims = [4 * widths[stage - 2] for stage in (3, 4, 5)]
    weights: LayerWeights = {
        "ResNet50_extrator": backbone_arrays,
        "FPN": conv_units_arrays(
            rng,
            "FPN",
            [
                ("output1", dims[0], out_ch, 1),
                ("output2", dims[1], out_ch, 1),
                ("output3", dims[2], out_ch, 1),
                ("merge1", out_ch, out_ch, 3),
                ("merge2", out_ch, out_ch, 3),
            ],
        ),
    }
    half, quarter = out_ch // 2, out_ch // 4
    for level in range(3):
        weights[f"SSH_{level}"] = conv_units_arrays(
            rng,
            f"SSH_{level}",
            [
                ("conv_3x3", out_ch, half, 3),
                ("conv_5x5_1", out_ch, quarter, 3),
                ("conv_5x5_2", quarter, quarter, 3),
                ("conv_7x7_2", quarter, quarter, 3),
                ("conv_7x7_3", quarter, quarter, 3),
            ],
        )
    for prefix, (class_name, k) in RETINAFACE_HEADS.items():
        for level, name in enumerate(retinaface_head_names(prefix)):
            layers.append(layer(class_name, name, node(f"SSH_{level}"), num_anchor=2))
            weights[name] = [
                (f"{name}/conv2d/kernel:0", _random(rng, 1, 1, out_ch, 2 * k)),
                (f"{name}/conv2d/bias:0", _random(rng, 2 * k, scale=0.2)),
            ]
    layers.append(
        op_layer(
            "TFOpLambda",
            "image.non_max_suppression",
            flat_node(
                "bbox_head",
                scores=["ClassHead_0", 0, 0],
                max_output_size=100,
                iou_threshold=nms_iou,
                **({} if score_threshold is None else {"score_threshold": score_threshold}),
                name=None,
            ),
        )
    )
    model = functional("RetinaFaceModel", layers, ["input_image"], ["tf.image.non_max_suppression"])
    return model, weights


def colour_mix_generator(path: Path, kernel: np.ndarray, bias: np.ndarray) -> None:
    """A ClipSwap-shaped "generator" (256 px target, 512-d identity) that is one
    1x1 convolution mixing the colour channels, y[o] = sum_i x[i] kernel[i, o] +
    bias[o], the identity unused: what happens around the network can then be
    computed by hand."""
    layers = [
        input_layer("target", [None, 256, 256, 3]),
        input_layer("source", [None, 512]),
        layer(
            "Conv2D",
            "to_rgb",
            node("target"),
            filters=3,
            kernel_size=[1, 1],
            strides=[1, 1],
            padding="valid",
            activation="linear",
        ),
    ]
    arrays = [
        ("to_rgb/kernel:0", np.asarray(kernel, np.float32).reshape(1, 1, 3, 3)),
        ("to_rgb/bias:0", np.asarray(bias, np.float32)),
    ]
    model = functional("generator", layers, ["target", "source"], ["to_rgb"])
    write_keras_h5(path, model, {"to_rgb": arrays})


def small_identity_graph(
    kernel: np.ndarray, dense: np.ndarray, *, activation: str
) -> tuple[dict[str, Any], LayerWeights]:
    """A 112 px RGB -> 512 stand-in for ArcFace-Res50: Conv2D 3x3 stride 2
    (`kernel`, zero bias, `activation`), 2x2 average pooling, Flatten, Dense 512
    (`dense`, zero bias)."""
    layers = [
        input_layer("input_1", [None, 112, 112, 3]),
        layer(
            "Conv2D",
            "conv",
            node("input_1"),
            filters=kernel.shape[-1],
            kernel_size=[3, 3],
            strides=[2, 2],
            padding="valid",
            activation=activation,
        ),
        layer(
            "AveragePooling2D",
            "pool",
            node("conv"),
            pool_size=[2, 2],
            strides=[2, 2],
            padding="valid",
        ),
        layer("Flatten", "flatten", node("pool")),
        layer("Dense", "embedding", node("flatten"), units=512, activation="linear"),
    ]
    weights = {
        "conv": [
            ("conv/kernel:0", kernel),
            ("conv/bias:0", np.zeros(kernel.shape[-1], np.float32)),
        ],
        "embedding": [
            ("embedding/kernel:0", dense),
            ("embedding/bias:0", np.zeros(512, np.float32)),
        ],
    }
    return functional("arcface", layers, ["input_1"], ["embedding"]), weights
