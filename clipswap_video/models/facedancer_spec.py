"""FaceDancer's generator (Rosberg et al., WACV 2023; ClipSwap uses the same
layer vocabulary) written out as a Keras 2 `model_config`, with the weight
shapes of every layer: the topology of docs/models.md
section 1, at any width.

It lets the interpreter, the benchmarks and the tests work on the real graph
shape without the released 90 MB files: full width for speed figures, narrow
for tests (the default graph reproduces the reference's layer census and its
22,473,254 parameters at mapping size 256).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple[int, ...]
DEFAULT_UP_TYPES = ("no_skip", "no_skip", "affa", "affa", "affa", "concat")
UP_TYPES = ("no_skip", "affa", "d_affa", "do_affa", "concat", "add")


@dataclass
class _Graph:
    layers: list[dict[str, Any]] = field(default_factory=list)
    shapes: dict[str, list[tuple[str, Shape]]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        cls: str,
        prefix: str,
        inputs: list[str],
        name: str | None = None,
        shapes: list[tuple[str, Shape]] | None = None,
        **config: Any,
    ) -> str:
        if name is None:
            index = self.counts[prefix]
            self.counts[prefix] += 1
            name = prefix if index == 0 else f"{prefix}_{index}"
        nodes = [[[source, 0, 0, {}] for source in inputs]] if inputs else []
        layer = {"class_name": cls, "name": name, "config": {"name": name, **config}}
        self.layers.append({**layer, "inbound_nodes": nodes})
        if shapes:
            self.shapes[name] = [(f"{name}/{leaf}:0", shape) for leaf, shape in shapes]
        return name

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        act: str = "linear",
        name: str | None = None,
        padding: str = "same",
    ) -> str:
        return self.add(
            "Conv2D",
            "conv2d",
            [x],
            name,
            [("kernel", (k, k, cin, cout)), ("bias", (cout,))],
            filters=cout,
            kernel_size=[k, k],
            strides=[1, 1],
            padding=padding,
            activation=act,
            use_bias=True,
        )

    def multiply(self, x: str, y: str | float) -> str:
        """`x * y` as Keras serialises `tf.math.multiply`: a TFOpLambda with a flat
        node whose keyword `y` is a tensor reference or a constant."""
        index = self.counts["tf.math.multiply"]
        self.counts["tf.math.multiply"] += 1
        name = "tf.math.multiply" + (f"_{index}" if index else "")
        factor = [y, 0, 0] if isinstance(y, str) else y
        self.layers.append(
            {
                "class_name": "TFOpLambda",
                "name": name,
                "config": {"name": name, "function": "math.multiply"},
                "inbound_nodes": [[x, 0, 0, {"y": factor, "name": None}]],
            }
        )
        return name

    def pool(self, x: str) -> str:
        return self.op(
            "AveragePooling2D",
            "average_pooling2d",
            [x],
            pool_size=[2, 2],
            strides=[2, 2],
            padding="valid",
        )

    def norm(self, x: str, c: int) -> str:
        return self.add(
            "Addons>InstanceNormalization",
            "instance_normalization",
            [x],
            None,
            [("gamma", (c,)), ("beta", (c,))],
            axis=-1,
            epsilon=1e-3,
            groups=c,
            center=True,
            scale=True,
        )

    def act(self, x: str) -> str:
        return self.add("LeakyReLU", "leaky_re_lu", [x], alpha=0.2)

    def op(
        self, cls: str, prefix: str, inputs: list[str], name: str | None = None, **config: Any
    ) -> str:
        return self.add(cls, prefix, inputs, name, **config)


@dataclass(frozen=True)
class GeneratorSpec:
    """The generator's hyper-parameters (those `get_generator` takes)."""

    image_size: int = 256
    z_dim: int = 512
    channels: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
    mapping_depth: int = 4
    mapping_size: int = 256
    up_types: tuple[str, ...] = DEFAULT_UP_TYPES


