"""The training-free ``adain`` baselines: masked AdaIN at one deep tap, decoded by its inverter.

The object's features at an encoder's deepest tap get the painting's per-channel mean and
standard deviation, and a pretrained decoder trained to invert that tap turns them back into
an image, which is pasted back under the mask (the painting is kept exactly). No training at
all, and it already puts painterly texture into the object: a learned model that does not
beat it on texture has learnt nothing about strokes. Two encoder/decoder pairs
(:data:`VARIANTS`):

* ``adain``: the real normalised VGG-19 to relu3_1 and WCT's relu3_1 feature inverter;
* ``adain-relu4``: the distilled VGG-19 *approximation* of Collaborative Distillation
  ("16x", 16/32/64/128 channels) to relu4_1, its native 128-channel relu4_1 features, and
  its relu4_1 decoder. Coarser, canvas-like texture than relu3_1; it is not VGG-19 and is
  never called so.

Both run at the composite's own size (a few layers deep, so a 512 px image takes a fraction
of a second on a CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dkt.dktnet.decoder import CD16X_INVERTER_LAYERS, INVERTER_LAYERS, InverterDecoder
from dkt.dktnet.distilled import DISTILLED_KIND
from dkt.dktnet.distilled_weights import load_distilled_decoder_state, load_distilled_encoder
from dkt.dktnet.model import blend, pad_to_multiple
from dkt.dktnet.pretrained import CD16X_RELU4_FILES, RELU3_FILES
from dkt.dktnet.stats import masked_adain, resize_mask
from dkt.dktnet.vgg_weights import load_inverter_state, load_vgg19_encoder

__all__ = ["ADAIN", "ADAIN_RELU4", "VARIANTS", "AdaINVariant", "MaskedAdaIN"]

ADAIN = "adain"
ADAIN_RELU4 = "adain-relu4"


@dataclass(frozen=True)
class AdaINVariant:
    """One encoder/decoder pair: the files it needs and how each is loaded.

    ``files`` are the encoder's and the decoder's file names (looked up together by
    :func:`dkt.dktnet.pretrained.find_pretrained`), ``roles`` what the description calls
    them; ``network`` is the encoder's provenance kind and ``label`` the method's name in
    words, as reports print it.
    """

    token: str
    label: str
    network: str
    depth: str
    files: tuple[str, str]
    roles: tuple[str, str]
    load_encoder: Callable[[Path], nn.Module]
    load_decoder_state: Callable[[Path], dict[str, torch.Tensor]]
    decoder_layers: tuple[tuple[str, int, int, bool], ...]


VARIANTS: dict[str, AdaINVariant] = {
    ADAIN: AdaINVariant(
        token=ADAIN,
        label="adain (VGG-19 relu3_1, WCT feature inverter)",
        network="vgg19",
        depth="relu3_1",
        files=RELU3_FILES,
        roles=("vgg", "inverter"),
        load_encoder=lambda path: load_vgg19_encoder(path, depth="relu3_1"),
        load_decoder_state=load_inverter_state,
        decoder_layers=INVERTER_LAYERS,
    ),
    ADAIN_RELU4: AdaINVariant(
        token=ADAIN_RELU4,
        label="adain-relu4 (distilled VGG-19 approximation, cd16x)",
        network=DISTILLED_KIND,
        depth="relu4_1",
        files=CD16X_RELU4_FILES,
        roles=("encoder", "decoder"),
        load_encoder=lambda path: load_distilled_encoder(path, depth="relu4_1"),
        load_decoder_state=load_distilled_decoder_state,
        decoder_layers=CD16X_INVERTER_LAYERS,
    ),
}


class MaskedAdaIN:
    """``(composite uint8 (H,W,3), mask float (H,W)) -> uint8 (H,W,3)``, like the baselines.

    ``encoder`` and ``decoder`` are the variant's two files (``variant``: a key of
    :data:`VARIANTS`, ``adain`` by default).
    """

    def __init__(
        self,
        encoder: str | Path,
        decoder: str | Path,
        device: str = "cpu",
        *,
        variant: str = ADAIN,
    ) -> None:
        self.variant = VARIANTS[variant]
        self.device = torch.device(device)
        self.encoder = self.variant.load_encoder(Path(encoder)).to(self.device).eval()
        # The inverter alone (no skips): exactly the pretrained decoder.
        inverter = InverterDecoder(
            skip_adain=False, layers=self.variant.decoder_layers, skips=False
        )
        inverter.load_state_dict(self.variant.load_decoder_state(Path(decoder)), strict=True)
        self.decoder = inverter.to(self.device).eval()
        enc_role, dec_role = self.variant.roles
        self.files = {enc_role: Path(encoder).name, dec_role: Path(decoder).name}

    def describe(self) -> dict[str, object]:
        """What a report says about this baseline: its label, network, tap and files."""
        return {
            "label": self.variant.label,
            "network": self.variant.network,
            "tap": self.variant.depth,
            "weights": dict(self.files),
        }

    @torch.inference_mode()
    def render(self, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W), (B,1,H,W) in [0, 1] -> the blended result, same shape."""
        h, w = composite.shape[-2:]
        # Padded to a multiple of 8: both variants' deepest strides (4 and 8) divide it.
        valid = pad_to_multiple(torch.ones_like(mask), mode="constant")
        padded_mask = pad_to_multiple(mask, mode="constant")
        taps = self.encoder(pad_to_multiple(composite))
        stride = 2 ** (len(taps) - 1)
        deep = masked_adain(taps[-1], resize_mask(padded_mask, stride), resize_mask(valid, stride))
        empty = [torch.zeros_like(t[:, :1]) for t in taps[:-1]]
        image = self.decoder(deep, taps[:-1], empty)[..., :h, :w]
        return blend(composite, image, mask)

    def __call__(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        comp = torch.from_numpy(np.ascontiguousarray(composite)).to(self.device)
        comp = comp.permute(2, 0, 1)[None].float() / 255.0
        m = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None].to(self.device)
        out = self.render(comp, m)[0].permute(1, 2, 0).cpu().numpy()
        result = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        return np.where(np.asarray(mask)[..., None] > 0, result, composite)
