"""Torch networks and the readers of their weight files: the Keras .h5
interpreter and converter (FaceDancer / ClipSwap / ArcFace / RetinaFace files),
the hand-written modules, CLIP, and `create_model`, the one way to build one.

Where models/ sits: it is the leaf of network code under the stages. Every
stage (faces, swap, train, bench, the CLI) may import it: a stage backend
builds its network here (faces/retinaface_backend.py runs models/retinaface.py,
swap/clipswap.py runs `create_model`) and keeps the stage's own work (frames,
boxes, crops, settings) to itself. models/ imports no stage and nothing above
it, only clipswap_video.errors and private leaves such as _resources, so a
network can be built, converted and tested without any pipeline code. Its
`_private` modules are for models/ alone.

    model = create_model("facedancer_256")  # random weights
    model = create_model("weights/ClipSwap.safetensors")  # or the .h5: a KerasGraph
    generator = create_model("weights/ClipSwap.h5", impl="modules")  # FaceDancerGenerator
    convert(Path("ClipSwap.h5"), Path("ClipSwap.safetensors"))  # `weights convert`
"""

from clipswap_video.models.arcface import ArcFaceResNet50
from clipswap_video.models.attribute_encoder import AttributeEncoder
from clipswap_video.models.convert import convert
from clipswap_video.models.discriminator import Discriminator
from clipswap_video.models.factory import create_model, list_models, model_spec
from clipswap_video.models.generator import FaceDancerGenerator

__all__ = [
    "ArcFaceResNet50",
    "AttributeEncoder",
    "Discriminator",
    "FaceDancerGenerator",
    "convert",
    "create_model",
    "list_models",
    "model_spec",
]
