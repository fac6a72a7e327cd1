"""Torch models: the Keras .h5 interpreter and converter (FaceDancer / ClipSwap /
ArcFace files) and generators by name.

    model = clipswap_video.models.load("ClipSwap.safetensors")  # or the .h5
    model = clipswap_video.models.create_model("facedancer_256")  # random weights
"""

from clipswap_video.models.convert import convert, load
from clipswap_video.models.registry import create_model, list_models, model_spec

__all__ = ["convert", "create_model", "list_models", "load", "model_spec"]
