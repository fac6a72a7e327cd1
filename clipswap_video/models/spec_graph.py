"""Writing a Keras 2 `model_config` in code: the layer graph the spec modules
(facedancer_spec, training_specs) build on, with each layer's name, wiring and
weight shapes as Keras gives them, and random weights for those shapes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple[int, ...]


@dataclass
class SpecGraph:
    """A Functional model's layers as they are being written, and their weight shapes."""

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


__all__ = ["SpecGraph", "random_weights"]
