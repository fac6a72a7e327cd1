"""Parity, Keras side (runs in the TensorFlow venv that `make parity` builds).

For every graph JSON in DIR (written by the project from its own
FaceDancer spec), builds the model with tensorflow 2.14 + tensorflow-addons,
randomises every weight (norm gammas/betas, biases, moving statistics),
saves it as a full-model .h5 and the fixed inputs / Keras outputs as .npz.
The narrow graphs in DIR/fixture (and a narrow ArcFace built here) get the same
treatment there: the small fixture that tests/test_keras_parity_fixture.py checks
in CI without TensorFlow (`tools/parity_torch.py pack` commits it).

    python tools/parity_keras.py DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_addons as tfa
from keras.src.applications import resnet


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


CUSTOM = {
    "AdaIN": AdaIN,
    "AdaptiveAttention": AdaptiveAttention,
    "Addons>InstanceNormalization": tfa.layers.InstanceNormalization,
}


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
    backbone = tf.keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(112, 112, 3)
    )
    x = tf.keras.layers.BatchNormalization()(backbone(image))
    x = tf.keras.layers.Dropout(0.4)(x)
    x = tf.keras.layers.Dense(512)(tf.keras.layers.Flatten()(x))
    return tf.keras.Model(image, tf.keras.layers.BatchNormalization()(x), name="arcface_res50")


class ConvUnit(tf.keras.layers.Layer):
    """RetinaFace's Conv (no bias) -> BN (momentum 0.9, eps 1e-5) -> activation,
    re-implemented from the reference (section 3), not copied."""

    def __init__(self, filters: int, kernel: int, act: str | None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.conv = tf.keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False)
        self.bn = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
        self.act = {
            "relu": tf.keras.layers.ReLU(),
            "leaky": tf.keras.layers.LeakyReLU(0.1),
            None: None,
        }[act]

    def call(self, x):  # type: ignore[no-untyped-def]
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class FPN(tf.keras.layers.Layer):
    def __init__(self, out_ch: int, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.out_ch, act = out_ch, "relu" if out_ch > 64 else "leaky"
        self.output1 = ConvUnit(out_ch, 1, act)
        self.output2 = ConvUnit(out_ch, 1, act)
        self.output3 = ConvUnit(out_ch, 1, act)
        self.merge1 = ConvUnit(out_ch, 3, act)
        self.merge2 = ConvUnit(out_ch, 3, act)

    def call(self, x):  # type: ignore[no-untyped-def]
        o1, o2, o3 = self.output1(x[0]), self.output2(x[1]), self.output3(x[2])
        o2 = self.merge2(o2 + tf.image.resize(o3, tf.shape(o2)[1:3], method="nearest"))
        o1 = self.merge1(o1 + tf.image.resize(o2, tf.shape(o1)[1:3], method="nearest"))
        return o1, o2, o3

    def get_config(self):  # type: ignore[no-untyped-def]
        return {**super().get_config(), "out_ch": self.out_ch}


class SSH(tf.keras.layers.Layer):
    def __init__(self, out_ch: int, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.out_ch, act = out_ch, "relu" if out_ch > 64 else "leaky"
        self.conv_3x3 = ConvUnit(out_ch // 2, 3, None)
        self.conv_5x5_1 = ConvUnit(out_ch // 4, 3, act)
        self.conv_5x5_2 = ConvUnit(out_ch // 4, 3, None)
        self.conv_7x7_2 = ConvUnit(out_ch // 4, 3, act)
        self.conv_7x7_3 = ConvUnit(out_ch // 4, 3, None)

    def call(self, x):  # type: ignore[no-untyped-def]
        mid = self.conv_5x5_1(x)
        wide = self.conv_7x7_3(self.conv_7x7_2(mid))
        return tf.nn.relu(tf.concat([self.conv_3x3(x), self.conv_5x5_2(mid), wide], axis=3))

    def get_config(self):  # type: ignore[no-untyped-def]
        return {**super().get_config(), "out_ch": self.out_ch}


class Head(tf.keras.layers.Layer):
    """A 1x1 conv with bias, reshaped to (N, H*W*anchors, k)."""

    def __init__(self, k: int, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.k, self.conv = k, tf.keras.layers.Conv2D(2 * k, 1)

    def call(self, x):  # type: ignore[no-untyped-def]
        return tf.reshape(self.conv(x), [tf.shape(x)[0], -1, self.k])

    def get_config(self):  # type: ignore[no-untyped-def]
        return {**super().get_config(), "k": self.k}


def retinaface() -> tuple[tf.keras.Model, tf.keras.Model]:
    """RetinaFace-Res50 as reference section 3 describes the released graph: the
    Caffe preprocessing ops, a nested ResNet50 v1 with outputs C3..C5, FPN, SSH x3,
    heads with the file's names, softmax, and an NMS node. Returns the full model
    and one giving the raw heads (what the torch module's forward returns)."""
    image = tf.keras.Input([None, None, 3], name="input_image")
    resnet = tf.keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    features = ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    extractor = tf.keras.Model(
        resnet.input, [resnet.get_layer(n).output for n in features], name="ResNet50_extrator"
    )
    levels = FPN(256, name="FPN")(extractor(tf.keras.applications.resnet.preprocess_input(image)))
    levels = [SSH(256, name=f"SSH_{i}")(f) for i, f in enumerate(levels)]
    names = {
        4: ["bbox_head", "bbox_head_1", "bbox_head_2"],
        10: [f"LandmarkHead_{i}" for i in range(3)],
        2: [f"ClassHead_{i}" for i in range(3)],
    }
    boxes, landmarks, classes = (
        tf.concat([Head(k, name=n)(f) for n, f in zip(names[k], levels, strict=True)], axis=1)
        for k in (4, 10, 2)
    )
    classes = tf.keras.layers.Softmax(axis=-1)(classes)
    keep = tf.image.non_max_suppression(
        boxes=boxes[0],
        scores=classes[0, :, 1],
        max_output_size=tf.shape(boxes)[1],
        iou_threshold=0.4,
        score_threshold=0.02,
    )
    rows = tf.concat([boxes[0], landmarks[0], classes[0]], axis=1)
    full = tf.keras.Model(image, tf.gather(rows, keep), name="RetinaFaceModel")
    return full, tf.keras.Model(image, [boxes, landmarks, classes])


def save_retinaface(folder: Path, rng: np.random.Generator) -> None:
    full, heads = retinaface()
    randomise(full, rng)
    image = rng.uniform(0, 255, (1, 250, 330, 3)).astype(np.float32)  # not a multiple of 32
    # Random weights give deltas of ±250 on a 0..255 image; a trained file's are O(1)
    # (variance-normalised). Scale the box and landmark heads so the comparison is
    # on the magnitudes the real file produces (float32 rounding scales with them).
    for index, prefix in ((0, "bbox_head"), (1, "LandmarkHead")):
        scale = np.abs(heads.predict(image, verbose=0)[index]).max()
        for layer in (layer for layer in full.layers if layer.name.startswith(prefix)):
            for variable in layer.weights:
                variable.assign(variable / scale)
    full.save(folder / "retinaface_res50.h5")
    outputs = heads.predict(image, verbose=0)
    np.savez(
        folder / "retinaface_res50.npz", image, **{f"output_{i}": a for i, a in enumerate(outputs)}
    )
    print(f"retinaface_res50: {full.count_params():,} parameters, saved")


def save(model: tf.keras.Model, stem: Path, rng: np.random.Generator, low: float) -> None:
    randomise(model, rng)
    model.save(stem.with_suffix(".h5"))
    inputs = [
        rng.uniform(low, 1, (2, *shape[1:])).astype(np.float32)
        for shape in (tuple(t.shape) for t in model.inputs)
    ]
    outputs = model.predict(inputs, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    named = {f"output_{index}": array for index, array in enumerate(outputs)}
    np.savez(stem.with_suffix(".npz"), *inputs, **named)
    print(f"{stem.stem}: {model.count_params():,} parameters, saved")


def arcface_narrow() -> tf.keras.Model:
    """`arcface_candidate` narrowed to commit: 112x112, the keras.applications blocks
    themselves (`resnet.stack1`, the code ResNet50 runs) on stages of widths 4, 8, 6, 4
    (2 blocks in conv2: an identity shortcut too), the stem as ResNet() writes it but
    4 wide (ResNet() fixes it at 64), and a 16-wide embedding: 10,216 parameters."""
    image = tf.keras.Input((112, 112, 3))
    inner = tf.keras.Input((112, 112, 3))
    x = tf.keras.layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(inner)
    x = tf.keras.layers.Conv2D(4, 7, strides=2, name="conv1_conv")(x)
    x = tf.keras.layers.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = tf.keras.layers.Activation("relu", name="conv1_relu")(x)
    x = tf.keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
    x = tf.keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    resnet.layers = tf.keras.layers  # what ResNet() sets before it runs the blocks
    x = resnet.stack1(x, 4, 2, stride1=1, name="conv2")
    for stage, width in ((3, 8), (4, 6), (5, 4)):
        x = resnet.stack1(x, width, 1, name=f"conv{stage}")
    backbone = tf.keras.Model(inner, x, name="resnet50")
    x = tf.keras.layers.BatchNormalization()(backbone(image))
    x = tf.keras.layers.Dropout(0.4)(x)
    x = tf.keras.layers.Dense(16)(tf.keras.layers.Flatten()(x))
    return tf.keras.Model(image, tf.keras.layers.BatchNormalization()(x), name="arcface_res50")


def save_fixture(
    model: tf.keras.Model,
    stem: Path,
    rng: np.random.Generator,
    batch: int,
    scale: float,
    offset: float,
) -> None:
    """Like `save`, for the committed fixture: images on 256 levels, `levels * scale
    + offset` with a power-of-two scale (exact in float32, zero low mantissa bytes:
    the compressed .npz holds 1.5 bytes a value instead of 4)."""
    randomise(model, rng)
    model.save(stem.with_suffix(".h5"))
    inputs = []
    for shape in (tuple(t.shape) for t in model.inputs):
        if len(shape) == 4:
            levels = rng.integers(0, 256, (batch, *shape[1:]))
            inputs.append((levels * scale + offset).astype(np.float32))
        else:
            inputs.append(rng.uniform(-1, 1, (batch, *shape[1:])).astype(np.float32))
    outputs = model.predict(inputs, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    named = {f"output_{index}": array for index, array in enumerate(outputs)}
    np.savez_compressed(stem.with_suffix(".npz"), *inputs, **named)
    print(f"fixture/{stem.stem}: {model.count_params():,} parameters, saved")


def main(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for spec in sorted(folder.glob("*.json")):
        model = tf.keras.models.model_from_json(spec.read_text(), custom_objects=CUSTOM)
        save(model, spec.with_suffix(""), rng, low=-1.0)
    save(arcface_candidate(), folder / "arcface_candidate", rng, low=0.0)  # RGB in [0, 1]
    save_retinaface(folder, rng)
    save_fixtures(folder / "fixture")


def save_fixtures(fixture: Path) -> None:
    """The committed fixture's graphs. Its own seed, so its draws do not shift the
    full-size graphs', and a fresh session, so Keras' automatic layer names are
    those of a file saved alone (the released files' head names)."""
    tf.keras.backend.clear_session()
    rng = np.random.default_rng(14)
    for spec in sorted(fixture.glob("*.json")):
        model = tf.keras.models.model_from_json(spec.read_text(), custom_objects=CUSTOM)
        # Two images: a norm that mixed the batch (batch norm for instance norm) shows.
        save_fixture(model, spec.with_suffix(""), rng, batch=2, scale=2**-7, offset=-1.0)
    # One 112x112 image (57 KB): ArcFace's norms are inference BNs, per sample anyway.
    save_fixture(arcface_narrow(), fixture / "arcface", rng, batch=1, scale=2**-8, offset=0.0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
