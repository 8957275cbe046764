"""Training losses of METHOD.md, each a separate function of tensors.

``L_G = L_s + λ_c L_c + λ_adv L_adv + λ_cons L_cons + L_recons``; this module holds the terms
that need no discriminator (style, content, reconstruction/identity). Feature lists are the
loss network's relu1_1..relu4_1 taps; masks are resized to each tap inside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dktnet.stats import masked_stats


def _mask_like(mask: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """Area-resize a (B,1,H,W) mask to a feature map's spatial size."""
    if mask.shape[-2:] == feat.shape[-2:]:
        return mask
    return F.adaptive_avg_pool2d(mask, feat.shape[-2:])


def style_loss(
    output_feats: list[torch.Tensor], composite_feats: list[torch.Tensor], mask: torch.Tensor
) -> torch.Tensor:
    """L_s: the output's foreground statistics should be the painting's (background) ones.

    Squared distance of masked mean and std, averaged over channels, summed over taps.
    """
    total = output_feats[0].new_zeros(())
    for out_f, comp_f in zip(output_feats, composite_feats, strict=True):
        m = _mask_like(mask, out_f)
        fg = masked_stats(out_f, m)
        bg = masked_stats(comp_f, 1.0 - m)
        total = total + F.mse_loss(fg.mean, bg.mean) + F.mse_loss(fg.std, bg.std)
    return total


def content_loss(
    output_feat: torch.Tensor, composite_feat: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L_c: deepest-tap features of the output's foreground should keep the object's content."""
    m = _mask_like(mask, output_feat)
    sq = ((output_feat - composite_feat) ** 2).mean(dim=1, keepdim=True)
    return (sq * m).sum() / m.sum().clamp_min(1.0)


def identity_loss(output: torch.Tensor, painting: torch.Tensor) -> torch.Tensor:
    """L_recons (identity): an unedited painting with a random mask must come back unchanged."""
    return F.l1_loss(output, painting)


def autoencoder_loss(decoded: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """L_recons (autoencoder): with a trainable encoder, D(E(I)) must reproduce I."""
    return F.l1_loss(decoded, image)
