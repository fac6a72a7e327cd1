"""Torch models: the Keras .h5 interpreter and converter (FaceDancer / ClipSwap /
ArcFace files) and generators by name.

    model = clipswap_video.models.load("ClipSwap.safetensors")  # or the .h5
    model = clipswap_video.models.create_model("facedancer_256")  # random weights
    generator = clipswap_video.models.from_keras("ClipSwap.h5")  # hand-written torch modules
"""

from clipswap_video.models.arcface import ArcFaceResNet50
from clipswap_video.models.attribute_encoder import AttributeEncoder
from clipswap_video.models.convert import convert, load
from clipswap_video.models.discriminator import Discriminator
from clipswap_video.models.from_keras import from_keras, load_into
from clipswap_video.models.generator import FaceDancerGenerator
from clipswap_video.models.registry import create_model, list_models, model_spec

__all__ = [
    "ArcFaceResNet50",
    "AttributeEncoder",
    "Discriminator",
    "FaceDancerGenerator",
    "convert",
    "create_model",
    "from_keras",
    "list_models",
    "load",
    "load_into",
    "model_spec",
]
