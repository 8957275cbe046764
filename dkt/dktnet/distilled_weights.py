"""Loading Collaborative Distillation's "16x" files into :mod:`dkt.dktnet.distilled` modules.

The files (``cd16x_encoder_relu4_1.pth``, ``cd16x_decoder_relu4_1.pth`` and their relu5_1
siblings, see ``shared/weights/MANIFEST.md``) are ``{"epoch": N, "model": state_dict}``
dicts keyed by layer name (``conv11``, ``conv41_aux``, ...); they are read with
``torch.load(weights_only=True)`` through :func:`read_state_dict`, never unpickled. A file's
depth (relu4_1 or relu5_1) is read from its keys.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dkt.dktnet.decoder import CD16X_INVERTER_LAYERS
from dkt.dktnet.distilled import CD16X_AUX, CD16X_DEPTHS, DistilledEncoder
from dkt.dktnet.vgg_weights import inverter_state, read_state_dict
from dkt.errors import CheckpointError

__all__ = [
    "is_distilled_encoder_state",
    "load_distilled_decoder_state",
    "load_distilled_encoder",
]


def is_distilled_encoder_state(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` holds a distilled encoder (its own layer names, 16 filters first)."""
    w = state.get("conv11.weight")
    return w is not None and tuple(w.shape) == (16, 3, 3, 3) and "conv41.weight" in state


def _depth(state: dict[str, torch.Tensor]) -> str:
    return "relu5_1" if f"{CD16X_DEPTHS['relu5_1']}.weight" in state else "relu4_1"


def load_distilled_encoder(
    path: str | Path, *, aux: bool = False, depth: str | None = None
) -> DistilledEncoder:
    """The distilled encoder in ``path`` (frozen), to ``depth`` (``None``: as deep as the file).

    ``aux`` also loads the 1x1 convolutions that approximate the real VGG-19's taps (what a
    loss network reads). A depth the file does not reach, a missing tensor or a wrong shape
    is a :class:`CheckpointError` naming the file.
    """
    state = read_state_dict(path)
    if not is_distilled_encoder_state(state):
        raise CheckpointError(path, "not a distilled VGG-19 (cd16x) encoder: no 16-filter conv11")
    found = _depth(state)
    if depth == "relu5_1" and found != "relu5_1":
        raise CheckpointError(path, "the distilled encoder stops at relu4_1, relu5_1 was asked for")
    encoder = DistilledEncoder(depth=depth or found, aux=aux)
    wanted = {}
    for name in encoder.state_dict():
        key = name.removeprefix("convs.")
        if name.startswith("aux."):
            key = name.removeprefix("aux.").replace(".", "_aux.", 1)
        tensor = state.get(key)
        expected = encoder.state_dict()[name].shape
        if tensor is None or tensor.shape != expected:
            got = "missing" if tensor is None else f"shape {list(tensor.shape)}"
            raise CheckpointError(
                path, f"distilled encoder tensor {key} is {got}, expected {list(expected)}"
            )
        wanted[name] = tensor.float()
    encoder.load_state_dict(wanted, strict=True)
    return encoder.eval()


def load_distilled_decoder_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The relu4_1 decoder's tensors, named as :class:`InverterDecoder`'s main path."""
    return inverter_state(path, CD16X_INVERTER_LAYERS, str, "distilled relu4_1 decoder")


#: The aux taps' names, for provenance: which VGG-19 tap each approximates.
AUX_TAPS = tuple(tap for tap, _ in CD16X_AUX.values())
