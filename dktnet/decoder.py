"""Decoder mirroring the encoder (METHOD.md step 5).

Nearest upsampling and reflection padding avoid checkerboards and dark borders. The skips
from the shallower encoder taps carry the object's fine detail; their foreground part is
first re-normalised to the background's statistics (masked AdaIN, as PHDNet does) so the
detail arrives already in the painting's colours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dktnet.encoders import conv3x3
from dktnet.stats import masked_adain


class Decoder(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int], skip_adain: bool = True) -> None:
        super().__init__()
        self.skip_adain = skip_adain
        c = channels
        self.up = nn.ModuleList(conv3x3(c[i + 1], c[i]) for i in range(3))
        self.fuse = nn.ModuleList(conv3x3(2 * c[i], c[i]) for i in range(3))
        self.out = conv3x3(c[0], 3)

    def forward(
        self, deep: torch.Tensor, skips: list[torch.Tensor], masks: list[torch.Tensor]
    ) -> torch.Tensor:
        """``skips``/``masks`` are the stride-1, -2, -4 encoder taps and masks at those sizes."""
        x = deep
        for level in (2, 1, 0):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = torch.relu(self.up[level](x))
            skip = skips[level]
            if self.skip_adain:
                skip = masked_adain(skip, masks[level])
            x = torch.relu(self.fuse[level](torch.cat([x, skip], dim=1)))
        return self.out(x)
