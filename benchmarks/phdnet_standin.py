"""A random-weight, layer-for-layer timing stand-in for PHDNet's dual-domain generator.

PHDNet: Junyan Cao, Yan Hong, Li Niu, "Painterly Image Harmonization in Dual Domains",
AAAI 2023. This module is NOT PHDNet and has none of its weights: it is written here from the
generator's public layer list so that a benchmark can time the same work, convolution by
convolution, on the same machine. Its weights are seeded random numbers (He-normal, so the
activations keep a realistic magnitude and never sink into slow denormal floats); its output
is meaningless as an image. Use it for timing only.

Where the layer list comes from (read for the list of layers only; no code is copied):

* ``bcmi/PHDNet-Painterly-Image-Harmonization``, commit
  ``30a6668cb31850f5f9cb66e2c40a6feae872daf6``: ``PHDNet/models/networks.py`` (the ``vgg``
  and ``decoder_cat`` layer lists, ``ResBlock``, ``ResFFT`` and ``PHDNet``),
  ``PHDNet/models/phdnet_model.py`` (VGG truncated to its first 31 layers, i.e. to relu4_1)
  and ``PHDNet/scripts/test_phd.sh`` (the released configuration: ``is_skip=1``,
  ``is_fft=1``, ``fft_num=3``, ``is_matting=1``).
* ``bcmi/libcom``, commit ``fe5b5b1fa4ddcbc7af8f6d6741f4dd11736717e4``:
  ``libcom/painterly_image_harmonization/source/PHDNet/networks.py`` and ``phdnet.py`` (the
  inference path ``netG(composite, mask)``, with the target style statistics taken from the
  composite's background, i.e. outside the mask). libcom's copy has no frequency blocks;
  they come from the PHDNet repository above.

The generator, with the released configuration (82,999,249 parameters, all counted here):

* VGG-19 encoder (normalised VGG, reflection padding, ceil-mode 2x2 max-pool) up to
  relu4_1: a 1x1 conv 3->3, then 3x3 convs 3->64 (relu1_1) | 64->64, pool, 64->128
  (relu2_1) | 128->128, pool, 128->256 (relu3_1) | 3x 256->256, pool, 256->512 (relu4_1).
  3,505,740 parameters.
* Foreground AdaIN at each of the four taps: the features inside the (nearest-downsampled)
  mask are re-normalised to the mean/std of the background (no parameters).
* Frequency ("dual-domain") blocks, one per tap: real 2-D FFT (``rfft2``, ortho) of the
  C-channel feature, real and imaginary parts as 2C channels on an H x (W/2+1) grid, three
  residual blocks ``relu(conv3x3(relu(conv3x3(x))) + x)`` (2C->2C, zero padding, bias), back
  with the inverse real FFT; the result replaces the feature. 2C = 1024 at relu4_1 (the
  bottleneck), 512 / 256 / 128 on the relu3_1 / relu2_1 / relu1_1 skips. 75,214,080 parameters.
* Decoder (reflection padding, 3x3 convs, ReLU, 2x nearest upsampling), each stage fed the
  concatenation of the previous stage and the processed skip: 512->256, up | 512->256,
  256->256, 256->256, 256->128, up | 256->128, 128->64, up | 128->64; then a 1x1 conv 65->1
  on [features, mask] with a sigmoid (the blending map) and a 3x3 conv 64->3 (the coarse
  image); output = map * coarse + (1 - map) * composite. 4,279,429 parameters.

The PHDNet repository's training/test ``forward`` also encodes a separate style image (and
re-encodes its outputs for its losses); pass ``style=`` to :meth:`PHDNetStandIn.forward` to
add that second encoder pass. The default is libcom's single-pass inference path, the
cheaper of the two, so a speed-up measured against it is not overstated.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

#: The released generator's parameter count (all parameters, the frozen VGG included).
PHDNET_PARAMETERS = 82_999_249

#: Residual blocks per frequency block in the released configuration (``fft_num``).
FFT_BLOCKS = 3

_EPS = 1e-5


def _conv3x3_reflect(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3)]


def _relu_convs(channels: list[int]) -> list[nn.Module]:
    """Reflection-padded 3x3 convs, each followed by a ReLU: channels[0] -> ... -> channels[-1]."""
    layers: list[nn.Module] = []
    for cin, cout in itertools.pairwise(channels):
        layers += [*_conv3x3_reflect(cin, cout), nn.ReLU()]
    return layers


def _pool() -> nn.Module:
    return nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)


def _up() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")


class _SpectralResidual(nn.Module):
    """relu(conv3x3(relu(conv3x3(x))) + x), zero padding, on the spectral channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv_b = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv_b(F.relu(self.conv_a(x))) + x)


