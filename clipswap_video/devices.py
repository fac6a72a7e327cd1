"""The one grammar of device settings, parsed without torch or onnxruntime.

    parse_device("cuda:1", "swap.device")               # Device("cuda", 1)
    concrete_device(device, cuda_count=2, key=..., runtime="torch")
    parse_device_list("cuda*2,cpu", cuda_count=2)       # cuda:0, cuda:1, cpu

`swap.device`, `faces.device`, `run.device` and the bench options take one
device (`auto`, `cpu`, `cuda`, `cuda:N`); `batch --devices` takes a list of
them, one worker each. Whether a CUDA device exists is asked of the runtime that
will use it (torch or onnxruntime), so callers pass its device count in: this
module stays importable, and testable, on a machine without either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from clipswap_video.errors import ConfigValueError

DeviceKind = Literal["auto", "cpu", "cuda"]
GRAMMAR = "auto, cpu, cuda[:N]"
LIST_GRAMMAR = "auto, or a comma list of cpu, cuda[:N], cpu*N, cuda*N"
_KINDS: dict[str, DeviceKind] = {"auto": "auto", "cpu": "cpu", "cuda": "cuda"}


@dataclass(frozen=True)
class Device:
    """A parsed device: `index` is None for `auto`, `cpu` and a bare `cuda`
    (the runtime's current CUDA device)."""

    kind: DeviceKind
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device(text: str, key: str) -> Device:
    """`auto`, `cpu`, `cuda` or `cuda:N`; `key` names the setting in the error line.

    Raises:
        ConfigValueError: any other text.
    """
    device = _parse(text)
    if device is None:
        raise ConfigValueError(f"{key} = {text!r} is not one of: {GRAMMAR}")
    return device


def concrete_device(device: Device, cuda_count: int, *, key: str, runtime: str) -> Device:
    """`device` on a machine where `runtime` sees `cuda_count` CUDA devices:
    `auto` becomes `cuda` when there is one, else `cpu`.

    Raises:
        ConfigValueError: a CUDA device the runtime does not see (a job that
            silently fell back to the CPU would be a slow surprise).
    """
    if device.kind == "auto":
        return Device("cuda" if cuda_count else "cpu")
    if device.kind == "cuda" and (device.index or 0) >= cuda_count:
        raise ConfigValueError(
            f"{key} = {str(device)!r} but {runtime} sees {cuda_count or 'no'} CUDA device(s)"
        )
    return device


def parse_device_list(text: str, cuda_count: int, key: str = "--devices") -> list[Device]:
    """One device per worker: `auto` (every GPU, else one CPU), or a comma list
    of devices, each optionally repeated as `DEVICE*N`; `cuda*N` is the first
    N GPUs (`cuda:0` ... `cuda:N-1`), `cuda:1*2` two workers on GPU 1.

    Raises:
        ConfigValueError: a malformed list, or a GPU that torch does not see.
    """
    if text == "auto":
        return [Device("cuda", index) for index in range(cuda_count)] or [Device("cpu")]
    devices: list[Device] = []
    for part in text.split(","):
        name, star, times = part.strip().partition("*")
        count = 1
        if star:
            count = int(times) if _is_number(times) else 0  # 0: refused below
        device = _parse(name)
        if device is None or device.kind == "auto" or count < 1:
            raise ConfigValueError(f"{key} = {text!r} is not {LIST_GRAMMAR}")
        if device == Device("cuda") and star:
            devices += [Device("cuda", index) for index in range(count)]
        else:
            devices += [device] * count
    for device in devices:
        concrete_device(device, cuda_count, key=key, runtime="torch")
    return devices


def _parse(text: str) -> Device | None:
    kind, colon, index = text.partition(":")
    if not colon and text in _KINDS:
        return Device(_KINDS[text])
    if kind == "cuda" and _is_number(index):
        return Device("cuda", int(index))
    return None


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone takes "²", which int() refuses


__all__ = [
    "GRAMMAR",
    "LIST_GRAMMAR",
    "Device",
    "DeviceKind",
    "concrete_device",
    "parse_device",
    "parse_device_list",
]
