"""The patch discriminator of L_adv (METHOD.md "Training objective").

It scores every patch of an image with one raw least-squares number: 1 means "this patch holds
a pasted object", 0 means "untouched painting" (targets in
:func:`training.losses.patch_targets`).

Design choices, and why:
- Every downsampling conv is 4x4, stride 2, padding 1, and the two stride-1 convs are 3x3 with
  padding 1. Each level then maps a side ``n`` to exactly ``n // 2``, so the score grid is
  ``(H // stride, W // stride)`` for any size, odd ones included, and score ``(i, j)`` is
  centred on the pixel block ``[i*stride, (i+1)*stride)``: the area-downsampled mask lines up
  with the scores without any cropping.
- No normalisation on the first and last convs (pix2pix practice: the first layer sees raw
  colours, which are the very cue a pasted photo gives away; the last layer is the regressor).
- Spectral normalisation (optional, on by default): it bounds every conv's gain, so the
  discriminator's scores and its gradient to the generator stay in a fixed range even when it
  overpowers a small generator trained on a CPU; LSGAN has no built-in saturation to do that.
  Its cost is one power iteration per conv per training forward, negligible next to the convs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from dkt.limits import MIN_DISCRIMINATOR_SIDE

NORMS = ("instance", "none")


class PatchDiscriminator(nn.Module):
    """PatchGAN-style scorer: ``layers`` stride-2 convs, one stride-1 conv, a 1-channel head.

    With the defaults (``in_channels=3, channels=64, layers=3``) it has 1,844,545 parameters
    (1,843,649 with ``norm="none"``; spectral norm adds none), an output stride of 8 and a
    receptive field of 54 px; at 256 x 256 a forward pass is about 2.3 GMAC per image.
    ``channels=32`` has a quarter of the parameters and compute (463,521) for CPU-bound runs.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 64,
        layers: int = 3,
        norm: str = "instance",
        spectral: bool = True,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if layers < 1 or channels < 1 or in_channels < 1:
            raise ValueError("in_channels, channels and layers must be >= 1")
        self.layers = layers

        def conv(cin: int, cout: int, kernel: int, stride: int, bias: bool) -> nn.Module:
            layer = nn.Conv2d(cin, cout, kernel, stride=stride, padding=1, bias=bias)
            return _spectral_norm(layer) if spectral else layer

        def block(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
            normed = norm == "instance"
            # A bias before an instance norm is removed by it anyway.
            mods = [conv(cin, cout, kernel, stride, bias=not normed)]
            if normed:
                mods.append(nn.InstanceNorm2d(cout, affine=True))
            mods.append(nn.LeakyReLU(0.2, inplace=True))
            return mods

        width = [channels * min(2**i, 8) for i in range(layers + 1)]
        mods: list[nn.Module] = [
            conv(in_channels, width[0], 4, 2, bias=True),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for i in range(1, layers):
            mods += block(width[i - 1], width[i], 4, 2)
        mods += block(width[layers - 1], width[layers], 3, 1)
        mods.append(conv(width[layers], 1, 3, 1, bias=True))
        self.net = nn.Sequential(*mods)

    @property
    def min_side(self) -> int:
        """Smallest H, W accepted: 32 px, and at least a 2 x 2 score grid for deep variants."""
        return max(MIN_DISCRIMINATOR_SIDE, 2 * self.stride)

    @property
    def stride(self) -> int:
        """Pixels per score along each side."""
        return 2**self.layers

    def patch_grid(self, size: tuple[int, int]) -> tuple[int, int]:
        """The score grid ``(h, w)`` for an ``(H, W)`` input."""
        h, w = size
        return h // self.stride, w // self.stride

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Raw least-squares scores (B, 1, H // stride, W // stride) for images (B, C, H, W).

        Smaller sides are refused (see :attr:`min_side`): the instance norm of the deepest
        level would see too few positions to mean anything (one is an error in training mode).
        """
        h, w = image.shape[-2:]
        if min(h, w) < self.min_side:
            raise ValueError(f"the discriminator needs H, W >= {self.min_side}, got {h}x{w}")
        return self.net(image)
