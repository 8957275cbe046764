"""Decoders mirroring the encoders (METHOD.md step 5).

Nearest upsampling and reflection padding avoid checkerboards and dark borders. The skips
from the shallower encoder taps carry the object's fine detail; their foreground part is
first re-normalised to the background's statistics (masked AdaIN, as PHDNet does) so the
detail arrives already in the painting's colours.

:class:`Decoder` is the trainable decoder of the ``lite`` and ``vgg19`` encoders (skips
concatenated and fused). :class:`InverterDecoder` belongs to ``vgg19-relu3``: its main path is
exactly the layer list of the pretrained feature inverter of that encoder's relu3_1 features,
so it can start from those weights, and its skips are *added* through 1x1 convolutions that
start at zero: at initialisation it is the pretrained inverter, and training decides how much
of the object's detail the skips bring back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dkt.dktnet.encoders import conv3x3
from dkt.dktnet.stats import masked_adain


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class Decoder(nn.Module):
    def __init__(self, channels: tuple[int, ...], skip_adain: bool = True) -> None:
        super().__init__()
        self.skip_adain = skip_adain
        c = channels
        levels = len(c) - 1
        self.up = nn.ModuleList(conv3x3(c[i + 1], c[i]) for i in range(levels))
        self.fuse = nn.ModuleList(conv3x3(2 * c[i], c[i]) for i in range(levels))
        self.out = conv3x3(c[0], 3)

    def forward(
        self,
        deep: torch.Tensor,
        skips: list[torch.Tensor],
        masks: list[torch.Tensor],
        valids: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``skips``/``masks`` are the shallower encoder taps and masks at those sizes.

        ``valids`` (1 on real pixels, 0 on padding) keep padding out of the skips' statistics.
        """
        x = deep
        for level in reversed(range(len(skips))):
            x = torch.relu(self.up[level](_up(x)))
            skip = skips[level]
            if self.skip_adain:
                skip = masked_adain(skip, masks[level], valids[level] if valids else None)
            x = torch.relu(self.fuse[level](torch.cat([x, skip], dim=1)))
        return self.out(x)


#: The inverter's layers: (name, in, out, upsample after). Its pretrained file's
#: ``nn.Sequential`` indices are in :data:`dkt.dktnet.vgg_weights.INVERTER_INDEX`.
INVERTER_LAYERS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv3_1", 256, 128, True),
    ("conv2_2", 128, 128, False),
    ("conv2_1", 128, 64, True),
    ("conv1_2", 64, 64, False),
    ("conv1_1", 64, 3, False),
)


class InverterDecoder(nn.Module):
    """The relu3_1 feature inverter with zero-initialised, masked-AdaIN skips added."""

    def __init__(self, skip_adain: bool = True) -> None:
        super().__init__()
        self.skip_adain = skip_adain
        self.convs = nn.ModuleDict(
            {name: conv3x3(cin, cout) for name, cin, cout, _ in INVERTER_LAYERS}
        )
        # Added right after each upsampling: relu2_1 (128 ch) at stride 2, relu1_1 (64) at 1.
        self.skips = nn.ModuleList(nn.Conv2d(c, c, kernel_size=1) for c in (64, 128))
        for proj in self.skips:
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self,
        deep: torch.Tensor,
        skips: list[torch.Tensor],
        masks: list[torch.Tensor],
        valids: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``skips`` are relu1_1 and relu2_1 (strides 1, 2); ``masks``/``valids`` at those sizes."""
        x = deep
        level = len(skips)
        *body, (last, _, _, _) = INVERTER_LAYERS
        for name, _, _, upsample in body:
            x = self.convs[name](x).relu_()
            if upsample:
                x = _up(x)
                level -= 1
                skip = skips[level]
                if self.skip_adain:
                    skip = masked_adain(skip, masks[level], valids[level] if valids else None)
                x = x.add_(self.skips[level](skip))  # in place: a full-size map less
        return self.convs[last](x)


def build_decoder(encoder: str, channels: tuple[int, ...], skip_adain: bool) -> nn.Module:
    """The decoder that belongs to an encoder."""
    if encoder == "vgg19-relu3":
        return InverterDecoder(skip_adain)
    return Decoder(channels, skip_adain)
