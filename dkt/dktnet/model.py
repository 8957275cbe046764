"""DKTNet: encoder -> bi-transformation with dynamic kernels -> decoder -> blend.

``forward`` is the inference contract every backend reproduces: any H x W (padded to the
encoder's multiple and cropped back), one mask per image, output in [0, 1] that equals the
composite wherever the mask is 0, and is finite everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dkt.dktnet.bitransform import BiTransformation
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.decoder import build_decoder
from dkt.dktnet.encoders import build_encoder
from dkt.dktnet.stats import RegionStats, resize_mask
from dkt.dktnet.strength import toward
from dkt.limits import MODEL_PADDED_SIDE

STRIDES = (1, 2, 4, 8)
#: Inputs are padded to a multiple of the deepest stride any encoder has (8; vgg19-relu3's
#: deepest is 4, and a multiple of 8 is one of 4 too), so one padding rule serves all.
MULTIPLE = STRIDES[-1]
#: Full-resolution feature maps alive at once at the peak of a forward pass (measured 6.4).
FULL_RESOLUTION_MAPS = 8


class NetworkOutput(NamedTuple):
    """What training needs beyond the image: the standard-style features and statistics."""

    image: torch.Tensor  # decoder output before clamping and blending, (B, 3, H, W)
    standard: torch.Tensor  # F_std at stride 8
    harmonized_features: torch.Tensor  # F~_c at stride 8
    fg_stats: RegionStats
    bg_stats: RegionStats
    kernel_weights: tuple[torch.Tensor, ...]  # (B, K) per kernel generator


def pad_to_multiple(
    x: torch.Tensor,
    multiple: int = MULTIPLE,
    min_side: int = MODEL_PADDED_SIDE,
    mode: str = "replicate",
) -> torch.Tensor:
    """Pad H and W up to a multiple and at least ``min_side`` (any input, even 1 px).

    Images are replicate-padded (the encoder sees no artificial edge); masks and validity
    maps are zero-padded (``mode="constant"``), so padding belongs to neither region. The
    pad is applied even when it is zero: a shape-dependent early return would be frozen
    into an exported graph at the example input's size (see :mod:`dkt.export.onnx`).
    The minimum side only concerns inputs under 16 px, which export profiles never admit.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if h < min_side or w < min_side:
        pad_h, pad_w = max(min_side - h, pad_h), max(min_side - w, pad_w)
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def blend(composite: torch.Tensor, generated: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the composite where the mask is 0, exactly, whatever ``generated`` holds.

    ``NaN * 0`` is NaN, so a plain ``x*(1-m) + y*m`` would let a non-finite pixel of the
    decoder into the painting: the merge is a ``where`` on ``m > 0``. Inside the object a
    non-finite value stays NaN (``clamp`` would turn an infinity into 0 or 1), so the caller
    sees a broken model and fails the image; replacing it with the composite's pixels hid a
    NaN model as a success that returned the composite unchanged.
    """
    safe = torch.where(torch.isfinite(generated), generated.clamp(0.0, 1.0), torch.nan)
    mixed = composite * (1.0 - mask) + safe * mask
    return torch.where(mask > 0, mixed, composite)


class DKTNet(nn.Module):
    """DKTNet in three nested stages, each the one its callers need:

    * :meth:`run_padded`: the network proper, on inputs padded to a multiple of 8, with
      every intermediate training needs (standard-style features, statistics, kernels);
    * :meth:`unblended`: any H x W in, the decoder's image out at that size, not yet clamped
      nor blended (what an export and a parity check compare);
    * :meth:`forward`: the harmonized image: :meth:`unblended` blended into the composite
      by the mask, every background pixel exactly the composite's.

    Each takes an optional ``strength``, a float32 tensor of shape [1] in [0, 1] (an exported
    graph's third input): the features, the skips and the image move only that far from the
    composite's own (:mod:`dkt.dktnet.strength`). ``None`` is full strength with no extra
    operation: the network exactly as it was before strength existed.
    """

    def __init__(self, config: DKTNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or DKTNetConfig()
        cfg = self.config
        channels = cfg.channels
        self.strides = cfg.strides
        self.encoder = build_encoder(cfg.encoder, cfg.lite_channels)
        self.bitransform = BiTransformation(
            channels[-1], cfg.kernel_dim, cfg.prototypes, cfg.generator_hidden, cfg.cov_rank
        )
        self.decoder = build_decoder(
            cfg.encoder, channels, skip_adain=cfg.skip_adain, skips=cfg.decoder_skips
        )
        self.provenance: dict[str, object] = {}  # filled in by checkpoint loading

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(image)

    def run_padded(
        self,
        composite: torch.Tensor,
        mask: torch.Tensor,
        valid: torch.Tensor | None = None,
        strength: torch.Tensor | None = None,
    ) -> NetworkOutput:
        """Run the network on inputs whose H, W are multiples of 8; no clamping or blending.

        ``valid`` (B,1,H,W) is 1 on real pixels and 0 on padding (``mask`` is 0 there too);
        ``None`` means every pixel is real, as in training.
        """
        taps = self.encode(composite)
        masks = [resize_mask(mask, s) for s in self.strides]
        valids = None if valid is None else [resize_mask(valid, s) for s in self.strides]
        bt = self.bitransform(taps[-1], masks[-1], None if valids is None else valids[-1])
        deep = toward(taps[-1], bt.harmonized, strength)  # F_c + s * (F~_c - F_c)
        image = self.decoder(
            deep, taps[:-1], masks[:-1], None if valids is None else valids[:-1], strength
        )
        return NetworkOutput(
            image, bt.standard, bt.harmonized, bt.fg_stats, bt.bg_stats, bt.weights
        )

    def unblended(
        self, composite: torch.Tensor, mask: torch.Tensor, strength: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The decoder's image at the input's own H x W, before clamping and blending.

        At a ``strength`` below 1 the features and skips it decodes moved that far; the
        image itself is faded in by :meth:`forward`, on the composite's own values.
        """
        h, w = composite.shape[-2:]
        mask = mask.to(composite.dtype)
        valid = pad_to_multiple(torch.ones_like(mask), mode="constant")
        rendered = self.run_padded(
            pad_to_multiple(composite), pad_to_multiple(mask, mode="constant"), valid, strength
        )
        return rendered.image[..., :h, :w]

    def forward(
        self, composite: torch.Tensor, mask: torch.Tensor, strength: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Harmonize ``composite`` (B,3,H,W) in [0,1] inside ``mask`` (B,1,H,W) in [0,1].

        The decoder's image is faded in by ``strength`` before the exact blend:
        ``composite + s * (decoded - composite)``, the composite itself at 0.
        """
        mask = mask.to(composite.dtype)
        generated = toward(composite, self.unblended(composite, mask, strength), strength)
        return blend(composite, generated, mask)

    def autoencode(self, image: torch.Tensor) -> torch.Tensor:
        """D(E(I)) with no transform: what the reconstruction loss trains for a lite encoder."""
        h, w = image.shape[-2:]
        padded = pad_to_multiple(image)
        taps = self.encode(padded)
        empty = [torch.zeros_like(padded[:, :1, ::s, ::s]) for s in self.strides[:-1]]
        return self.decoder(taps[-1], taps[:-1], empty)[..., :h, :w]

    def working_bytes(self, height: int, width: int, batch: int = 1) -> int:
        """Estimated peak bytes of one float32 forward pass: :func:`estimate_working_bytes`."""
        return estimate_working_bytes(self.config, height, width, batch)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def estimate_working_bytes(config: DKTNetConfig, height: int, width: int, batch: int = 1) -> int:
    """Estimated peak bytes of one float32 forward pass at ``height`` x ``width``.

    Why: a working size far above what the machine holds is not an exception but the
    kernel's OOM killer, which takes the whole folder run with it; callers compare this
    estimate with the memory they have before they start. It needs only the config, so an
    exported graph (whose metadata records the config) is estimated without its weights.
    The peak is the full-resolution maps (the first encoder level's channels at stride 1):
    measured on the bundled model (64 channels), 1,650 bytes per pixel at 1536 x 1536,
    about 6.4 such maps alive at once; the estimate counts 8 and adds the inputs.
    """
    h, w = height + (-height) % MULTIPLE, width + (-width) % MULTIPLE
    maps = FULL_RESOLUTION_MAPS * config.channels[0]
    return 4 * batch * h * w * (maps + 3 + 1 + 3)
