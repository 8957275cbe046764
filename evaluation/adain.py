"""The training-free ``adain`` baseline: masked AdaIN at relu3_1, decoded by the inverter.

The object's relu3_1 features (pretrained VGG-19) get the painting's per-channel mean and
standard deviation, and the pretrained feature inverter turns them back into an image,
which is pasted back under the mask. No training at all, and it already puts painterly
texture into the object: a learned model that does not beat it on texture has learnt
nothing about strokes. It runs at the composite's own size (the encoder is 5 layers deep,
so a 512 px image takes a fraction of a second on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dkt.dktnet.decoder import InverterDecoder
from dkt.dktnet.model import blend, pad_to_multiple
from dkt.dktnet.stats import masked_adain, resize_mask
from dkt.dktnet.vgg_weights import load_inverter_state, load_vgg19_encoder

__all__ = ["MaskedAdaIN"]


class MaskedAdaIN:
    """``(composite uint8 (H,W,3), mask float (H,W)) -> uint8 (H,W,3)``, like the baselines."""

    def __init__(self, vgg: str | Path, inverter: str | Path, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.encoder = load_vgg19_encoder(vgg, depth="relu3_1").to(self.device).eval()
        decoder = InverterDecoder(skip_adain=False)  # skips start at zero: the pure inverter
        decoder.load_state_dict(load_inverter_state(inverter), strict=False)
        self.decoder = decoder.to(self.device).eval()
        self.files = {"vgg": Path(vgg).name, "inverter": Path(inverter).name}

    @torch.inference_mode()
    def render(self, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W), (B,1,H,W) in [0, 1] -> the blended result, same shape."""
        h, w = composite.shape[-2:]
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
