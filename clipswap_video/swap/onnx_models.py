"""What each FaceFusion ONNX swapper expects: the facts `--swapper onnx:NAME` runs
it by (crop, alignment, normalisation, source input, output range).

The files carry none of this; it is established from FaceFusion's own code, the
one public description of these exports (docs/models.md cites the lines per
model). A model whose facts are not established is not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from clipswap_video.faces import AlignmentName

SourceKind = Literal["embedding", "converted", "converted_unit", "image"]
"""What the `source` input takes. embedding: the source's unit w600k_r50
embedding; converted: the raw w600k_r50 embedding through the model's embedding
converter; converted_unit: that, normalised; image: an aligned source crop, RGB
in [0, 1]."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class OnnxSwapperModel:
    """One swapper's facts."""

    name: str
    crop_size: int
    alignment: AlignmentName
    mean: tuple[float, float, float]
    """Per RGB channel, on pixel / 255: the target input is (pixel / 255 - mean) / std."""
    std: tuple[float, float, float]
    source: SourceKind
    output_normalised: bool
    """True: the output is in the input's normalised range (undone with std, mean);
    False: it is RGB in [0, 1] whatever the input's normalisation."""
    converters: tuple[str, ...] = ()
    """Manifest names of the embedding converters it takes, preferred first."""
    source_alignment: AlignmentName = "arcface"
    source_size: int = 0
    """For source = image: the source crop's template and side."""

    @property
    def entry(self) -> str:
        """Its manifest entry's name."""
        return f"facefusion.{self.name}"


HALF = (0.5, 0.5, 0.5)
ZERO = (0.0, 0.0, 0.0)
ONE = (1.0, 1.0, 1.0)
GHOST = ("facefusion.crossface_ghost", "facefusion.arcface_converter_ghost")
SIMSWAP = ("facefusion.crossface_simswap", "facefusion.arcface_converter_simswap")
HIFIFACE = ("facefusion.crossface_hififace", "facefusion.arcface_converter_hififace")

MODELS: dict[str, OnnxSwapperModel] = {
    model.name: model
    for model in (
        OnnxSwapperModel(
            "blendswap_256", 256, "ffhq", ZERO, ONE, "image", False,
            source_alignment="arcface", source_size=112,
        ),
        *(
            OnnxSwapperModel(
                f"ghost_{n}_256", 256, "arcface_v1", HALF, HALF, "converted", True, GHOST
            )
            for n in (1, 2, 3)
        ),
        OnnxSwapperModel(
            "hififace_unofficial_256", 256, "mtcnn", HALF, HALF, "converted_unit", True, HIFIFACE
        ),
        *(
            OnnxSwapperModel(
                f"hyperswap_{v}_256", 256, "insightface", HALF, HALF, "embedding", True
            )
            for v in ("1a", "1b", "1c")
        ),
        OnnxSwapperModel(
            "simswap_256", 256, "arcface_v1", IMAGENET_MEAN, IMAGENET_STD, "converted_unit", False,
            SIMSWAP,
        ),
        OnnxSwapperModel(
            "simswap_unofficial_512", 512, "arcface_v1", ZERO, ONE, "converted_unit", False, SIMSWAP
        ),
        OnnxSwapperModel(
            "uniface_256", 256, "ffhq", HALF, HALF, "image", True,
            source_alignment="ffhq", source_size=256,
        ),
    )
}  # fmt: skip
"""Every listed model by name (FaceFusion's name and file stem)."""


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MODELS", "OnnxSwapperModel", "SourceKind"]
