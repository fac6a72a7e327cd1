"""The ArcFace identity network of FaceDancer / ClipSwap (ArcFace-Res50.h5; Deng et
al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019)
as plain torch modules: a Keras ResNet50 v1 (`models.resnet`) plus the head that
the file size implies (docs/models.md, section 2):
BN -> Dropout -> Flatten (NHWC order) -> Dense(512) -> BN, no L2 normalisation.

    arcface = ArcFaceResNet50()
    z = arcface(faces)  # (N,3,112,112) RGB in [0,1] -> (N,512), not normalised
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from clipswap_video.models.resnet import ResNet50

HEAD_NAMES = ("batch_normalization", "dense", "batch_normalization_1")
"""Keras' automatic names of the head's BN, Dense and BN in a fresh session."""


class ArcFaceResNet50(nn.Module):
    """ResNet50 v1 features -> BN -> Dropout -> Flatten -> Dense -> BN.

    Args:
        blocks, widths: the backbone's stages (see `resnet.ResNet50`).
        image_size: input side; fixes the flattened feature size.
        embedding_dim: the identity vector's size.
        dropout: the head's dropout rate (training only).
        head_eps: epsilon of the head's two BatchNormalization layers.
        head_names: Keras names of the head's BN, Dense and BN (the file's, when loaded).
    """

    def __init__(
        self,
        *,
        blocks: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        image_size: int = 112,
        embedding_dim: int = 512,
        dropout: float = 0.0,
        head_eps: float = 1e-3,
        head_names: tuple[str, str, str] = HEAD_NAMES,
    ) -> None:
        super().__init__()
        self.head_names = head_names
        self.backbone = ResNet50(blocks=blocks, widths=widths)
        channels = 4 * widths[-1]
        side = image_size
        for _ in range(5):  # stem conv, max-pool, and the strided conv3, conv4, conv5
            side = math.ceil(side / 2)
        self.feature_norm = nn.BatchNorm2d(channels, eps=head_eps, momentum=0.01)
        self.dropout = nn.Dropout(dropout)
        self.to_embedding = nn.Linear(side * side * channels, embedding_dim)
        self.embedding_norm = nn.BatchNorm1d(embedding_dim, eps=head_eps, momentum=0.01)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        (features,) = self.backbone(faces).values()
        features = self.dropout(self.feature_norm(features))
        flat = features.permute(0, 2, 3, 1).flatten(1)  # Keras flattens H, W, C
        return self.embedding_norm(self.to_embedding(flat))

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> weighted submodule (keras.applications names inside)."""
        head = (self.feature_norm, self.to_embedding, self.embedding_norm)
        return {**self.backbone.keras_layers(), **dict(zip(self.head_names, head, strict=True))}


__all__ = ["HEAD_NAMES", "ArcFaceResNet50"]
