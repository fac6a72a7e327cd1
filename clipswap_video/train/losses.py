"""The losses of FaceDancer's training step and ClipSwap's two additions, as pure
functions of tensors (docs/models.md, section 4).

Images are (N, 3, S, S) in [-1, 1]; `same` is the (N,) flag of samples whose
source is their target. Each function returns a scalar. The frozen networks
that produce the features live in `train.networks`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

FLAG_EPS = 0.001
"""FaceDancer's guard in the flag-weighted mean: sum(x * flag) / (sum(flag) + 0.001)."""


def flag_weighted(per_sample: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Mean of `per_sample` over the flagged samples (0 when none is flagged)."""
    flags = same.to(per_sample.dtype)
    return (per_sample * flags).sum() / (flags.sum() + FLAG_EPS)


def generator_adversarial(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss of the generator: mean softplus(-D(Y))."""
    return F.softplus(-fake_logits).mean()


def discriminator_adversarial(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """mean softplus(D(Y)) + mean softplus(-D(real)); sources are the real images."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma / 2 * batch mean of the summed squared gradient of D at the real
    images (`real_images` must require grad; the graph is kept for backward)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return 0.5 * gamma * grad.square().flatten(1).sum(1).mean()


def reconstruction(target: torch.Tensor, swapped: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Per-sample mean |target - Y|, flag-weighted, clipped to [0, 100], halved,
    clipped to [0, 5] (FaceDancer's exact chain)."""
    per_sample = (target - swapped).abs().flatten(1).mean(1)
    return (flag_weighted(per_sample, same).clamp(0, 100) / 2).clamp(0, 5)


def identity(z_source: torch.Tensor, z_swapped: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos(z_source, z_swapped)) of ArcFace vectors."""
    return (1 - F.cosine_similarity(z_source, z_swapped, dim=1)).mean()


def cycle(cycled: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean |G(Y, z_target) - target|."""
    return (cycled - target).abs().mean()


def perceptual(
    target_features: Sequence[torch.Tensor],
    swapped_features: Sequence[torch.Tensor],
    same: torch.Tensor,
    factor: float = 0.85,
) -> torch.Tensor:
    """Sum over VGG blocks of the flag-weighted per-sample mean |factor * f_t - factor * f_Y|."""
    total = swapped_features[0].new_zeros(())
    for ft, fy in zip(target_features, swapped_features, strict=True):
        per_sample = (factor * ft - factor * fy).abs().flatten(1).mean(1)
        total = total + flag_weighted(per_sample, same)
    return total


def ifsr(
    target_features: Sequence[torch.Tensor],
    swapped_features: Sequence[torch.Tensor],
    margins: Sequence[float],
    scale: float = 1.2,
) -> torch.Tensor:
    """Sum over ArcFace blocks of max(0, batch mean (1 - cos) - scale * margin);
    the hinge is on the batch mean (FaceDancer's IFSR)."""
    total = swapped_features[0].new_zeros(())
    for ft, fy, margin in zip(target_features, swapped_features, margins, strict=True):
        distance = (1 - F.cosine_similarity(ft.flatten(1), fy.flatten(1), dim=1)).mean()
        total = total + (distance - scale * margin).clamp(min=0)
    return total


def clip_contrastive(
    views: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    valid: torch.Tensor,
) -> torch.Tensor:
    """InfoNCE over augmented views of the swapped images in CLIP space.

    For view k of sample i the positive is source i; the negatives are target i
    and every other source j != i of the batch (reference 4.3, the suggested
    formulation). Embeddings are L2-normalised here.

    Args:
        views: (K, N, D) embeddings of K views of each swapped image.
        source: (N, D) embeddings of the sources.
        target: (N, D) embeddings of the targets.
        temperature: tau of the softmax.
        valid: (N,) bool, samples that count (those whose source is not their
            target: there the positive and the target negative coincide).

    Returns:
        The mean over views and valid samples; 0 (with a graph) when none is valid.
    """
    views, source, target = (F.normalize(x, dim=-1) for x in (views, source, target))
    to_sources = torch.einsum("knd,md->knm", views, source)  # diagonal: positives
    to_target = (views * target[None]).sum(-1, keepdim=True)  # (K, N, 1)
    logits = torch.cat([to_sources, to_target], dim=-1) / temperature
    labels = torch.arange(source.shape[0], device=views.device).expand(views.shape[0], -1)
    per_view = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
    weights = valid.to(per_view.dtype).repeat(views.shape[0])
    return (per_view * weights).sum() / weights.sum().clamp(min=1)


def attribute(
    target_features: Sequence[torch.Tensor],
    swapped_features: Sequence[torch.Tensor],
    *,
    multi_level: bool = False,
    norm: str = "l1",
) -> torch.Tensor:
    """Distance of attribute-encoder features of swapped vs target: the final
    feature only (ClipSwap, FG 2024) or the mean over every level (ClipSwap++)."""
    pairs = list(zip(target_features, swapped_features, strict=True))
    chosen = pairs if multi_level else pairs[-1:]
    distance = F.l1_loss if norm == "l1" else F.mse_loss
    return torch.stack([distance(fy, ft) for ft, fy in chosen]).mean()


__all__ = [
    "FLAG_EPS",
    "attribute",
    "clip_contrastive",
    "cycle",
    "discriminator_adversarial",
    "flag_weighted",
    "generator_adversarial",
    "identity",
    "ifsr",
    "perceptual",
    "r1_penalty",
    "reconstruction",
]
