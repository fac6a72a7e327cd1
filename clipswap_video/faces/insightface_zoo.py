"""insightface's model zoo as the project loads its ONNX files: one
`insightface.model_zoo.get_model` call with our providers and session options,
every way a file can fail turned into one CorruptWeightsError line.

The zoo picks a model's class from its inputs and outputs alone (5 or more
outputs: SCRFD; a 192 px input: Landmark; two inputs at 128 px: INSwapper;
another square input of 112 px or more: ArcFaceONNX), so a file of the wrong
model under a known name loads as another class, and the caller names the
class it expects.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path
from typing import Any

from clipswap_video.errors import CorruptWeightsError
from clipswap_video.faces.onnx_session import load_errors, session_options


def load_zoo_model(path: Path, kind: str, providers: list[Any], **options: Any) -> Any:
    """insightface's model for `path`, which its model zoo must read as `kind`
    (its class name: "SCRFD", "Landmark", "ArcFaceONNX", "INSwapper").

    `options` go to `get_model` as they are (SCRFD's `static_shape_sessions`).

    Raises:
        CorruptWeightsError: a file onnxruntime or onnx cannot read, or another model.
    """
    from google.protobuf.message import DecodeError
    from insightface.model_zoo import get_model
    from insightface.model_zoo.model_zoo import ModelRouter

    # get_model takes a name that does not end in ".onnx" (DET_10G.ONNX, found in
    # any case) for a pack under ~/.insightface; such a file goes straight to the
    # router get_model hands every .onnx path to.
    if path.name.endswith(".onnx"):
        load = functools.partial(get_model, str(path))
    else:
        load = ModelRouter(str(path)).get_model
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # INSwapper prints its input shape
            model = load(providers=providers, sess_options=session_options(), **options)
    except (*load_errors(), DecodeError) as error:
        message = " ".join(str(error).split())[:200]
        raise CorruptWeightsError(
            f"{path} cannot be loaded by onnxruntime ({message}); download it again"
        ) from None
    except (IndexError, AssertionError) as error:
        # The router indexes the input's height and width, ArcFaceONNX and
        # Landmark assert one output, INSwapper reads its emap as the graph's
        # last initializer: each fails on another model.
        what = (
            "has no emap (no initializer in the graph)"
            if kind == "INSwapper" and isinstance(error, IndexError)
            else f"cannot be read by insightface as {kind}"
        )
        raise CorruptWeightsError(f"{path} {what}: not the file of that name") from None
    if type(model).__name__ != kind:
        what = type(model).__name__ if model is not None else "no model it knows"
        raise CorruptWeightsError(
            f"{path} is read by insightface as {what}, expected {kind}: not the file of that name"
        )
    return model


__all__ = ["load_zoo_model"]
