"""RetinaFace-Res50 in torch (Deng et al., "RetinaFace: Single-stage Dense Face
Localisation in the Wild", CVPR 2020), as the TF2 port that FaceDancer's and
ClipSwap's RetinaFace-Res50.h5 was saved from (docs/models.md,
section 3).

Keras ResNet50 v1 (C3, C4, C5) -> FPN -> three SSH context modules -> 1x1
heads of 2 anchors per cell (box 4, landmarks 10, face/background 2). The
graph's own preprocessing (RGB -> BGR, minus the Caffe means) runs in
`forward`; its ~200 post-processing TFOpLambda nodes (priors, decode, NMS) are
models/retinaface_post.py, not interpreted. `load_retinaface` fills it by name
from the .h5; RESNET50_SPEC is the released file's shape, so a network of its
size with random weights needs no file (for timing, as the GPU check does).

    model = load_retinaface("weights/RetinaFace-Res50.h5")
    model = RetinaFace(RESNET50_SPEC).to("cuda").eval()  # random weights
    [found] = model.detect(image_rgb_nchw, min_score=0.5)   # NumPy, normalised to [0, 1]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clipswap_video.errors import CorruptWeightsError
from clipswap_video.models.convert import read_converted
from clipswap_video.models.keras_h5 import LayerWeights, read_keras_h5
from clipswap_video.models.resnet import ResNet50, load_keras_weights
from clipswap_video.models.retinaface_post import Detections, select_detections

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
"""keras.applications' 'caffe' preprocessing: ImageNet means, BGR order."""


@dataclass(frozen=True)
class RetinaFaceSpec:
    """The shape of a RetinaFace graph; the defaults are the released file's."""

    blocks: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    features: tuple[str, ...] = ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    """The backbone outputs the FPN takes, stride 8, 16, 32."""
    out_channels: int = 256
    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)
    mean_bgr: tuple[float, ...] = CAFFE_MEAN_BGR
    nms_iou: float = 0.4
    score_threshold: float = 0.02
    """The file's own: its NMS node's score threshold (the TF code's default when absent)."""

    @property
    def anchors(self) -> int:
        return len(self.min_sizes[0])


RESNET50_SPEC = RetinaFaceSpec()
"""RetinaFace-Res50.h5's shape: `RetinaFace(RESNET50_SPEC)` is its network, random."""


class ConvUnit(nn.Module):
    """Conv (no bias, 'same') -> BN (eps 1e-5) -> ReLU, LeakyReLU(0.1) or nothing."""

    def __init__(
        self, *, dim_in: int, dim_out: int, kernel: int, act: str | None, dd: dict[str, Any]
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, kernel, padding=kernel // 2, bias=False, **dd)
        self.bn = nn.BatchNorm2d(dim_out, eps=1e-5, momentum=0.1, **dd)  # Keras momentum 0.9
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if self.act == "relu":
            return F.relu(x)
        return F.leaky_relu(x, 0.1) if self.act == "leaky" else x


def _act(dim: int) -> str:
    # The port's rule: narrow modules (<= 64 channels) use LeakyReLU(0.1).
    return "relu" if dim > 64 else "leaky"


class FPN(nn.Module):
    """Lateral 1x1 units per level, top-down nearest upsampling, 3x3 merges.

    Units are registered in the Keras layer's construction order (output1..3,
    merge1, merge2): the order of its 25 arrays.
    """

    def __init__(self, *, dims_in: Sequence[int], dim: int, dd: dict[str, Any]) -> None:
        super().__init__()
        act = _act(dim)
        self.output1, self.output2, self.output3 = (
            ConvUnit(dim_in=d, dim_out=dim, kernel=1, act=act, dd=dd) for d in dims_in
        )
        self.merge1 = ConvUnit(dim_in=dim, dim_out=dim, kernel=3, act=act, dd=dd)
        self.merge2 = ConvUnit(dim_in=dim, dim_out=dim, kernel=3, act=act, dd=dd)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor) -> list[torch.Tensor]:
        p3, p4, p5 = self.output1(c3), self.output2(c4), self.output3(c5)
        # TF2 nearest resize uses half-pixel centres: 'nearest-exact', to the explicit size.
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[2:], mode="nearest-exact"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[2:], mode="nearest-exact"))
        return [p3, p4, p5]


