"""DKTNet: encoder -> bi-transformation with dynamic kernels -> decoder -> blend.

``forward`` is the inference contract every backend reproduces: any H x W (padded to the
encoder's multiple and cropped back), one mask per image, output in [0, 1] that equals the
composite wherever the mask is 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dktnet.bitransform import BiTransformation
from dktnet.config import DKTNetConfig
from dktnet.decoder import Decoder
from dktnet.encoders import build_encoder
from dktnet.stats import RegionStats, resize_mask

STRIDES = (1, 2, 4, 8)
MULTIPLE = STRIDES[-1]
MIN_SIDE = 2 * MULTIPLE  # the stride-8 map needs 2 px for its reflection-padded convs


class RenderOutput(NamedTuple):
    """What training needs beyond the image: the standard-style features and statistics."""

    image: torch.Tensor  # decoder output before clamping and blending, (B, 3, H, W)
    standard: torch.Tensor  # F_std at stride 8
    harmonized_features: torch.Tensor  # F~_c at stride 8
    fg_stats: RegionStats
    bg_stats: RegionStats


def pad_to_multiple(
    x: torch.Tensor, multiple: int = MULTIPLE, min_side: int = MIN_SIDE
) -> torch.Tensor:
    """Replicate-pad H and W up to a multiple and at least ``min_side`` (any input, even 1 px).

    The pad is applied even when it is zero: a shape-dependent early return would be frozen
    into an exported graph at the example input's size (see :mod:`backends.export_onnx`). The
    minimum side only concerns inputs under 16 px, which export profiles never admit.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if h < min_side or w < min_side:
        pad_h, pad_w = max(min_side - h, pad_h), max(min_side - w, pad_w)
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def blend(composite: torch.Tensor, generated: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the composite where the mask is 0 (exactly: x*1 + y*0 == x in IEEE arithmetic)."""
    return composite * (1.0 - mask) + generated.clamp(0.0, 1.0) * mask


class DKTNet(nn.Module):
    def __init__(self, config: DKTNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or DKTNetConfig()
        channels = self.config.channels
        self.encoder = build_encoder(self.config.encoder, self.config.lite_channels)
        self.bitransform = BiTransformation(
            channels[-1],
            self.config.kernel_dim,
            self.config.prototypes,
            self.config.generator_hidden,
        )
        self.decoder = Decoder(channels, skip_adain=self.config.skip_adain)
        self.provenance: dict[str, object] = {}  # filled in by checkpoint loading

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(image)

    def render(self, composite: torch.Tensor, mask: torch.Tensor) -> RenderOutput:
        """Run the network on inputs whose H, W are multiples of 8; no clamping or blending."""
        taps = self.encode(composite)
        masks = [resize_mask(mask, s) for s in STRIDES]
        bt = self.bitransform(taps[-1], masks[-1])
        image = self.decoder(bt.harmonized, taps[:-1], masks[:-1])
        return RenderOutput(image, bt.standard, bt.harmonized, bt.fg_stats, bt.bg_stats)

    def generate(self, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The decoder's image at the input's own H x W, before clamping and blending."""
        h, w = composite.shape[-2:]
        mask = mask.to(composite.dtype)
        rendered = self.render(pad_to_multiple(composite), pad_to_multiple(mask))
        return rendered.image[..., :h, :w]

    def forward(self, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Harmonize ``composite`` (B,3,H,W) in [0,1] inside ``mask`` (B,1,H,W) in [0,1]."""
        mask = mask.to(composite.dtype)
        return blend(composite, self.generate(composite, mask), mask)

    def autoencode(self, image: torch.Tensor) -> torch.Tensor:
        """D(E(I)) with no transform: what the reconstruction loss trains for a lite encoder."""
        h, w = image.shape[-2:]
        padded = pad_to_multiple(image)
        taps = self.encode(padded)
        empty = [torch.zeros_like(padded[:, :1, ::s, ::s]) for s in STRIDES[:-1]]
        return self.decoder(taps[-1], taps[:-1], empty)[..., :h, :w]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
