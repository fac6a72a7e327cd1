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

from dataclasses import dataclass
from typing import Any

from clipswap_video.models.spec_graph import SpecGraph

DEFAULT_UP_TYPES = ("no_skip", "no_skip", "affa", "affa", "affa", "concat")
UP_TYPES = ("no_skip", "affa", "d_affa", "do_affa", "concat", "add")


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
    g = SpecGraph()
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


def _mapping(g: SpecGraph, z: str, spec: GeneratorSpec) -> str:
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


def _res_down(g: SpecGraph, x: str, cin: int, cout: int, *, resample: bool) -> str:
    skip = g.conv(x, cin, cout, 1)
    main = g.conv(g.act(g.norm(x, cin)), cin, cout, 3)
    if resample:
        skip, main = g.pool(skip), g.pool(main)
    return g.op("Add", "add", [main, skip])


def _res_up(
    g: SpecGraph,
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
    g: SpecGraph,
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


def _mask(g: SpecGraph, joined: str, cin: int, hidden: int, cout: int, name: str | None) -> str:
    """Conv3x3 -> LeakyReLU -> IN (activation before the norm) -> Conv1x1 sigmoid."""
    h = g.norm(g.act(g.conv(joined, cin, hidden, 3)), hidden)
    return g.conv(h, hidden, cout, 1, "sigmoid", name=name)


def _attention(
    g: SpecGraph, skip: str, x: str, skip_channels: int, x_channels: int, name: str | None
) -> str:
    """AFFA (reference 1.3): (1 - m) * skip + m * x, m from the concatenation."""
    joined = g.op("Concatenate", "concatenate", [skip, x], axis=-1)
    mask = _mask(g, joined, skip_channels + x_channels, skip_channels // 4, skip_channels, name)
    return g.op("AdaptiveAttention", "adaptive_attention", [mask, skip, x])


def _double_mask(
    g: SpecGraph, skip: str, x: str, skip_channels: int, x_channels: int, name: str | None
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
    "UP_TYPES",
    "GeneratorSpec",
    "generator_config",
]
