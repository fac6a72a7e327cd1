"""BiSeNet face parser that takes the widely shared `79999_iter.pth` state dict as is.

The layout (attribute names, channel widths, which convolutions have a bias, where
BatchNorm sits, how the pooled context is added, the nearest and bilinear resizes)
was read from `model.py` and `resnet.py` of the GitHub repository
zllrunning/face-parsing.PyTorch; the class order comes from its
`prepropess_data.py`. This is an independent implementation of that layout, not a
copy. Its checkpoint was trained on CelebAMask-HQ faces resized to 512 x 512
(`train.py` draws 448 px random crops from those after a random rescale) and its
`test.py` parses 512 x 512 images: feed 512 px face crops for results like theirs.

Only the inference path is built: the two auxiliary heads (`conv_out16`,
`conv_out32`) that supervised training exist so that the file loads with
`strict=True`, but `forward` never runs them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

LABELS: tuple[str, ...] = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)
"""Class names by logit index: 0 is everything unlabelled, 1.. follow the list the
original's `prepropess_data.py` numbers the CelebAMask-HQ part masks with (not the
order CelebAMask-HQ's own scripts use)."""

_CLASSIFIER = "conv_out.conv_out.weight"
"""The main head's final 1 x 1 convolution: its out channels are the class count."""

_DATA_PARALLEL = "module."


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    # A window over the whole map, as the original pools (a mean over the axes
    # could round differently in the last bit).
    return F.avg_pool2d(x, kernel_size=(int(x.shape[2]), int(x.shape[3])))


class _ConvNormReLU(nn.Module):
    """Bias-free convolution, BatchNorm, ReLU: the `.conv` / `.bn` pair of the file."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _ResidualBlock(nn.Module):
    """ResNet basic block; the projection shortcut only where width or stride change."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(branch + shortcut)


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    # Two blocks per stage (ResNet-18); only the first one changes size.
    return nn.Sequential(_ResidualBlock(cin, cout, stride), _ResidualBlock(cout, cout, 1))


class _Backbone(nn.Module):
    """ResNet-18 without its classifier; gives the 1/8, 1/16 and 1/32 scale maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)
        eighth = self.layer2(self.layer1(x))
        sixteenth = self.layer3(eighth)
        return eighth, sixteenth, self.layer4(sixteenth)


class _AttentionRefinement(nn.Module):
    """3 x 3 conv, then each channel scaled by a gate computed from its global mean."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _ConvNormReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        gate = torch.sigmoid(self.bn_atten(self.conv_atten(_global_pool(features))))
        return features * gate


class _ContextPath(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resnet = _Backbone()
        self.arm16 = _AttentionRefinement(256, 128)
        self.arm32 = _AttentionRefinement(512, 128)
        self.conv_head32 = _ConvNormReLU(128, 128)
        self.conv_head16 = _ConvNormReLU(128, 128)
        self.conv_avg = _ConvNormReLU(512, 128, kernel=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's 1/8 map (it stands in for BiSeNet's spatial path, which the
        original dropped) and the refined context at 1/8, both 128 channels."""
        eighth, sixteenth, thirty_second = self.resnet(x)
        # The pooled whole-image context is 1 x 1: broadcasting it over the 1/32 map
        # is what the original's nearest resize to that size does.
        context = self.conv_avg(_global_pool(thirty_second))
        coarse = self.arm32(thirty_second) + context
        # Nearest (not nearest-exact) resizes to the finer map's size, as trained.
        coarse = self.conv_head32(F.interpolate(coarse, size=sixteenth.shape[2:], mode="nearest"))
        fine = self.arm16(sixteenth) + coarse
        fine = self.conv_head16(F.interpolate(fine, size=eighth.shape[2:], mode="nearest"))
        return eighth, fine


class _FeatureFusion(nn.Module):
    """Concatenate (spatial first), 1 x 1 conv, then a squeeze-excite style gate
    applied as a residual: out = f * gate + f."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.convblk = _ConvNormReLU(cin, cout, kernel=1)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        fused = self.convblk(torch.cat((spatial, context), dim=1))
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_pool(fused)))))
        return fused * gate + fused


class _Head(nn.Module):
    """3 x 3 conv-BN-ReLU, then a bias-free 1 x 1 classifier."""

    def __init__(self, cin: int, mid: int, classes: int) -> None:
        super().__init__()
        self.conv = _ConvNormReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Face parser: ImageNet-normalised RGB (N, 3, H, W) -> logits (N, classes, H, W).

    Logits are computed at 1/8 scale and resized bilinearly (corners aligned) to the
    input size; `LABELS` names the 19 classes of the released checkpoint.
    """

    def __init__(self, classes: int = 19) -> None:
        super().__init__()
        self.cp = _ContextPath()
        self.ffm = _FeatureFusion(256, 256)
        self.conv_out = _Head(256, 256, classes)
        # Training-time deep supervision; kept only so the file's keys all have a home.
        self.conv_out16 = _Head(128, 64, classes)
        self.conv_out32 = _Head(128, 64, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        spatial, context = self.cp(images)
        logits = self.conv_out(self.ffm(spatial, context))
        size = (int(images.shape[2]), int(images.shape[3]))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)


def _describe(names: list[str]) -> str:
    # One short line: a few names and a count, never a full key dump.
    shown = ", ".join(sorted(names)[:3])
    return f"{shown} (+{len(names) - 3} more)" if len(names) > 3 else shown


def load_bisenet(state: Mapping[str, torch.Tensor]) -> BiSeNet:
    """A BiSeNet with `state` loaded strictly, in eval mode; the class count comes
    from the main classifier. Keys saved from a DataParallel (`module.` prefixed)
    are accepted. ValueError (one line) when `state` is not this architecture."""
    entries = dict(state)
    if entries and all(key.startswith(_DATA_PARALLEL) for key in entries):
        entries = {key[len(_DATA_PARALLEL) :]: value for key, value in entries.items()}
    classifier = entries.get(_CLASSIFIER)
    if not isinstance(classifier, torch.Tensor) or classifier.ndim != 4:
        raise ValueError(f"not a BiSeNet face-parsing state dict: no 4-D {_CLASSIFIER}")
    model = BiSeNet(classes=int(classifier.shape[0]))
    expected = model.state_dict()
    # BatchNorm fills in a missing `num_batches_tracked` (files from before torch 0.4.1
    # lack it); it is a counter that inference never reads.
    missing = [
        key for key in expected if key not in entries and not key.endswith("num_batches_tracked")
    ]
    unexpected = [key for key in entries if key not in expected]
    if missing or unexpected:
        parts = [f"missing {_describe(missing)}"] if missing else []
        parts += [f"unexpected {_describe(unexpected)}"] if unexpected else []
        raise ValueError(f"not a BiSeNet face-parsing state dict: {'; '.join(parts)}")
    for key, value in entries.items():
        want = tuple(expected[key].shape)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"BiSeNet state dict: {key} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != want:
            raise ValueError(
                f"BiSeNet state dict: {key} has shape {tuple(value.shape)}, expected {want}"
            )
    try:
        model.load_state_dict(entries, strict=True)
    except RuntimeError as error:  # anything the checks above did not foresee
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"BiSeNet state dict does not load: {first[:200]}") from None
    return model.eval()


__all__ = ["LABELS", "BiSeNet", "load_bisenet"]
