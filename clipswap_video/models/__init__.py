"""Torch models: the Keras .h5 interpreter and converter (FaceDancer / ClipSwap /
ArcFace files).

    model = clipswap_video.models.load("ClipSwap.safetensors")  # or the .h5
"""

from clipswap_video.models.convert import convert, load

__all__ = ["convert", "load"]