def generator_config(spec: GeneratorSpec) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The Functional `model_config` and {layer: [(weight name, shape)]} of `spec`."""
    unknown = set(spec.up_types) - set(UP_TYPES)
    if unknown or len(spec.up_types) != 6:
        raise ValueError(f"up_types must be 6 of {UP_TYPES}, got {spec.up_types}")
    g = _Graph()
    image = g.op(
        "InputLayer",
        "input",
        [],
        "input_1",
        batch_input_shape=[None, spec.image_size, spec.image_size, 3],
    )
    z = g.op("InputLayer", "input", [], "input_2", batch_input_shape=[None, spec.z_dim])
    w = _mapping(g, z, spec)
    c = spec.channels
    skips = [g.conv(image, 3, c[0], 3)]
    for index in range(1, len(c)):
        skips.append(_res_down(g, skips[-1], c[index - 1], c[index], resample=True))
    x = _res_down(g, skips[-1], c[-1], c[-1], resample=False)
    x = _res_up(g, x, w, c[-1], c[-1], spec, resample=False)
    outs = [*reversed(c[:-1]), 3]
    sizes = [spec.image_size >> level for level in range(len(c) - 1, -1, -1)]
    prev_channels = c[-1]
    for level, up_type in enumerate(spec.up_types):
        skip, skip_channels = skips[len(c) - 1 - level], c[len(c) - 1 - level]
        final = level == len(spec.up_types) - 1
        # Mask convs carry their level's name; at the last level the name `final`
        # belongs to the output Add, so an attention mask there stays unnamed.
        name = None if final else f"{sizes[level] * 2}x{sizes[level] * 2}"
        x, width = _merge(g, up_type, skip, x, skip_channels, prev_channels, name)
        x = _res_up(
            g, x, w, width, outs[level], spec, resample=not final, name="final" if final else None
        )
        prev_channels = outs[level]
    config = {
        "class_name": "Functional",
        "config": {
            "name": "generator",
            "layers": g.layers,
            "input_layers": [[image, 0, 0], [z, 0, 0]],
            "output_layers": [[x, 0, 0]],
        },
    }
    return config, g.shapes


def discriminator_config(
    image_size: int = 256,
    first: int = 64,
    channels: tuple[int, ...] = (128, 256, 512, 512, 512, 512),
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """FaceDancer's discriminator (reference 4.1): Conv3x3, six DownD blocks,
    Conv4x4 'valid', LeakyReLU, Conv1x1 to one logit, Reshape((1,))."""
    g = _Graph()
    image = g.op(
        "InputLayer", "input", [], "input_1", batch_input_shape=[None, image_size, image_size, 3]
    )
    x, width = g.conv(image, 3, first, 3), first
    for out in channels:
        skip = g.pool(g.conv(x, width, out, 1))
        main = g.pool(g.conv(g.act(g.norm(x, width)), width, out, 3))
        main = g.conv(g.act(g.norm(main, out)), out, out, 3)
        x, width = g.op("Add", "add", [main, skip]), out
    side = image_size >> len(channels)
    x = g.conv(g.act(g.conv(x, width, width, side, padding="valid")), width, 1, 1)
    logit = g.op("Reshape", "reshape", [x], target_shape=[1])
    config = {
        "class_name": "Functional",
        "config": {
            "name": "discriminator",
            "layers": g.layers,
            "input_layers": [[image, 0, 0]],
            "output_layers": [[logit, 0, 0]],
        },
    }
    return config, g.shapes


def attribute_encoder_config(
    image_size: int = 256,
    first: int = 64,
    channels: tuple[int, ...] = (128, 256, 512, 512, 512),
    extra_blocks: int = 2,
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """ClipSwap's attribute encoder (reference 4.3): StarGAN-v2's generator
    encoder with per-pixel LayerNormalization (epsilon 1e-3); outputs the first
    conv and every block's output (the last one is the 8x8 feature the
    attribute loss compares)."""
    g = _Graph()
    image = g.op(
        "InputLayer", "input", [], "input_1", batch_input_shape=[None, image_size, image_size, 3]
    )
    x, width = g.conv(image, 3, first, 3), first
    outputs = [x]
    plan = [(out, True) for out in channels] + [(channels[-1], False)] * extra_blocks
    for out, down in plan:
        x = _res_block(g, x, width, out, down)
        outputs.append(x)
        width = out
    config = {
        "class_name": "Functional",
        "config": {
            "name": "attribute_encoder",
            "layers": g.layers,
            "input_layers": [[image, 0, 0]],
            "output_layers": [[name, 0, 0] for name in outputs],
        },
    }
    return config, g.shapes


def _layer_norm(g: _Graph, x: str, c: int) -> str:
    return g.add(
        "LayerNormalization",
        "layer_normalization",
        [x],
        None,
        [("gamma", (c,)), ("beta", (c,))],
        axis=[3],
        epsilon=1e-3,
    )


def _res_block(g: _Graph, x: str, cin: int, cout: int, down: bool) -> str:
    """StarGAN-v2 ResBlk: (shortcut + residual) / sqrt(2); the 1x1 shortcut has no bias."""
    residual = g.conv(g.act(_layer_norm(g, x, cin)), cin, cin, 3)
    if down:
        residual = g.pool(residual)
    residual = g.conv(g.act(_layer_norm(g, residual, cin)), cin, cout, 3)
    shortcut = x
    if cin != cout:
        shortcut = g.add(
            "Conv2D",
            "conv2d",
            [x],
            None,
            [("kernel", (1, 1, cin, cout))],
            filters=cout,
            kernel_size=[1, 1],
            strides=[1, 1],
            padding="same",
            activation="linear",
            use_bias=False,
        )
    if down:
        shortcut = g.pool(shortcut)
    return g.multiply(g.op("Add", "add", [shortcut, residual]), 2**-0.5)


def random_weights(shapes: dict[str, list[Any]], seed: int = 0) -> dict[str, list[Any]]:
    """Non-trivial arrays for every weight (gammas near 1, biases non-zero), so a
    layout mistake cannot hide behind default values."""
    rng = np.random.default_rng(seed)
    weights: dict[str, list[Any]] = {}
    for layer, entries in shapes.items():
        arrays = []
        for name, shape in entries:
            if "gamma" in name:
                array = 1 + 0.1 * rng.standard_normal(shape)
            elif len(shape) == 1:
                array = 0.1 * rng.standard_normal(shape)
            else:
                fan_in = int(np.prod(shape[:-1]))
                array = rng.standard_normal(shape) / np.sqrt(fan_in)
            arrays.append((name, array.astype(np.float32)))
        weights[layer] = arrays
    return weights


def _mapping(g: _Graph, z: str, spec: GeneratorSpec) -> str:
    x, width = z, spec.z_dim
    for depth in range(spec.mapping_depth):
        x = g.add(
            "Dense",
            "dense",
            [x],
            None,
            [("kernel", (width, spec.mapping_size)), ("bias", (spec.mapping_size,))],
            units=spec.mapping_size,
            activation="linear",
            use_bias=True,
        )
        width = spec.mapping_size
        if depth < spec.mapping_depth - 1:
            x = g.act(x)
    return x


def _res_down(g: _Graph, x: str, cin: int, cout: int, *, resample: bool) -> str:
    skip = g.conv(x, cin, cout, 1)
    main = g.conv(g.act(g.norm(x, cin)), cin, cout, 3)
    if resample:
        skip, main = g.pool(skip), g.pool(main)
    return g.op("Add", "add", [main, skip])


def _res_up(
    g: _Graph,
    x: str,
    w: str,
    cin: int,
    cout: int,
    spec: GeneratorSpec,
    *,
    resample: bool,
    name: str | None = None,
) -> str:
    skip = g.conv(x, cin, cout, 1)
    size = spec.mapping_size if spec.mapping_depth else spec.z_dim
    styled = g.add("AdaIN", "ada_in", [g.norm(x, cin), w], None, None)
    index = g.counts["ada_in"] - 1
    prefix = "ada_in" if index == 0 else f"ada_in_{index}"
    # Keras 2.14 names AdaIN's inner Dense layers dense / dense_1 (by position).
    g.shapes[styled] = [
        (f"{prefix}/{dense}/{leaf}:0", (size, cin) if leaf == "kernel" else (cin,))
        for dense in ("dense", "dense_1")
        for leaf in ("kernel", "bias")
    ]
    main = g.conv(g.act(styled), cin, cout, 3)
    if resample:
        skip = g.op("UpSampling2D", "up_sampling2d", [skip], size=[2, 2], interpolation="bilinear")
        main = g.op("UpSampling2D", "up_sampling2d", [main], size=[2, 2], interpolation="bilinear")
    return g.op("Add", "add", [main, skip], name)


def _merge(
    g: _Graph,
    up_type: str,
    skip: str,
    x: str,
    skip_channels: int,
    x_channels: int,
    name: str | None,
) -> tuple[str, int]:
    """The input of a level's ResUp and its channels, by up_type (reference 1.5)."""
    if up_type == "no_skip":
        return x, x_channels
    if up_type == "concat":
        return g.op("Concatenate", "concatenate", [skip, x], axis=-1), skip_channels + x_channels
    if up_type == "add":
        return g.op("Add", "add", [skip, x]), skip_channels
    if up_type == "affa":
        return _attention(g, skip, x, skip_channels, x_channels, name), skip_channels
    if up_type == "d_affa":  # two attention modules in a row, the second on the first's output
        first = _attention(g, skip, x, skip_channels, x_channels, name and f"{name}_0")
        return _attention(g, skip, first, skip_channels, skip_channels, name and f"{name}_1"), (
            skip_channels
        )
    return _double_mask(g, skip, x, skip_channels, x_channels, name), skip_channels