class SSH(nn.Module):
    """Najibi et al.'s context module: 3x3, 5x5 and 7x7 receptive fields from
    stacked 3x3 units (half, quarter, quarter of the channels), concatenated."""

    def __init__(self, *, dim: int, dd: dict[str, Any]) -> None:
        super().__init__()
        act, quarter = _act(dim), dim // 4
        self.conv_3x3 = ConvUnit(dim_in=dim, dim_out=dim // 2, kernel=3, act=None, dd=dd)
        self.conv_5x5_1 = ConvUnit(dim_in=dim, dim_out=quarter, kernel=3, act=act, dd=dd)
        self.conv_5x5_2 = ConvUnit(dim_in=quarter, dim_out=quarter, kernel=3, act=None, dd=dd)
        self.conv_7x7_2 = ConvUnit(dim_in=quarter, dim_out=quarter, kernel=3, act=act, dd=dd)
        self.conv_7x7_3 = ConvUnit(dim_in=quarter, dim_out=quarter, kernel=3, act=None, dd=dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.conv_5x5_1(x)
        wide = self.conv_7x7_3(self.conv_7x7_2(mid))
        return F.relu(torch.cat([self.conv_3x3(x), self.conv_5x5_2(mid), wide], dim=1))


class RetinaFace(nn.Module):
    """The detector network; `forward` gives the raw head outputs, `detect` faces."""

    def __init__(
        self,
        spec: RetinaFaceSpec = RESNET50_SPEC,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd: dict[str, Any] = {"device": device, "dtype": dtype}
        self.spec = spec
        self.backbone = ResNet50(blocks=spec.blocks, widths=spec.widths, **dd)
        dims_in = [self.backbone.out_channels[name] for name in spec.features]
        dim, anchors = spec.out_channels, spec.anchors
        self.fpn = FPN(dims_in=dims_in, dim=dim, dd=dd)
        self.ssh = nn.ModuleList(SSH(dim=dim, dd=dd) for _ in spec.steps)
        self.bbox_head, self.landmark_head, self.class_head = (
            nn.ModuleList(nn.Conv2d(dim, anchors * k, 1, **dd) for _ in spec.steps)
            for k in (4, 10, 2)
        )
        mean = torch.tensor(spec.mean_bgr, device=device, dtype=dtype or torch.float32)
        self.mean_bgr: torch.Tensor
        self.register_buffer("mean_bgr", mean.view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) RGB in 0..255 -> box deltas (N, P, 4), landmark deltas
        (N, P, 10), class probabilities (N, P, 2); P = anchors of all levels,
        cell-major (row-major cells) and anchor-minor, as `priors` lists them."""
        x = image.flip(1) - self.mean_bgr  # RGB -> BGR, minus the Caffe means
        features = self.backbone(x, self.spec.features)
        levels = [ssh(f) for ssh, f in zip(self.ssh, self.fpn(*features.values()), strict=True)]
        boxes, landmarks, classes = (
            torch.cat([_rows(conv(f), k) for conv, f in zip(head, levels, strict=True)], dim=1)
            for head, k in ((self.bbox_head, 4), (self.landmark_head, 10), (self.class_head, 2))
        )
        return boxes, landmarks, F.softmax(classes, dim=-1)

    @property
    def stored_min_score(self) -> float:
        """The score threshold the weight file keeps faces above."""
        return self.spec.score_threshold

    @torch.inference_mode()
    def detect(self, images: torch.Tensor, min_score: float) -> list[Detections]:
        """Faces in each of the (N, 3, H, W) RGB 0..255 images, in one forward
        pass, with score >= `min_score`, after NMS; one copy to the host."""
        boxes, landmarks, classes = self(images)
        size = (images.shape[2], images.shape[3])
        return select_detections(boxes, landmarks, classes, size, self.spec, min_score)


def _rows(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, A*k, H, W) -> (N, H*W*A, k): Keras' NHWC reshape (cell-major, anchor-minor)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, k)


# Loading RetinaFace-Res50.h5 --------------------------------------------------

HEAD_NAMES = {
    "bbox_head": ("bbox_head", "bbox_head_1", "bbox_head_2"),
    "landmark_head": ("LandmarkHead_0", "LandmarkHead_1", "LandmarkHead_2"),
    "class_head": ("ClassHead_0", "ClassHead_1", "ClassHead_2"),
}
"""The head layers of the released file, per level (stride 8, 16, 32)."""


@dataclass(frozen=True)
class _Parts:
    """Names of the weighted layers of a RetinaFace graph."""

    backbone: str
    fpn: str
    ssh: list[str]
    """By level (the FPN output each one takes)."""


def load_retinaface(path: Path | str, *, device: torch.device | str | None = None) -> RetinaFace:
    """RetinaFace-Res50.h5 (or a converted .safetensors of it) as a RetinaFace in eval mode.

    The shape (backbone blocks and widths, FPN width, anchors) is read from the
    arrays, the NMS IoU and score threshold and the means from the graph's post-
    and preprocessing nodes (defaults 0.4, 0.02 and the Caffe means).

    Raises:
        InputNotFoundError: no such file.
        CorruptWeightsError: not a RetinaFace graph, or arrays missing or misshapen.
    """
    path = Path(path)
    config, weights = _read(path)
    layers = {layer["name"]: layer for layer in config.get("config", {}).get("layers", [])}
    parts = _parts(layers, path)
    model = RetinaFace(_spec(layers, weights, parts, path))
    _fill(model, weights, parts, path)
    return model.to(device).eval()


def _read(path: Path) -> tuple[dict[str, Any], LayerWeights]:
    if path.suffix.lower() == ".safetensors":  # discovery matches names in any case
        config, weights = read_converted(path)
        return dict(config), weights
    keras = read_keras_h5(path)
    return keras.config, keras.weights


def _parts(layers: dict[str, dict[str, Any]], path: Path) -> _Parts:
    def of_class(*names: str) -> list[str]:
        return [name for name, layer in layers.items() if layer["class_name"] in names]

    backbone, fpn, ssh = of_class("Functional", "Model"), of_class("FPN"), of_class("SSH")
    if len(backbone) != 1 or len(fpn) != 1 or len(ssh) != 3:
        raise CorruptWeightsError(
            f"{path} is not a RetinaFace graph (found {len(backbone)} nested model(s), "
            f"{len(fpn)} FPN and {len(ssh)} SSH layers; expected 1, 1 and 3): "
            "use the RetinaFace-Res50.h5 of FaceDancer / ClipSwap"
        )
    ssh.sort(key=lambda name: _source(layers[name])[1])  # the FPN output it takes
    for names in HEAD_NAMES.values():
        for name, level in zip(names, ssh, strict=True):
            if name not in layers or _source(layers[name])[0] != level:
                raise CorruptWeightsError(f"{path}: RetinaFace graph lacks head {name} on {level}")
    return _Parts(backbone[0], fpn[0], ssh)


def _source(layer: dict[str, Any]) -> tuple[str, int]:
    """(layer, tensor index) of a single-input layer's input."""
    entry = layer["inbound_nodes"][0][0]
    return str(entry[0]), int(entry[2])


def _spec(
    layers: dict[str, dict[str, Any]], weights: LayerWeights, parts: _Parts, path: Path
) -> RetinaFaceSpec:
    nested = layers[parts.backbone]["config"]
    names = [layer["name"] for layer in nested["layers"]]
    stages = range(2, 6)
    blocks = tuple(
        sum(re.fullmatch(rf"conv{s}_block\d+_1_conv", n) is not None for n in names) for s in stages
    )
    widths = tuple(
        _shape(weights, parts.backbone, f"conv{s}_block1_1_conv/kernel", path)[-1] for s in stages
    )
    anchors = _shape(weights, "bbox_head", "kernel", path)[-1] // 4
    if anchors != 2:
        raise CorruptWeightsError(f"{path}: {anchors} anchors per cell; RetinaFace-Res50 has 2")
    features = tuple(str(entry[0]) for entry in nested["output_layers"])
    if len(features) != 3 or not all(re.fullmatch(r"conv[3-5]_block\d+_out", f) for f in features):
        raise CorruptWeightsError(f"{path}: backbone outputs {features}, not ResNet C3, C4, C5")
    iou, score, mean = _graph_constants(layers.values())
    return RetinaFaceSpec(
        blocks=blocks,
        widths=widths,
        features=features,
        out_channels=_shape(weights, parts.fpn, "kernel", path)[-1],
        mean_bgr=mean,
        nms_iou=iou,
        score_threshold=score,
    )


def _shape(weights: LayerWeights, layer: str, part: str, path: Path) -> tuple[int, ...]:
    """The shape of `layer`'s first array whose name contains `part`."""
    for name, array in weights.get(layer, []):
        if part in name:
            return tuple(array.shape)
    raise CorruptWeightsError(f"{path}: layer {layer!r} has no {part} array")


def _graph_constants(layers: Iterable[dict[str, Any]]) -> tuple[float, float, tuple[float, ...]]:
    """NMS IoU and score threshold (image.non_max_suppression) and means
    (nn.bias_add) from the graph."""
    iou, score = RetinaFaceSpec.nms_iou, RetinaFaceSpec.score_threshold
    mean = tuple(CAFFE_MEAN_BGR)
    for layer in layers:
        node = layer["inbound_nodes"][0] if layer["inbound_nodes"] else []
        kwargs = node[3] if layer["class_name"] == "TFOpLambda" and len(node) == 4 else {}
        function = layer["config"].get("function")
        if function == "image.non_max_suppression":
            iou = float(kwargs.get("iou_threshold", iou))
            score = float(kwargs.get("score_threshold", score))
        if function == "nn.bias_add" and isinstance(kwargs.get("bias"), list):
            mean = tuple(-float(value) for value in kwargs["bias"])
    return iou, score, mean


def _fill(model: RetinaFace, weights: LayerWeights, parts: _Parts, path: Path) -> None:
    backbone = weights.get(parts.backbone, [])
    load_keras_weights(model.backbone.keras_layers(), backbone, owner=f"{path} ({parts.backbone})")
    _fill_units(model.fpn, weights.get(parts.fpn, []), f"{path} ({parts.fpn})")
    for ssh, name in zip(model.ssh, parts.ssh, strict=True):
        _fill_units(ssh, weights.get(name, []), f"{path} ({name})")
    for attribute, names in HEAD_NAMES.items():
        for conv, name in zip(getattr(model, attribute), names, strict=True):
            arrays = [(f"{name}/{_leaf(full)}", array) for full, array in weights.get(name, [])]
            load_keras_weights({name: conv}, arrays, owner=f"{path} ({name})")


def _fill_units(module: nn.Module, arrays: list[tuple[str, np.ndarray]], owner: str) -> None:
    """A custom FPN / SSH layer's 25 arrays, by position: kernel, gamma, beta of
    each ConvUnit in construction order, then the moving statistics of each."""
    units = [(name, unit) for name, unit in module.named_children() if isinstance(unit, ConvUnit)]
    expected = ["kernel", "gamma", "beta"] * 5 + ["moving_mean", "moving_variance"] * 5
    if [_leaf(name) for name, _ in arrays] != expected:
        raise CorruptWeightsError(
            f"{owner}: {len(arrays)} arrays, expected {len(expected)} "
            "(kernel, gamma, beta of 5 ConvUnits, then their moving statistics)"
        )
    trainable, statistics = arrays[: 3 * len(units)], arrays[3 * len(units) :]
    named: list[tuple[str, np.ndarray]] = []
    targets: dict[str, nn.Module] = {}
    for index, (unit, conv_unit) in enumerate(units):
        targets |= {f"{unit}.conv": conv_unit.conv, f"{unit}.bn": conv_unit.bn}
        own = trainable[3 * index : 3 * index + 3] + statistics[2 * index : 2 * index + 2]
        named += [
            (f"{unit}.{'conv' if i == 0 else 'bn'}/{_leaf(n)}", a) for i, (n, a) in enumerate(own)
        ]
    load_keras_weights(targets, named, owner=owner)


def _leaf(full_name: str) -> str:
    return full_name.split("/")[-1].split(":")[0]


__all__ = [
    "CAFFE_MEAN_BGR",
    "HEAD_NAMES",
    "RESNET50_SPEC",
    "RetinaFace",
    "RetinaFaceSpec",
    "load_retinaface",
]
