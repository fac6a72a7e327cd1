"""The Keras .h5 interpreter on narrow graphs written in the real layout, against
an independent NumPy forward (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from keras_writer import (
    avg_pool2,
    batch_norm,
    conv,
    flat_node,
    functional,
    input_layer,
    instance_norm,
    layer,
    leaky,
    max_pool,
    node,
    op_layer,
    sigmoid,
    upsample2_bilinear,
    write_keras_h5,
)

from clipswap_video.errors import CorruptWeightsError, InputNotFoundError
from clipswap_video.models.keras_h5 import KerasOpError, describe, load_h5_graph

RNG = np.random.default_rng(7)


def _r(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def _generator() -> tuple[dict, dict]:
    """A narrow FaceDancer-style graph: mapping, IN + AdaIN, pooling, AFFA-style
    mask with a `_hat` TFOpLambda multiply, AdaptiveAttention, bilinear up, concat, `final`."""
    layers = [
        input_layer("input_1", [None, 16, 16, 3]),
        input_layer("input_2", [None, 8]),
        layer("Dense", "dense", node("input_2"), units=6, activation="linear", use_bias=True),
        layer("LeakyReLU", "leaky_re_lu", node("dense"), alpha=0.2),
        layer("Dense", "dense_1", node("leaky_re_lu"), units=6, activation="linear"),
        layer(
            "Conv2D",
            "conv2d",
            node("input_1"),
            filters=4,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="same",
            activation="linear",
            use_bias=True,
        ),
        layer(
            "Addons>InstanceNormalization",
            "instance_normalization",
            node("conv2d"),
            axis=-1,
            epsilon=1e-3,
            groups=4,
        ),
        layer("AdaIN", "ada_in", node("instance_normalization", "dense_1")),
        layer("LeakyReLU", "leaky_re_lu_1", node("ada_in"), alpha=0.2),
        layer(
            "AveragePooling2D",
            "average_pooling2d",
            node("leaky_re_lu_1"),
            pool_size=[2, 2],
            strides=[2, 2],
            padding="valid",
        ),
        layer(
            "Conv2D",
            "conv2d_1",
            node("average_pooling2d"),
            filters=4,
            kernel_size=[3, 3],
            padding="same",
            activation="linear",
        ),
        layer("Concatenate", "concatenate", node("average_pooling2d", "conv2d_1"), axis=-1),
        layer(
            "Conv2D",
            "8x8",
            node("concatenate"),
            filters=4,
            kernel_size=[1, 1],
            padding="same",
            activation="sigmoid",
        ),
        layer(
            "Conv2D",
            "8x8_hat",
            node("concatenate"),
            filters=1,
            kernel_size=[1, 1],
            padding="same",
            activation="sigmoid",
        ),
        {
            "class_name": "TFOpLambda",
            "name": "tf.math.multiply",
            "config": {"name": "tf.math.multiply", "function": "math.multiply"},
            "inbound_nodes": [["8x8", 0, 0, {"y": ["8x8_hat", 0, 0], "name": None}]],
        },
        layer(
            "AdaptiveAttention",
            "adaptive_attention",
            node("tf.math.multiply", "average_pooling2d", "conv2d_1"),
        ),
        layer(
            "UpSampling2D",
            "up_sampling2d",
            node("adaptive_attention"),
            size=[2, 2],
            interpolation="bilinear",
        ),
        layer("Concatenate", "concatenate_1", node("conv2d", "up_sampling2d"), axis=-1),
        layer(
            "Conv2D",
            "conv2d_2",
            node("concatenate_1"),
            filters=3,
            kernel_size=[3, 3],
            padding="same",
            activation="linear",
        ),
        layer(
            "Conv2D",
            "conv2d_3",
            node("concatenate_1"),
            filters=3,
            kernel_size=[1, 1],
            padding="valid",
            activation="linear",
        ),
        layer("Add", "final", node("conv2d_2", "conv2d_3")),
    ]
    model = functional("generator", layers, ["input_1", "input_2"], ["final"])
    shapes = {
        "dense": (8, 6),
        "dense_1": (6, 6),
        "conv2d": (3, 3, 3, 4),
        "conv2d_1": (3, 3, 4, 4),
        "8x8": (1, 1, 8, 4),
        "8x8_hat": (1, 1, 8, 1),
        "conv2d_2": (3, 3, 8, 3),
        "conv2d_3": (1, 1, 8, 3),
    }
    weights = {
        name: [(f"{name}/kernel:0", _r(*shape)), (f"{name}/bias:0", _r(shape[-1], scale=0.2))]
        for name, shape in shapes.items()
    }
    weights["instance_normalization"] = [
        ("instance_normalization/gamma:0", 1 + _r(4, scale=0.3)),
        ("instance_normalization/beta:0", _r(4, scale=0.3)),
    ]
    weights["ada_in"] = [  # both Dense layers end in the same leaf names: by position
        ("ada_in/dense_2/kernel:0", _r(6, 4)),
        ("ada_in/dense_2/bias:0", 1 + _r(4, scale=0.2)),
        ("ada_in/dense_3/kernel:0", _r(6, 4)),
        ("ada_in/dense_3/bias:0", _r(4, scale=0.2)),
    ]
    return model, weights


def _generator_numpy(weights: dict, image: np.ndarray, z: np.ndarray) -> np.ndarray:
    w = {name: [a for _, a in arrays] for name, arrays in weights.items()}
    style = leaky(z @ w["dense"][0] + w["dense"][1], 0.2) @ w["dense_1"][0] + w["dense_1"][1]
    x0 = conv(image, *w["conv2d"])
    normed = instance_norm(x0, *w["instance_normalization"])
    gamma, beta = style @ w["ada_in"][0] + w["ada_in"][1], style @ w["ada_in"][2] + w["ada_in"][3]
    pooled = avg_pool2(leaky(normed * gamma[:, None, None] + beta[:, None, None], 0.2))
    q = conv(pooled, *w["conv2d_1"])
    joined = np.concatenate([pooled, q], -1)
    mask = sigmoid(conv(joined, *w["8x8"])) * sigmoid(conv(joined, *w["8x8_hat"]))
    up = upsample2_bilinear((1 - mask) * pooled + mask * q)
    both = np.concatenate([x0, up], -1)
    return conv(both, *w["conv2d_2"]) + conv(both, *w["conv2d_3"], same=False)


def _arcface() -> tuple[dict, dict]:
    """An ArcFace-style graph: a nested Functional backbone (referenced at node 1)
    with ZeroPadding, strided valid conv, BN, ReLU, MaxPool; then Flatten (NHWC),
    Dense and BN, and an l2_normalize TFOpLambda."""
    inner = [
        input_layer("input_4", [None, 16, 16, 3]),
        layer("ZeroPadding2D", "conv1_pad", node("input_4"), padding=[[1, 1], [1, 1]]),
        layer(
            "Conv2D",
            "conv1_conv",
            node("conv1_pad"),
            filters=6,
            kernel_size=[3, 3],
            strides=[2, 2],
            padding="valid",
            activation="linear",
        ),
        layer("BatchNormalization", "conv1_bn", node("conv1_conv"), axis=3, epsilon=1.001e-5),
        layer("Activation", "conv1_relu", node("conv1_bn"), activation="relu"),
        layer("ZeroPadding2D", "pool1_pad", node("conv1_relu"), padding=[[1, 1], [1, 1]]),
        layer(
            "MaxPooling2D",
            "pool1_pool",
            node("pool1_pad"),
            pool_size=[3, 3],
            strides=[2, 2],
            padding="valid",
        ),
    ]
    backbone = functional("resnet", inner, ["input_4"], ["pool1_pool"], node("input_3"))
    layers = [
        input_layer("input_3", [None, 16, 16, 3]),
        backbone,
        layer("Flatten", "flatten", node(("resnet", 1, 0))),
        layer("Dense", "dense_4", node("flatten"), units=5, activation="linear"),
        layer("BatchNormalization", "batch_normalization", node("dense_4"), axis=-1, epsilon=1e-3),
        {
            "class_name": "TFOpLambda",
            "name": "tf.math.l2_normalize",
            "config": {"name": "tf.math.l2_normalize", "function": "math.l2_normalize"},
            "inbound_nodes": [["batch_normalization", 0, 0, {"axis": 1, "name": None}]],
        },
    ]
    model = functional("arcface", layers, ["input_3"], ["tf.math.l2_normalize"])
    stats = [
        (_r(6), 0.5 + RNG.uniform(size=6).astype(np.float32)),
        (_r(5), 0.5 + RNG.uniform(size=5).astype(np.float32)),
    ]
    weights = {
        "resnet": [  # one group: all trainable arrays first, then the moving statistics
            ("conv1_conv/kernel:0", _r(3, 3, 3, 6)),
            ("conv1_conv/bias:0", _r(6)),
            ("conv1_bn/gamma:0", 1 + _r(6, scale=0.2)),
            ("conv1_bn/beta:0", _r(6)),
            ("conv1_bn/moving_mean:0", stats[0][0]),
            ("conv1_bn/moving_variance:0", stats[0][1]),
        ],
        "dense_4": [("dense_4/kernel:0", _r(4 * 4 * 6, 5)), ("dense_4/bias:0", _r(5))],
        "batch_normalization": [
            ("batch_normalization/gamma:0", 1 + _r(5, scale=0.2)),
            ("batch_normalization/beta:0", _r(5)),
            ("batch_normalization/moving_mean:0", stats[1][0]),
            ("batch_normalization/moving_variance:0", stats[1][1]),
        ],
    }
    return model, weights


def _arcface_numpy(weights: dict, image: np.ndarray) -> np.ndarray:
    a = {leaf.split("/")[0] + "/" + leaf.split("/")[1]: arr for leaf, arr in weights["resnet"]}
    x = conv(
        np.pad(image, [(0, 0), (1, 1), (1, 1), (0, 0)]),
        a["conv1_conv/kernel:0"],
        a["conv1_conv/bias:0"],
        stride=2,
        same=False,
    )
    x = batch_norm(
        x,
        a["conv1_bn/gamma:0"],
        a["conv1_bn/beta:0"],
        a["conv1_bn/moving_mean:0"],
        a["conv1_bn/moving_variance:0"],
        1.001e-5,
    )
    x = max_pool(np.pad(np.maximum(x, 0), [(0, 0), (1, 1), (1, 1), (0, 0)]), 3, 2)
    dense = [arr for _, arr in weights["dense_4"]]
    bn = [arr for _, arr in weights["batch_normalization"]]
    y = batch_norm(x.reshape(len(x), -1) @ dense[0] + dense[1], *bn, 1e-3)
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("chunks", [1, 3])
def test_generator_graph_matches_numpy(tmp_path: Path, chunks: int) -> None:
    model, weights = _generator()
    path = write_keras_h5(tmp_path / "g.h5", model, weights, chunks=chunks)
    image, z = RNG.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32), _r(2, 8)
    with torch.no_grad():
        out = load_h5_graph(path)(_nchw(image), torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)
    expected = _generator_numpy(weights, image, z)
    assert out.shape == (2, 16, 16, 3)
    assert np.abs(out - expected).max() < 1e-4


def test_nested_backbone_flatten_order_and_bn(tmp_path: Path) -> None:
    model, weights = _arcface()
    path = write_keras_h5(tmp_path / "a.h5", model, weights)
    image = RNG.uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    with torch.no_grad():
        out = load_h5_graph(path)(_nchw(image)).numpy()
    assert np.abs(out - _arcface_numpy(weights, image)).max() < 1e-5


def test_describe_reports_kind_inputs_and_parameters(tmp_path: Path) -> None:
    model, weights = _generator()
    report = describe(load_h5_graph(write_keras_h5(tmp_path / "g.h5", model, weights)))
    assert report["kind"] == "generator"
    assert report["inputs"] == [[None, 16, 16, 3], [None, 8]]
    assert report["layers"]["AdaIN"] == 1 and report["layers"]["Conv2D"] == 6
    assert report["mapping"] == {"depth": 2, "size": 6}
    assert report["attention_levels"] == ["8x8", "8x8_hat"]
    assert report["parameters"] == sum(a.size for arrays in weights.values() for _, a in arrays)


def test_refusals_name_the_layer(tmp_path: Path) -> None:
    model, weights = _generator()
    model["config"]["layers"][3] = layer("Lambda", "mystery", node("dense"), function="...")
    with pytest.raises(KerasOpError, match="layer 'mystery' is a Keras Lambda"):
        load_h5_graph(write_keras_h5(tmp_path / "l.h5", model, weights))
    model["config"]["layers"][3] = layer("Cropping3D", "odd", node("dense"))
    with pytest.raises(KerasOpError, match="'odd' has class 'Cropping3D'"):
        load_h5_graph(write_keras_h5(tmp_path / "u.h5", model, weights))


def test_weights_only_file_needs_its_json(tmp_path: Path) -> None:
    model, weights = _generator()
    path = write_keras_h5(tmp_path / "w.h5", model, weights, with_config=False)
    with pytest.raises(CorruptWeightsError, match="weights only"):
        load_h5_graph(path)
    config = tmp_path / "gen.json"
    config.write_text(json.dumps(model))
    assert describe(load_h5_graph(path, config))["kind"] == "generator"


def test_missing_and_non_hdf5_files(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        load_h5_graph(tmp_path / "none.h5")
    (tmp_path / "bad.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(CorruptWeightsError, match="not a readable HDF5"):
        load_h5_graph(tmp_path / "bad.h5")


def test_convert_to_safetensors_rebuilds_the_same_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clipswap_video.cli import main
    from clipswap_video.models import create_model

    model, weights = _generator()
    source = write_keras_h5(tmp_path / "g.h5", model, weights)
    target = tmp_path / "g.safetensors"
    assert main(["weights", "convert", str(source), str(target), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "generator" and report["inputs"][1] == [None, 8]
    image, z = _nchw(RNG.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)), torch.randn(1, 8)
    with torch.no_grad():
        assert torch.equal(create_model(target)(image, z), create_model(source)(image, z))


def test_converted_file_errors(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from safetensors.numpy import save_file

    from clipswap_video.models import create_model

    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CorruptWeightsError, match="not a converted clipswap-video model"):
        create_model(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CorruptWeightsError, match="cannot be read"):
        create_model(tmp_path / "junk.safetensors")
    model, weights = _generator()
    source = write_keras_h5(tmp_path / "g.h5", model, weights)
    code, err = cli("weights", "convert", source, tmp_path / "g.pt")
    assert code == 9 and "must end in .safetensors" in err


def test_facedancer_spec_matches_the_reference_census_and_parameters() -> None:
    from collections import Counter

    from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config

    for size, expected in ((256, 22_473_254), (512, 24_505_894)):  # reference section 1.4
        config, shapes = generator_config(GeneratorSpec(mapping_size=size))
        assert sum(int(np.prod(s)) for arrays in shapes.values() for _, s in arrays) == expected
    mixed, mixed_shapes = generator_config(
        GeneratorSpec(up_types=("affa", "d_affa", "do_affa", "add", "no_skip", "concat"))
    )
    assert sum(int(np.prod(s)) for a in mixed_shapes.values() for _, s in a) == 34_279_047
    assert sum(layer["class_name"] == "TFOpLambda" for layer in mixed["config"]["layers"]) == 1
    census = Counter(layer["class_name"] for layer in config["config"]["layers"])
    assert census == {
        "Conv2D": 33,
        "LeakyReLU": 19,
        "Addons>InstanceNormalization": 16,
        "Add": 13,
        "AveragePooling2D": 10,
        "UpSampling2D": 10,
        "AdaIN": 7,
        "Dense": 4,
        "Concatenate": 4,
        "AdaptiveAttention": 3,
        "InputLayer": 2,
    }


@pytest.mark.parametrize(
    "up_types",
    [
        ("no_skip", "no_skip", "affa", "affa", "affa", "concat"),
        ("add", "affa", "concat", "no_skip", "add", "affa"),
        ("affa", "d_affa", "do_affa", "add", "no_skip", "concat"),
    ],
)
def test_narrow_facedancer_through_the_h5_file(tmp_path: Path, up_types: tuple[str, ...]) -> None:
    from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
    from clipswap_video.models.keras_h5 import KerasGraph
    from clipswap_video.models.spec_graph import random_weights

    spec = GeneratorSpec(
        image_size=64,
        z_dim=8,
        channels=(4, 8, 8, 8, 8, 8),
        mapping_depth=2,
        mapping_size=6,
        up_types=up_types,
    )
    config, shapes = generator_config(spec)
    weights = random_weights(shapes, seed=3)
    model = load_h5_graph(write_keras_h5(tmp_path / "g.h5", config, weights, chunks=2))
    image, z = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 8)
    with torch.no_grad():
        out = model(image, z)
        direct = KerasGraph(config, weights).eval()(image, z)
    assert out.shape == (2, 3, 64, 64) and torch.isfinite(out).all()
    assert torch.equal(out, direct)  # the file round trip changes nothing
    assert describe(model)["mapping"] == {"depth": 2, "size": 6}


def test_models_by_name(tmp_path: Path) -> None:
    from clipswap_video.errors import ConfigValueError
    from clipswap_video.models import create_model, list_models, model_spec
    from clipswap_video.models.convert import convert
    from clipswap_video.models.facedancer_spec import generator_config
    from clipswap_video.models.spec_graph import random_weights

    assert {"facedancer_256", "facedancer_256_m512"} <= set(list_models())
    assert model_spec("facedancer_256_m512").mapping_size == 512
    with pytest.raises(ConfigValueError, match="unknown model 'nope'"):
        model_spec("nope")
    config, shapes = generator_config(model_spec("facedancer_256"))
    source = write_keras_h5(tmp_path / "g.h5", config, random_weights(shapes, seed=5))
    convert(source, tmp_path / "g.safetensors")
    model = create_model("facedancer_256", tmp_path / "g.safetensors", dtype=torch.float32)
    assert describe(model)["parameters"] == 22_473_254
    with pytest.raises(ConfigValueError, match="has 22,473,254 parameters"):
        create_model("facedancer_256_m512", tmp_path / "g.safetensors")


def test_discriminator_spec_size_and_logit(tmp_path: Path) -> None:
    from clipswap_video.models.spec_graph import random_weights
    from clipswap_video.models.training_specs import discriminator_config

    config, shapes = discriminator_config()
    assert sum(int(np.prod(s)) for arrays in shapes.values() for _, s in arrays) == 23_972_353
    narrow, narrow_shapes = discriminator_config(image_size=64, first=4, channels=(6, 8, 8, 8))
    model = load_h5_graph(write_keras_h5(tmp_path / "d.h5", narrow, random_weights(narrow_shapes)))
    with torch.no_grad():
        assert model(torch.rand(3, 3, 64, 64)).shape == (3, 1)


def test_attribute_encoder_spec_size_and_outputs(tmp_path: Path) -> None:
    from clipswap_video.models.spec_graph import random_weights
    from clipswap_video.models.training_specs import attribute_encoder_config

    config, shapes = attribute_encoder_config()
    assert sum(int(np.prod(s)) for arrays in shapes.values() for _, s in arrays) == 21_386_048
    narrow, narrow_shapes = attribute_encoder_config(image_size=32, first=4, channels=(6, 8))
    model = load_h5_graph(write_keras_h5(tmp_path / "e.h5", narrow, random_weights(narrow_shapes)))
    with torch.no_grad():
        outputs = model(torch.rand(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outputs] == [
        (2, 4, 32, 32),
        (2, 6, 16, 16),
        (2, 8, 8, 8),
        (2, 8, 8, 8),
        (2, 8, 8, 8),
    ]


@pytest.mark.parametrize("shared", [True, False])
def test_prelu_per_channel_and_per_position(tmp_path: Path, shared: bool) -> None:
    alpha = RNG.uniform(0.1, 0.5, (1, 1, 3) if shared else (4, 4, 3)).astype(np.float32)
    layers = [
        input_layer("input_1", [None, 4, 4, 3]),
        layer("PReLU", "p_re_lu", node("input_1"), shared_axes=[1, 2] if shared else None),
    ]
    model = functional("prelu", layers, ["input_1"], ["p_re_lu"])
    path = write_keras_h5(tmp_path / "p.h5", model, {"p_re_lu": [("p_re_lu/alpha:0", alpha)]})
    image = RNG.normal(size=(2, 4, 4, 3)).astype(np.float32)
    with torch.no_grad():
        out = load_h5_graph(path)(_nchw(image)).numpy().transpose(0, 2, 3, 1)
    assert np.allclose(out, np.where(image >= 0, image, alpha * image), atol=1e-6)


def _prelu_after_conv(tmp_path: Path) -> Path:
    """input -> 1x1 Conv2D -> shared-axes PReLU (a conv's output is fp16 under autocast)."""
    layers = [
        input_layer("input_1", [None, 4, 4, 3]),
        layer(
            "Conv2D",
            "conv2d",
            node("input_1"),
            filters=3,
            kernel_size=[1, 1],
            padding="same",
            activation="linear",
            use_bias=False,
        ),
        layer("PReLU", "p_re_lu", node("conv2d"), shared_axes=[1, 2]),
    ]
    weights = {
        "conv2d": [("conv2d/kernel:0", _r(1, 1, 3, 3))],
        "p_re_lu": [("p_re_lu/alpha:0", np.full((1, 1, 3), 0.25, np.float32))],
    }
    return write_keras_h5(
        tmp_path / "p.h5", functional("prelu", layers, ["input_1"], ["p_re_lu"]), weights
    )


def test_prelu_keeps_a_half_precision_input_half() -> None:
    """alpha is fp32; `alpha * x` promoted a bf16/fp16 x to fp32 for every later layer."""
    from clipswap_video.models._keras_ops import PReLU

    prelu = PReLU({}, [("alpha", np.full((1, 1, 2), 0.5, np.float32))])
    x = torch.tensor([-2.0, 3.0]).view(1, 2, 1, 1).to(torch.bfloat16)
    with torch.no_grad():
        out = prelu([x])
    assert out.dtype == torch.bfloat16 and out.flatten().tolist() == [-1.0, 3.0]


def _bias_add_graph(tmp_path: Path, data_format: str = "NHWC") -> Path:
    layers = [
        input_layer("input_image", [None, None, None, 3]),
        op_layer(
            "TFOpLambda",
            "nn.bias_add",
            flat_node("input_image", bias=[-1.0, -2.0, -3.0], data_format=data_format),
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
    model = functional("pre", layers, ["input_image"], ["conv2d"])
    return write_keras_h5(tmp_path / "bias.h5", model, {"conv2d": [("conv2d/kernel:0", kernel)]})


def test_bias_add_makes_its_bias_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bias is a buffer built at load (moved and cast with the module, not in
    the state dict), not a tensor made from the list on every call."""
    model = load_h5_graph(_bias_add_graph(tmp_path)).double()
    assert [name for name, _ in model.named_buffers()] == ["ops.tf__nn__bias_add.bias"]
    assert "ops.tf__nn__bias_add.bias" not in model.state_dict()
    image = RNG.uniform(0, 255, (1, 5, 4, 3))

    def no_new_tensors(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tensor made in forward")

    monkeypatch.setattr(torch, "as_tensor", no_new_tensors)
    monkeypatch.setattr(torch, "tensor", no_new_tensors)
    with torch.no_grad():
        got = model(torch.from_numpy(image).permute(0, 3, 1, 2))
    expected = (image - [1, 2, 3]) @ np.arange(6.0).reshape(3, 2)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), expected, rtol=1e-12)


def test_bias_add_refuses_channels_first(tmp_path: Path) -> None:
    path = _bias_add_graph(tmp_path, data_format="NCHW")
    with pytest.raises(KerasOpError, match="nn.bias_add with data_format 'NCHW'"):
        load_h5_graph(path)


@pytest.mark.cuda
def test_prelu_graph_under_fp16_autocast_stays_fp16(tmp_path: Path) -> None:
    model = load_h5_graph(_prelu_after_conv(tmp_path)).cuda()
    x = torch.randn(2, 3, 4, 4, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        out = model(x)
    assert out.dtype == torch.float16
    with torch.no_grad():
        reference = model(x)
    torch.testing.assert_close(out.float(), reference, atol=2e-2, rtol=2e-2)


@pytest.mark.cuda
def test_bias_add_graph_runs_without_a_host_sync(tmp_path: Path) -> None:
    model = load_h5_graph(_bias_add_graph(tmp_path)).cuda()
    x = torch.rand(1, 3, 5, 4, device="cuda") * 255
    with torch.no_grad():
        model(x)  # warm-up: cuDNN's first call
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = model(x)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    expected = (x - torch.tensor([1.0, 2.0, 3.0], device="cuda").view(1, 3, 1, 1)).permute(
        0, 2, 3, 1
    ) @ torch.arange(6.0, device="cuda").view(3, 2)
    torch.testing.assert_close(out.permute(0, 2, 3, 1), expected, atol=1e-3, rtol=1e-4)