class _FrequencyBlock(nn.Module):
    """rfft2 (ortho) -> [re, im] as 2C channels -> residual blocks -> irfft2 back to C channels."""

    def __init__(self, feature_channels: int, blocks: int = FFT_BLOCKS) -> None:
        super().__init__()
        self.body = nn.Sequential(*[_SpectralResidual(2 * feature_channels) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        spec = torch.fft.rfft2(x, norm="ortho")  # (B, C, H, W//2+1) complex
        parts = torch.stack((spec.real, spec.imag), dim=2)  # (B, C, 2, H, W//2+1)
        y = self.body(parts.reshape(b, 2 * c, h, spec.shape[-1]))
        y = y.reshape(b, c, 2, h, spec.shape[-1])
        return torch.fft.irfft2(torch.complex(y[:, :, 0], y[:, :, 1]), s=(h, w), norm="ortho")


def _masked_mean_std(feat: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-channel mean and std of ``feat`` weighted by ``region`` (B,1,h,w) in [0,1]."""
    count = region.sum(dim=(2, 3), keepdim=True) + _EPS
    mean = (feat * region).sum(dim=(2, 3), keepdim=True) / count
    var = (((feat - mean) * region) ** 2).sum(dim=(2, 3), keepdim=True) / count
    return mean, torch.sqrt(var + _EPS)


def _foreground_adain(
    feat: torch.Tensor, mask: torch.Tensor, style: torch.Tensor | None
) -> torch.Tensor:
    """Re-normalise the masked features to the background's (or ``style``'s) statistics."""
    fg_mean, fg_std = _masked_mean_std(feat, mask)
    if style is None:
        st_mean, st_std = _masked_mean_std(feat, 1.0 - mask)
    else:
        st_mean, st_std = _masked_mean_std(style, torch.ones_like(style[:, :1]))
    moved = (feat - fg_mean) / fg_std * st_std + st_mean
    return moved * mask + feat * (1.0 - mask)


class PHDNetStandIn(nn.Module):
    """PHDNet's released generator, layer for layer, with random weights (timing only).

    ``forward(composite, mask)``: composite (B,3,H,W) in [0,1], mask (B,1,H,W) in [0,1], H and
    W multiples of 8 (as PHDNet, which runs at 256 or 512); returns (B,3,H,W).
    """

    def __init__(self, fft_blocks: int = FFT_BLOCKS) -> None:
        super().__init__()
        # VGG-19 to relu4_1, split at relu1_1 / relu2_1 / relu3_1 / relu4_1.
        self.enc1 = nn.Sequential(nn.Conv2d(3, 3, kernel_size=1), *_relu_convs([3, 64]))
        self.enc2 = nn.Sequential(*_relu_convs([64, 64]), _pool(), *_relu_convs([64, 128]))
        self.enc3 = nn.Sequential(*_relu_convs([128, 128]), _pool(), *_relu_convs([128, 256]))
        self.enc4 = nn.Sequential(
            *_relu_convs([256, 256, 256, 256]), _pool(), *_relu_convs([256, 512])
        )
        # Frequency blocks on the bottleneck (relu4_1) and the three skips.
        self.freq4 = _FrequencyBlock(512, fft_blocks)
        self.freq3 = _FrequencyBlock(256, fft_blocks)
        self.freq2 = _FrequencyBlock(128, fft_blocks)
        self.freq1 = _FrequencyBlock(64, fft_blocks)
        # Decoder.
        self.dec4 = nn.Sequential(*_relu_convs([512, 256]), _up())
        self.dec3 = nn.Sequential(*_relu_convs([512, 256, 256, 256, 128]), _up())
        self.dec2 = nn.Sequential(*_relu_convs([256, 128, 64]), _up())
        self.dec1 = nn.Sequential(*_relu_convs([128, 64]))
        self.blend_map = nn.Conv2d(65, 1, kernel_size=1)
        self.to_rgb = nn.Sequential(*_conv3x3_reflect(64, 3))

    def _encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        x = image
        for stage in (self.enc1, self.enc2, self.enc3, self.enc4):
            x = stage(x)
            taps.append(x)
        return taps

    @staticmethod
    def _mask_at(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(mask, size=like.shape[-2:], mode="nearest").clamp(0.0, 1.0)

    def forward(
        self,
        composite: torch.Tensor,
        mask: torch.Tensor,
        style: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if composite.shape[-2] % 8 or composite.shape[-1] % 8:
            raise ValueError(f"height and width must be multiples of 8, got {composite.shape}")
        mask = mask.to(composite.dtype)
        taps = self._encode(composite)
        style_taps = self._encode(style) if style is not None else [None] * 4
        freq = (self.freq1, self.freq2, self.freq3, self.freq4)
        skips = [
            block(_foreground_adain(t, self._mask_at(mask, t), s))
            for block, t, s in zip(freq, taps, style_taps, strict=True)
        ]
        x = self.dec4(skips[3])
        x = self.dec3(torch.cat([x, skips[2]], dim=1))
        x = self.dec2(torch.cat([x, skips[1]], dim=1))
        x = self.dec1(torch.cat([x, skips[0]], dim=1))
        alpha = torch.sigmoid(self.blend_map(torch.cat([x, self._mask_at(mask, x)], dim=1)))
        return alpha * self.to_rgb(x) + (1.0 - alpha) * composite


def build_phdnet_standin(seed: int = 0) -> PHDNetStandIn:
    """The stand-in in eval mode, no gradients, He-normal weights from ``seed``, zero biases.

    The global RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PHDNetStandIn()
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
    return model.eval().requires_grad_(False)
