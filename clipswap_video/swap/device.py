"""Device and precision choice for the neural swappers (one place, so every
backend fails the same way on a bad `swap.device` / `swap.precision`)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator

import torch

from clipswap_video.devices import concrete_device, parse_device
from clipswap_video.errors import ConfigValueError

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt() parameters (malloc.h)
_KEEP_FREED = 1 << 30  # bytes: above any activation of a batch of 256 px faces


def resolve_device(name: str, key: str = "swap.device") -> torch.device:
    """`auto` -> CUDA when torch has it, else the CPU; `cuda[:N]` must exist.
    `key` names the setting in the error line."""
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = concrete_device(parse_device(name, key), cuda_count, key=key, runtime="torch")
    return torch.device(str(device))


def check_precision(precision: str, device: torch.device, key: str = "swap.precision") -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigValueError(f"{key} = fp16 needs a CUDA device; use bf16 or fp32")


def use_ieee_fp32() -> None:
    """Makes fp32 convolutions and matrix products on CUDA real fp32 (process-wide).

    cuDNN's convolutions default to TF32 on Ampere and later (10 mantissa
    bits): `precision = "fp32"` would then differ from the CPU by about 1e-3
    and be no more exact than bf16 asks for less. Faster modes are fp16/bf16."""
    # The flags every torch reads (torch 2.9's per-operator `fp32_precision`
    # refuses to be mixed with them, and libraries still read these).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Mixed precision for fp16/bf16 (weights stay fp32); nothing for fp32."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


@functools.cache
def keep_freed_host_memory() -> bool:
    """Lets glibc keep large freed blocks in the heap for the next network call
    (process-wide, once; False where the C library has no mallopt).

    By default glibc hands every block over its mmap threshold (32 MiB at most)
    back to the kernel when it is freed, so each forward pass on the CPU
    page-faults its activations in again. Kept, they are reused: the calls run
    faster for a somewhat higher peak memory (the freed blocks are kept, not
    returned). Figures: docs/benchmarks.md."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_FREED) and mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED))


__all__ = [
    "autocast",
    "check_precision",
    "keep_freed_host_memory",
    "resolve_device",
    "use_ieee_fp32",
]
