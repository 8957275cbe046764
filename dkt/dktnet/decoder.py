"""Decoders mirroring the encoders (METHOD.md step 5).

Nearest upsampling and reflection padding avoid checkerboards and dark borders. The skips
from the shallower encoder taps carry the object's fine detail; their foreground part is
first re-normalised to the background's statistics (masked AdaIN, as PHDNet does) so the
detail arrives already in the painting's colours.

:class:`Decoder` is the trainable decoder of the ``lite`` and ``vgg19`` encoders (skips
concatenated and fused). :class:`InverterDecoder` belongs to ``vgg19-relu3`` and
``cd16x-relu4``: its main path is exactly the layer list of the pretrained feature
inverter of that encoder's deepest features (WCT's relu3_1 inverter; the distilled
network's relu4_1 decoder), so it can start from those weights, and its skips are *added*
through 1x1 convolutions that start at zero: at initialisation it is the pretrained
inverter, and training decides how much of the object's detail the skips bring back.
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
        strength: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``skips``/``masks`` are the shallower encoder taps and masks at those sizes.

        ``valids`` (1 on real pixels, 0 on padding) keep padding out of the skips' statistics;
        ``strength`` scales the skips' masked AdaIN (:func:`masked_adain`; ``None``: full).
        """
        x = deep
        for level in reversed(range(len(skips))):
            x = torch.relu(self.up[level](_up(x)))
            skip = skips[level]
            if self.skip_adain:
                valid = valids[level] if valids else None
                skip = masked_adain(skip, masks[level], valid, strength)
            x = torch.relu(self.fuse[level](torch.cat([x, skip], dim=1)))
        return self.out(x)


#: A pretrained inverter's layers: (name, in, out, upsample after). The relu3_1 inverter's
#: ``nn.Sequential`` indices are in :data:`dkt.dktnet.vgg_weights.INVERTER_INDEX`.
INVERTER_LAYERS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv3_1", 256, 128, True),
    ("conv2_2", 128, 128, False),
    ("conv2_1", 128, 64, True),
    ("conv1_2", 64, 64, False),
    ("conv1_1", 64, 3, False),
)
#: The distilled network's relu4_1 decoder (Collaborative Distillation), its files' names.
CD16X_INVERTER_LAYERS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv41", 128, 64, True),
    ("conv34", 64, 64, False),
    ("conv33", 64, 64, False),
    ("conv32", 64, 64, False),
    ("conv31", 64, 32, True),
    ("conv22", 32, 32, False),
    ("conv21", 32, 16, True),
    ("conv12", 16, 16, False),
    ("conv11", 16, 3, False),
)


class InverterDecoder(nn.Module):
    """A pretrained feature inverter with zero-initialised, masked-AdaIN skips added.

    ``layers`` is the inverter's plan; a skip is added right after each upsampling, from
    the encoder tap at that stride, through a 1x1 convolution that starts at zero (so the
    untrained decoder is exactly the pretrained inverter). ``skips=False`` builds the
    inverter alone (an ablation, and the training-free baselines). The last layer has no
    activation even where the original ended in a ReLU: the blend clamps to [0, 1] anyway,
    and a ReLU there would cut the gradient of every pixel it zeroes.
    """

    def __init__(
        self,
        skip_adain: bool = True,
        layers: tuple[tuple[str, int, int, bool], ...] = INVERTER_LAYERS,
        skips: bool = True,
    ) -> None:
        super().__init__()
        self.skip_adain = skip_adain
        self.layers = layers
        self.convs = nn.ModuleDict({name: conv3x3(cin, cout) for name, cin, cout, _ in layers})
        # The channels arriving at each upsampling, shallowest level (stride 1) first.
        widths = [cout for _, _, cout, up in reversed(layers) if up]
        self.skips = nn.ModuleList(nn.Conv2d(c, c, kernel_size=1) for c in widths if skips)
        for proj in self.skips:
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self,
        deep: torch.Tensor,
        skips: list[torch.Tensor],
        masks: list[torch.Tensor],
        valids: list[torch.Tensor] | None = None,
        strength: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``skips``: shallower taps (strides 1, 2, ...); ``masks``/``valids`` at those sizes;
        ``strength`` scales the skips' masked AdaIN (``None``: full)."""
        x = deep
        level = len(skips)
        *body, (last, _, _, _) = self.layers
        for name, _, _, upsample in body:
            x = self.convs[name](x).relu_()
            if upsample:
                x = _up(x)
                level -= 1
                if not len(self.skips):
                    continue
                skip = skips[level]
                if self.skip_adain:
                    valid = valids[level] if valids else None
                    skip = masked_adain(skip, masks[level], valid, strength)
                x = x.add_(self.skips[level](skip))  # in place: a full-size map less
        return self.convs[last](x)


#: Encoder name -> the inverter plan its decoder starts from (others get :class:`Decoder`).
INVERTERS = {"vgg19-relu3": INVERTER_LAYERS, "cd16x-relu4": CD16X_INVERTER_LAYERS}


def build_decoder(
    encoder: str, channels: tuple[int, ...], skip_adain: bool, skips: bool = True
) -> nn.Module:
    """The decoder that belongs to an encoder: a pretrained inverter's plan where one exists."""
    layers = INVERTERS.get(encoder)
    if layers is not None:
        return InverterDecoder(skip_adain, layers, skips)
    return Decoder(channels, skip_adain)
