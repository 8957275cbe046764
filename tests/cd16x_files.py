"""Self-made files in the layout of Collaborative Distillation's "16x" weights (random values).

The real files (``shared/weights/cd16x_*.pth``) are ``{"epoch": N, "model": state_dict}``
keyed by layer name (``conv11``, ``conv41_aux``, ...). These have the same keys and shapes
with seeded random values: what the loading and plumbing tests need, without the real files.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dkt.dktnet.decoder import CD16X_INVERTER_LAYERS
from dkt.dktnet.distilled import DistilledEncoder


def write_cd16x_encoder(path: Path, depth: str = "relu4_1", seed: int = 0) -> Path:
    """A random distilled encoder to ``depth``, aux convolutions included, saved at ``path``."""
    generator = torch.Generator().manual_seed(seed)
    encoder = DistilledEncoder(depth=depth, aux=True)
    # The real input conv (RGB in [0, 1] -> BGR x 255 minus the Caffe mean), then
    # He-normal filters, so activations neither die out nor blow up with depth.
    with torch.no_grad():
        encoder.conv0.weight.copy_(
            torch.tensor([[0, 0, 255.0], [0, 255.0, 0], [255.0, 0, 0]])[..., None, None]
        )
        encoder.conv0.bias.copy_(torch.tensor([-103.939, -116.779, -123.68]))
        for module in [*encoder.convs.values(), *encoder.aux.values()]:
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
            module.weight.mul_((2.0 / fan_in) ** 0.5)
            module.bias.zero_()
    state = {}
    for name, tensor in encoder.state_dict().items():
        key = name.removeprefix("convs.")
        if name.startswith("aux."):
            key = name.removeprefix("aux.").replace(".", "_aux.", 1)
        state[key] = tensor.clone()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 1, "model": state}, path)
    return path


def write_cd16x_decoder(path: Path, seed: int = 0) -> Path:
    """A random relu4_1 decoder (128 -> RGB) in the real file's layout, saved at ``path``."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, cin, cout, _ in CD16X_INVERTER_LAYERS:
        scale = (2.0 / (9 * cin)) ** 0.5
        state[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * scale
        state[f"{name}.bias"] = torch.full((cout,), 0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 1, "model": state}, path)
    return path
