"""Parity, Keras side (runs in the TensorFlow venv that `make parity` builds).

For every graph JSON in DIR (written by the project from its own
FaceDancer spec), builds the model with tensorflow 2.14 + tensorflow-addons,
randomises every weight (norm gammas/betas, biases, moving statistics),
saves it as a full-model .h5 and the fixed inputs / Keras outputs as .npz.

    python tools/parity_keras.py DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_addons as tfa


class AdaIN(tf.keras.layers.Layer):
    """FaceDancer's AdaIN, re-implemented from the reference (not copied):
    gamma and beta from two Dense layers of w; no normalisation, no "1 +"."""

    def build(self, input_shape):  # type: ignore[no-untyped-def]
        channels = input_shape[0][-1]
        self.dense = tf.keras.layers.Dense(channels, name="dense")
        self.dense_1 = tf.keras.layers.Dense(channels, name="dense_1")
        super().build(input_shape)

    def call(self, inputs):  # type: ignore[no-untyped-def]
        x, w = inputs
        gamma = self.dense(w)[:, None, None, :]
        beta = self.dense_1(w)[:, None, None, :]
        return gamma * x + beta


class AdaptiveAttention(tf.keras.layers.Layer):
    def call(self, inputs):  # type: ignore[no-untyped-def]
        mask, target, source = inputs
        return (1 - mask) * target + mask * source


CUSTOM = {"AdaIN": AdaIN, "AdaptiveAttention": AdaptiveAttention,
          "Addons>InstanceNormalization": tfa.layers.InstanceNormalization}  # fmt: skip


def randomise(model: tf.keras.Model, rng: np.random.Generator) -> None:
    for variable in model.weights:
        shape, name = variable.shape, variable.name
        if "gamma" in name or "moving_variance" in name:
            value = 1 + 0.2 * rng.uniform(-1, 1, shape)
        elif len(shape) == 1:
            value = 0.2 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
        variable.assign(value.astype(np.float32))


def arcface_candidate() -> tf.keras.Model:
    """ArcFace-Res50's likely shape (reference 2.1): keras.applications ResNet50 v1
    at 112x112 as a nested Functional model, then BN, Dropout, Flatten, Dense(512), BN."""
    image = tf.keras.Input((112, 112, 3))
    backbone = tf.keras.applications.ResNet50(include_top=False, weights=None,
                                              input_shape=(112, 112, 3))  # fmt: skip
    x = tf.keras.layers.BatchNormalization()(backbone(image))
    x = tf.keras.layers.Dropout(0.4)(x)
    x = tf.keras.layers.Dense(512)(tf.keras.layers.Flatten()(x))
    return tf.keras.Model(image, tf.keras.layers.BatchNormalization()(x), name="arcface_res50")


def save(model: tf.keras.Model, stem: Path, rng: np.random.Generator, low: float) -> None:
    randomise(model, rng)
    model.save(stem.with_suffix(".h5"))
    inputs = [rng.uniform(low, 1, (2, *shape[1:])).astype(np.float32)
              for shape in (tuple(t.shape) for t in model.inputs)]  # fmt: skip
    outputs = model.predict(inputs, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    named = {f"output_{index}": array for index, array in enumerate(outputs)}
    np.savez(stem.with_suffix(".npz"), *inputs, **named)
    print(f"{stem.stem}: {model.count_params():,} parameters, saved")


def main(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for spec in sorted(folder.glob("*.json")):
        model = tf.keras.models.model_from_json(spec.read_text(), custom_objects=CUSTOM)
        save(model, spec.with_suffix(""), rng, low=-1.0)
    save(arcface_candidate(), folder / "arcface_candidate", rng, low=0.0)  # RGB in [0, 1]


if __name__ == "__main__":
    main(Path(sys.argv[1]))
