"""Stand-in face restorers as their authors publish them: a state dict saved with
torch.save (under "params_ema" for GFPGAN, as its releases are), built from
spandrel's own architecture classes with random weights, small where the
architecture's loader reads the widths from the state dict."""

from __future__ import annotations

from pathlib import Path

import torch

from clipswap_video.models.torchvision_compat import ensure_torchvision


def restoreformer(seed: int = 0) -> torch.nn.Module:
    """RestoreFormer at a small width (spandrel reads every width from the state dict)."""
    ensure_torchvision()
    from spandrel.architectures.RestoreFormer import RestoreFormer

    torch.manual_seed(seed)
    return RestoreFormer(
        n_embed=64, embed_dim=32, ch=32, out_ch=3, ch_mult=(1, 1, 1, 1, 1, 2),
        num_res_blocks=1, attn_resolutions=(16,), dropout=0.0, in_channels=3,
        resolution=512, z_channels=32, double_z=False, enable_mid=True, head_size=8,
    ).eval()  # fmt: skip


def write_restoreformer(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(restoreformer(seed).state_dict(), path)
    return path


def write_gfpgan(path: Path) -> Path:
    """GFPGANv1Clean at its one size (spandrel builds it at 512, width fixed), as
    GFPGANv1.4.pth stores it."""
    ensure_torchvision()
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(0)
    model = GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, different_w=True,
                   narrow=1, sft_half=True, input_is_latent=True, num_mlp=8)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": model.state_dict()}, path)
    return path


def write_codeformer(path: Path) -> Path:
    """CodeFormer from the optional extra's architecture, its transformer narrow
    (spandrel reads its width, depth and codebook from the state dict; the VQGAN
    around it has one size), under "params_ema" as codeformer.pth stores it."""
    ensure_torchvision()
    from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

    torch.manual_seed(0)
    model = CodeFormer(dim_embd=64, n_head=8, n_layers=1, codebook_size=64)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": model.state_dict()}, path)
    return path


def write_compact_sr(path: Path) -> Path:
    """A spandrel model that is no face restorer: Real-ESRGAN's compact upscaler."""
    ensure_torchvision()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    torch.save(Compact(num_feat=8, num_conv=2, upscale=2).state_dict(), path)
    return path


__all__ = [
    "restoreformer",
    "write_codeformer",
    "write_compact_sr",
    "write_gfpgan",
    "write_restoreformer",
]
