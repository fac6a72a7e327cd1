"""The BiSeNet face parser (swap/bisenet.py): its state dict has the layout of
zllrunning/face-parsing.PyTorch's `79999_iter.pth` (names and shapes read from that
repository's model.py and resnet.py), it loads strictly from a saved file, and
anything else is refused with one short line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clipswap_video.swap.bisenet import LABELS, BiSeNet, load_bisenet

LAYOUT: tuple[tuple[str, tuple[int, ...]], ...] = (
    # ResNet-18 backbone (resnet.py): a 7x7 stem, 2 basic blocks per stage
    ("cp.resnet.conv1.weight", (64, 3, 7, 7)),
    ("cp.resnet.bn1.running_var", (64,)),
    ("cp.resnet.layer1.0.conv1.weight", (64, 64, 3, 3)),
    ("cp.resnet.layer2.0.downsample.0.weight", (128, 64, 1, 1)),
    ("cp.resnet.layer3.1.bn2.weight", (256,)),
    ("cp.resnet.layer4.0.downsample.1.running_mean", (512,)),
    ("cp.resnet.layer4.1.conv2.weight", (512, 512, 3, 3)),
    # attention refinement on the 1/16 (256 ch) and 1/32 (512 ch) maps, both to 128
    ("cp.arm16.conv.conv.weight", (128, 256, 3, 3)),
    ("cp.arm32.conv.conv.weight", (128, 512, 3, 3)),
    ("cp.arm32.conv_atten.weight", (128, 128, 1, 1)),
    ("cp.arm16.bn_atten.bias", (128,)),
    # context heads and the 1x1 conv on the globally pooled 1/32 map
    ("cp.conv_head32.conv.weight", (128, 128, 3, 3)),
    ("cp.conv_head16.bn.num_batches_tracked", ()),
    ("cp.conv_avg.conv.weight", (128, 512, 1, 1)),
    # feature fusion: 128 + 128 -> 256, gate squeezes to 256 // 4
    ("ffm.convblk.conv.weight", (256, 256, 1, 1)),
    ("ffm.conv1.weight", (64, 256, 1, 1)),
    ("ffm.conv2.weight", (256, 64, 1, 1)),
    # the main head and the two training-time heads
    ("conv_out.conv.conv.weight", (256, 256, 3, 3)),
    ("conv_out.conv_out.weight", (19, 256, 1, 1)),
    ("conv_out16.conv.conv.weight", (64, 128, 3, 3)),
    ("conv_out32.conv_out.weight", (19, 64, 1, 1)),
)

# Counted from model.py / resnet.py: every conv is bias-free (1 key), every BatchNorm
# has 5 (weight, bias, running_mean, running_var, num_batches_tracked).
#   ResNet-18: stem 1 + 5; layer1 2 blocks x (2 conv + 2 BN) = 24; layer2-4 each
#     24 + a 1x1 conv/BN shortcut 6 = 30 -> 90; total 120
#   ARMs: 2 x (conv-BN 6 + conv_atten 1 + bn_atten 5) = 24
#   conv_head32, conv_head16, conv_avg: 3 x 6 = 18            -> cp: 162
#   ffm: convblk 6 + conv1 1 + conv2 1 = 8
#   conv_out, conv_out16, conv_out32: 3 x (conv-BN 6 + conv_out 1) = 21
#   162 + 8 + 21 = 191 (160 parameters/buffers + 31 num_batches_tracked)
KEY_COUNT = 191


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = BiSeNet()
    # Non-default BatchNorm statistics, so eval mode visibly uses them.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("bisenet") / "79999_iter.pth"
    torch.save(model.state_dict(), path)  # the real file is a plain state dict too
    return path


def _load(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(state, dict)
    return state


def test_layout_matches_the_released_checkpoint() -> None:
    state = BiSeNet().state_dict()
    for key, shape in LAYOUT:
        assert key in state, key
        assert tuple(state[key].shape) == shape, key
    assert len(state) == KEY_COUNT
    assert len(LABELS) == 19 and LABELS[0] == "background" and LABELS[18] == "hat"


def test_loads_from_a_file_and_parses(saved: Path) -> None:
    first = load_bisenet(_load(saved))
    second = load_bisenet(_load(saved))
    assert not first.training
    with torch.no_grad():
        assert first(torch.randn(1, 3, 512, 512)).shape == (1, 19, 512, 512)
        images = torch.randn(2, 3, 256, 256)
        out = first(images)
        assert out.shape == (2, 19, 256, 256)
        assert torch.equal(out, second(images))


def test_class_count_comes_from_the_classifier() -> None:
    model = load_bisenet(BiSeNet(classes=5).state_dict())
    assert model.conv_out.conv_out.out_channels == 5
    assert model.conv_out16.conv_out.out_channels == 5


def test_data_parallel_prefix_is_accepted(saved: Path) -> None:
    state = {f"module.{key}": value for key, value in _load(saved).items()}
    model = load_bisenet(state)
    expected = _load(saved)["cp.arm16.conv_atten.weight"]
    assert torch.equal(model.cp.arm16.conv_atten.weight, expected)


def test_missing_batch_counters_are_tolerated(saved: Path) -> None:
    # Files saved before torch 0.4.1 have no num_batches_tracked; inference ignores it.
    state = {k: v for k, v in _load(saved).items() if not k.endswith("num_batches_tracked")}
    load_bisenet(state)


def _refusal(state: dict[str, torch.Tensor]) -> str:
    with pytest.raises(ValueError) as caught:
        load_bisenet(state)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def test_missing_key_is_refused(saved: Path) -> None:
    state = _load(saved)
    del state["cp.arm32.bn_atten.running_var"]
    assert "cp.arm32.bn_atten.running_var" in _refusal(state)


def test_wrong_shape_is_refused(saved: Path) -> None:
    state = _load(saved)
    state["ffm.conv1.weight"] = torch.zeros(32, 256, 1, 1)
    assert "ffm.conv1.weight" in _refusal(state)


def test_unrelated_dict_is_refused() -> None:
    _refusal(torch.nn.Linear(4, 2).state_dict())
    _refusal({})
    # a model with many unexpected keys still gets a short line
    state = BiSeNet().state_dict()
    state.update({f"extra.{index}.weight": torch.zeros(1) for index in range(40)})
    assert "more" in _refusal(state)
