"""Make ``import torchvision`` work where its compiled ops cannot load.

open_clip imports torchvision (for its PIL transforms and ``FrozenBatchNorm2d``),
and the only torchvision built for torch 2.13 on PyPI, 0.28.0, is the CUDA 13
build (``0.28.0+cu130``). Its ``torchvision/_C.so`` links ``libtorch_cuda.so`` and
``libc10_cuda.so``, which the CPU torch wheel does not have, so
``torch.ops.load_library`` fails with ``OSError`` and torchvision quietly goes on
without its ops. Import then dies in ``torchvision/_meta_registrations.py``,
which registers fake kernels for ``torchvision::nms`` and ``torchvision::qnms``
unconditionally::

    RuntimeError: operator torchvision::nms does not exist

``ensure_torchvision()`` loads the compiled ops exactly as torchvision would and,
only if that fails, defines the ``torchvision::`` forward ops with torch.library
before importing torchvision:

* ``nms``: a pure-torch greedy NMS with the semantics of torchvision's CPU kernel
  (stable descending score order, suppress IoU > threshold, indices int64).
* ``qnms``, ``roi_align``, ``qroi_align``, ``roi_pool``, ``ps_roi_align``,
  ``ps_roi_pool``, ``deform_conv2d``, ``box_iou_rotated``: raise
  NotImplementedError naming the op. Neither open_clip, timm's layers that open_clip
  uses, nor this project calls them; ``torchvision.ops.roi_align`` still works,
  since it takes torchvision's own pure-torch path when the compiled ops are absent.

It then marks torchvision's ops as present (``torchvision.extension._has_ops``),
so ``torchvision.ops.nms`` and ``batched_nms`` reach the fallback instead of
torchvision's "Couldn't load custom C++ ops". Backward ops, autocast and
``torchvision.io``'s compiled image decoders stay unavailable. Where the compiled
ops load (a torchvision build matching torch), this module does nothing else.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["ensure_torchvision", "uses_fallback_ops"]

_UNSUPPORTED_OPS = {
    "qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align": (
        "(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height,"
        " SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor"
    ),
    "qroi_align": (
        "(Tensor input, Tensor rois, float input_scale, int input_zero_point,"
        " float rois_scale, int rois_zero_point, float spatial_scale, int pooled_height,"
        " int pooled_width, int sampling_ratio, bool aligned) -> Tensor"
    ),
    "roi_pool": (
        "(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height,"
        " SymInt pooled_width) -> (Tensor, Tensor)"
    ),
    "ps_roi_align": (
        "(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height,"
        " SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)"
    ),
    "ps_roi_pool": (
        "(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height,"
        " SymInt pooled_width) -> (Tensor, Tensor)"
    ),
    "deform_conv2d": (
        "(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias,"
        " SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h,"
        " SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor"
    ),
    "box_iou_rotated": "(Tensor boxes1, Tensor boxes2) -> Tensor",
}
"""Schemas of torchvision 0.28's other forward ops (csrc/ops/*.cpp)."""

_LOCK = threading.Lock()
_FALLBACK_LIBRARIES: list[torch.library.Library] = []
"""Keeps the fallback registrations alive: dropping a Library unregisters its ops."""


def ensure_torchvision() -> None:
    """Make ``import torchvision`` (and so ``import open_clip``) work; idempotent.

    Call it before the first import of torchvision or open_clip.
    """
    with _LOCK:
        folder = _package_folder()
        if folder is None or _op_exists("nms") or _load_compiled_ops(folder):
            return  # not installed (open_clip's import says so), or ops present
        _FALLBACK_LIBRARIES.append(_register_fallbacks())
        import torchvision.extension

        # Tell torchvision's ops its C++ ops exist, now that the fallbacks are registered.
        torchvision.extension._has_ops = uses_fallback_ops


def uses_fallback_ops() -> bool:
    """Whether this process runs torchvision on the fallbacks of this module."""
    return bool(_FALLBACK_LIBRARIES)


def _op_exists(name: str) -> bool:
    return hasattr(torch.ops.torchvision, name)


def _package_folder() -> Path | None:
    """torchvision's folder, found without importing it."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


def _load_compiled_ops(folder: Path) -> bool:
    """Load torchvision's ``_C`` extension as ``torchvision.extension`` does."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_C{suffix}"
        if path.is_file():
            try:
                torch.ops.load_library(str(path))
            except OSError:
                return False
            return _op_exists("nms")
    return False


def _register_fallbacks() -> torch.library.Library:
    library = torch.library.Library("torchvision", "FRAGMENT")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.impl("nms", _nms, "CompositeExplicitAutograd")
    for name, schema in _UNSUPPORTED_OPS.items():
        library.define(name + schema)
        library.impl(name, _unsupported(name), "CompositeExplicitAutograd")
    return library


def _nms(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS, as torchvision's CPU kernel (csrc/ops/cpu/nms_kernel.cpp).

    Boxes are (x1, y1, x2, y2); a box is dropped when its IoU with a kept,
    higher-scoring box exceeds ``iou_threshold``. Returns the kept indices into
    ``dets``, highest score first (ties keep input order).
    """
    if dets.dim() != 2 or dets.shape[-1] != 4 or scores.shape != dets.shape[:1]:
        raise ValueError(f"nms takes dets (N, 4) and scores (N,), not {dets.shape}, {scores.shape}")
    order = torch.sort(scores, descending=True, stable=True).indices
    x1, y1, x2, y2 = dets[order].unbind(dim=1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=dets.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = slice(i + 1, None)
        width = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        height = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = width * height
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest] |= iou.double() > iou_threshold  # the kernel compares in double
    return order[torch.tensor(keep, dtype=torch.long, device=dets.device)]


def _unsupported(name: str) -> Callable[..., torch.Tensor]:
    def kernel(*args: object) -> torch.Tensor:
        raise NotImplementedError(
            f"torchvision::{name} is not available: torchvision's compiled ops do not load on"
            f" this torch {torch.__version__} and clipswap_video provides no fallback for it"
        )

    return kernel
