"""The Keras `model_config`s of the networks that train the generator (written
out as Keras 2 would save them, at any width): FaceDancer's discriminator and
ClipSwap's attribute encoder (docs/models.md, section 4). The hand-written
modules (models/discriminator.py, models/attribute_encoder.py) name their
layers after these graphs.
"""

from __future__ import annotations

from typing import Any

from clipswap_video.models.spec_graph import SpecGraph


def discriminator_config(
    image_size: int = 256,
    first: int = 64,
    channels: tuple[int, ...] = (128, 256, 512, 512, 512, 512),
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """FaceDancer's discriminator (reference 4.1): Conv3x3, six DownD blocks,
    Conv4x4 'valid', LeakyReLU, Conv1x1 to one logit, Reshape((1,))."""
    g = SpecGraph()
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
    g = SpecGraph()
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


def _layer_norm(g: SpecGraph, x: str, c: int) -> str:
    return g.add(
        "LayerNormalization",
        "layer_normalization",
        [x],
        None,
        [("gamma", (c,)), ("beta", (c,))],
        axis=[3],
        epsilon=1e-3,
    )


def _res_block(g: SpecGraph, x: str, cin: int, cout: int, down: bool) -> str:
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


__all__ = ["attribute_encoder_config", "discriminator_config"]
