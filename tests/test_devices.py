"""The device grammar shared by every `*.device` setting and `batch --devices`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clipswap_video.devices import Device, concrete_device, parse_device, parse_device_list
from clipswap_video.errors import ConfigValueError


def test_one_device() -> None:
    assert parse_device("auto", "swap.device") == Device("auto")
    assert parse_device("cpu", "swap.device") == Device("cpu")
    assert parse_device("cuda", "swap.device") == Device("cuda")
    assert parse_device("cuda:3", "swap.device") == Device("cuda", 3)
    assert str(Device("cuda", 3)) == "cuda:3" and str(Device("cuda")) == "cuda"
    for bad in ("gpu", "cpu:0", "cuda:", "cuda:x", "cuda:²", "auto:1", " cpu", "CPU", ""):
        with pytest.raises(ConfigValueError) as caught:
            parse_device(bad, "faces.device")
        assert str(caught.value) == f"faces.device = {bad!r} is not one of: auto, cpu, cuda[:N]"


def test_device_on_a_machine() -> None:
    def on(text: str, cuda_count: int) -> str:
        device = parse_device(text, "run.device")
        return str(concrete_device(device, cuda_count, key="run.device", runtime="torch"))

    assert on("auto", 0) == "cpu" and on("auto", 2) == "cuda"
    assert on("cpu", 2) == "cpu" and on("cuda", 1) == "cuda" and on("cuda:1", 2) == "cuda:1"
    with pytest.raises(ConfigValueError, match="^run.device = 'cuda' but torch sees no CUDA"):
        on("cuda", 0)
    with pytest.raises(ConfigValueError, match="'cuda:2' but torch sees 2 CUDA device"):
        on("cuda:2", 2)


def test_device_lists() -> None:
    def names(text: str, cuda_count: int) -> list[str]:
        return [str(device) for device in parse_device_list(text, cuda_count)]

    assert names("auto", 0) == ["cpu"]
    assert names("auto", 2) == ["cuda:0", "cuda:1"]
    assert names("cuda*2, cpu", 2) == ["cuda:0", "cuda:1", "cpu"]
    assert names("cpu*3", 0) == ["cpu"] * 3
    assert names("cuda:1*2,cuda:0", 2) == ["cuda:1", "cuda:1", "cuda:0"]
    for bad in ("tpu:0", "cpu*x", "cpu*0", "cpu*", "auto,cpu", "cpu,,cpu", ""):
        with pytest.raises(ConfigValueError, match=r"^--devices = .* is not auto, or a comma"):
            names(bad, 2)
    with pytest.raises(ConfigValueError, match="'cuda:1' but torch sees 1 CUDA device"):
        names("cuda*2", 1)


def test_importing_it_loads_no_runtime() -> None:
    code = (
        "import sys, clipswap_video.devices; "
        "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
