"""onnxruntime sessions as every ONNX detector here opens them: where they run
(`faces.device`) and how their threads behave next to the rest of the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clipswap_video.devices import parse_device
from clipswap_video.errors import ConfigValueError, CorruptWeightsError


def onnx_providers(device: str, available: Sequence[str], key: str = "faces.device") -> list[Any]:
    """onnxruntime providers for the setting `key` (auto, cpu, cuda, cuda:N).

    `auto` takes CUDA first when onnxruntime has it; CPU always comes last
    (onnxruntime runs there whatever CUDA cannot).

    Raises:
        ConfigValueError: a device string of another form, or `cuda` asked for
            explicitly where onnxruntime has no CUDA provider (a render node that
            silently fell back to the CPU would be a slow surprise).
    """
    parsed = parse_device(device, key)
    has_cuda = "CUDAExecutionProvider" in available
    if parsed.kind == "cuda" and not has_cuda:
        raise ConfigValueError(
            f"{key} = {device!r} but onnxruntime has no CUDA provider; "
            f"install onnxruntime-gpu or use {key} = auto"
        )
    if parsed.kind == "cpu" or not has_cuda:
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": parsed.index or 0}), "CPUExecutionProvider"]


def session_options() -> Any:
    """Session options: errors only on stderr, and worker threads that sleep
    between calls. onnxruntime's threads spin for a while after each run by
    default, which takes the cores the decoder, the swap and the encoder need
    between two detections (docs/benchmarks.md)."""
    import onnxruntime  # deferred: importing the interface must not load it

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings per session
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def load_errors() -> tuple[type[Exception], ...]:
    """The exceptions onnxruntime raises for a file it cannot load (they derive
    from Exception alone, so they are named one by one)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (
        state.Fail,
        state.InvalidArgument,
        state.InvalidProtobuf,
        state.InvalidGraph,
        state.NoSuchFile,
        state.NoModel,
        state.NotImplemented,
        state.RuntimeException,
        state.EPFail,
    )


def open_session(path: Path, providers: list[Any]) -> Any:
    """An onnxruntime session of `path`.

    Raises:
        CorruptWeightsError: a file onnxruntime cannot read.
    """
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), session_options(), providers=providers)
    except load_errors() as error:
        message = " ".join(str(error).split())[:200]
        raise CorruptWeightsError(
            f"{path} cannot be loaded by onnxruntime ({message}); download it again"
        ) from None


def first_output(session: Any, feed: dict[str, np.ndarray], what: str) -> np.ndarray:
    """The session's first output, as float32.

    Raises:
        CorruptWeightsError: the graph fails on inputs of its own signature.
    """
    try:
        return np.asarray(session.run(None, feed)[0], np.float32)
    except load_errors() as error:
        message = " ".join(str(error).split())[:200]
        raise CorruptWeightsError(f"{what} fails on its own input shapes ({message})") from None


__all__ = ["first_output", "load_errors", "onnx_providers", "open_session", "session_options"]