def _mask(g: _Graph, joined: str, cin: int, hidden: int, cout: int, name: str | None) -> str:
    """Conv3x3 -> LeakyReLU -> IN (activation before the norm) -> Conv1x1 sigmoid."""
    h = g.norm(g.act(g.conv(joined, cin, hidden, 3)), hidden)
    return g.conv(h, hidden, cout, 1, "sigmoid", name=name)


def _attention(
    g: _Graph, skip: str, x: str, skip_channels: int, x_channels: int, name: str | None
) -> str:
    """AFFA (reference 1.3): (1 - m) * skip + m * x, m from the concatenation."""
    joined = g.op("Concatenate", "concatenate", [skip, x], axis=-1)
    mask = _mask(g, joined, skip_channels + x_channels, skip_channels // 4, skip_channels, name)
    return g.op("AdaptiveAttention", "adaptive_attention", [mask, skip, x])


def _double_mask(
    g: _Graph, skip: str, x: str, skip_channels: int, x_channels: int, name: str | None
) -> str:
    """do_affa: a per-channel mask times a one-channel mask (TFOpLambda multiply),
    hidden width C_t."""
    joined = g.op("Concatenate", "concatenate", [skip, x], axis=-1)
    width = skip_channels + x_channels
    hat = _mask(g, joined, width, skip_channels, 1, name and f"{name}_hat")
    mask = _mask(g, joined, width, skip_channels, skip_channels, name)
    return g.op("AdaptiveAttention", "adaptive_attention", [g.multiply(mask, hat), skip, x])


__all__ = [
    "DEFAULT_UP_TYPES",
    "GeneratorSpec",
    "attribute_encoder_config",
    "discriminator_config",
    "generator_config",
    "random_weights",
]
