"""Loading VGG-19 weights into :class:`~dkt.dktnet.encoders.VGG19Encoder`.

Two public layouts exist and users hold one or the other:
- AdaIN's ``vgg_normalised.pth``: an ``nn.Sequential`` whose keys are bare indices
  (``0.weight`` is a 1x1 conv 3->3 that already maps RGB in [0,1] to the network's input).
- torchvision's ImageNet ``vgg19`` (``features.N.weight``), which expects ImageNet-normalised
  input; that normalisation becomes the fixed 1x1 ``conv0`` here.
The layout is detected from the keys, and so is the depth: a file that stops after conv3_1
(the truncated VGG of WCT, whose feature inverter is public too) loads as a relu3_1 network
with three taps, never padded out with invented relu4_1 weights. Files are read as
safetensors, or as ``.pth`` through ``torch.load(weights_only=True)``, which only rebuilds
tensors and plain containers and refuses arbitrary pickled objects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dkt.dktnet.decoder import INVERTER_LAYERS
from dkt.dktnet.encoders import VGG19_DEPTHS, VGG19_LAYERS, VGG19Encoder, vgg19_layers
from dkt.errors import CheckpointError

ADAIN_INDEX = {
    "conv0": 0, "conv1_1": 2, "conv1_2": 5, "conv2_1": 9, "conv2_2": 12, "conv3_1": 16,
    "conv3_2": 19, "conv3_3": 22, "conv3_4": 25, "conv4_1": 29,
}  # fmt: skip
TORCHVISION_INDEX = {
    "conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10,
    "conv3_2": 12, "conv3_3": 14, "conv3_4": 16, "conv4_1": 19,
}  # fmt: skip
#: The relu3_1 feature inverter's ``nn.Sequential`` indices (WCT's ``feature_invertor_conv3_1``).
INVERTER_INDEX = {"conv3_1": 1, "conv2_2": 5, "conv2_1": 8, "conv1_2": 12, "conv1_1": 15}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONV_NAMES = tuple(name for name, _, _ in VGG19_LAYERS if name != "pool")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` or ``.pth`` file, without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"cannot read weights ({first_line})") from exc
    # Training checkpoints wrap the tensors: {"state_dict": ...}, or Collaborative
    # Distillation's {"epoch": N, "model": ...}.
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "not a state dict of tensors")
    return state


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """``"adain"``, ``"torchvision"`` or ``"dkt"`` (already this module's names)."""
    if "conv0.weight" in state and "convs.conv1_1.weight" in state:
        return "dkt"
    w0 = state.get("0.weight")
    if w0 is not None and tuple(w0.shape) == (3, 3, 1, 1) and "2.weight" in state:
        return "adain"
    w0 = state.get("features.0.weight")
    if w0 is not None and tuple(w0.shape) == (64, 3, 3, 3):
        return "torchvision"
    raise ValueError("keys match neither AdaIN's vgg_normalised nor torchvision's vgg19")


def imagenet_input_conv() -> dict[str, torch.Tensor]:
    """The fixed 1x1 conv that turns RGB in [0,1] into ImageNet-normalised input."""
    std = torch.tensor(IMAGENET_STD)
    mean = torch.tensor(IMAGENET_MEAN)
    return {"conv0.weight": torch.diag(1.0 / std)[:, :, None, None], "conv0.bias": -mean / std}


#: Which depths a file of a given depth can give (a relu4_1 file also gives relu3_1).
_DEPTHS_UP_TO = {"relu3_1": ("relu3_1",), "relu4_1": ("relu3_1", "relu4_1")}


def _layout_keys(layout: str) -> tuple[dict[str, int], str]:
    return (ADAIN_INDEX, "") if layout == "adain" else (TORCHVISION_INDEX, "features.")


def detect_depth(state: dict[str, torch.Tensor]) -> str:
    """The deepest VGG-19 tap the file is meant to reach (``relu4_1`` or ``relu3_1``).

    A file with any tensor of a layer past conv3_1 is a relu4_1 file: if some of its
    tensors are then missing it is damaged, and loading names what is missing rather than
    quietly treating it as a shorter network.
    """
    layout = detect_layout(state)
    names = [name for name, _, _ in VGG19_LAYERS if name != "pool"]
    deeper = names[names.index(VGG19_DEPTHS["relu3_1"]) + 1 :]
    if layout == "dkt":
        keys = [f"convs.{name}." for name in deeper]
    else:
        index, prefix = _layout_keys(layout)
        keys = [f"{prefix}{index[name]}." for name in deeper]
    if any(k.startswith(tuple(keys)) for k in state):
        return "relu4_1"
    return "relu3_1"


def to_encoder_state(
    state: dict[str, torch.Tensor], depth: str = "relu4_1"
) -> dict[str, torch.Tensor]:
    """Rename a detected layout's tensors to :class:`VGG19Encoder`'s names, up to ``depth``."""
    layout = detect_layout(state)
    names = {"conv0", *(name for name, _, _ in vgg19_layers(depth) if name != "pool")}
    if layout == "dkt":
        prefixes = tuple(f"{'convs.' if n != 'conv0' else ''}{n}." for n in names)
        return {k: v for k, v in state.items() if k.startswith(prefixes)}
    index, prefix = _layout_keys(layout)
    out = {} if layout == "adain" else imagenet_input_conv()
    for name, i in index.items():
        if name not in names or (name == "conv0" and layout != "adain"):
            continue
        target = "conv0" if name == "conv0" else f"convs.{name}"
        for part in ("weight", "bias"):
            out[f"{target}.{part}"] = state[f"{prefix}{i}.{part}"].float()
    return out


def load_vgg19_encoder(
    path: str | Path, trainable: bool = False, depth: str | None = None
) -> VGG19Encoder:
    """A VGG-19 encoder with pretrained weights from ``path`` (layout detected from its keys).

    ``depth`` ``None`` takes as deep as the file goes; a depth the file does not reach is an
    error naming what it does hold.
    """
    state = read_state_dict(path)
    try:
        found = detect_depth(state)
        if depth is not None and depth not in _DEPTHS_UP_TO[found]:
            raise ValueError(f"it stops at {found}, {depth} was asked for")
        depth = depth or found
        encoder_state = to_encoder_state(state, depth)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(path, f"not VGG-19 weights: {exc}") from exc
    encoder = VGG19Encoder(trainable=trainable, depth=depth)
    for name, tensor in encoder.state_dict().items():
        found = encoder_state[name].shape
        if found != tensor.shape:
            raise CheckpointError(
                path, f"VGG-19 tensor {name} has shape {list(found)}, expected {list(tensor.shape)}"
            )
    encoder.load_state_dict(encoder_state, strict=True)
    return encoder


def inverter_state(
    path: str | Path,
    layers: tuple[tuple[str, int, int, bool], ...],
    key: Callable[[str], str],
    what: str,
) -> dict[str, torch.Tensor]:
    """A pretrained inverter's 3x3 convs (file key ``key(name)``) as :class:`InverterDecoder`'s.

    Every layer must be there with its exact shape; anything else is a one-line error
    naming the file, ``what`` it should have been and the layer.
    """
    state = read_state_dict(path)
    out = {}
    for name, cin, cout, _ in layers:
        weight, bias = state.get(f"{key(name)}.weight"), state.get(f"{key(name)}.bias")
        if weight is None or bias is None or tuple(weight.shape) != (cout, cin, 3, 3):
            raise CheckpointError(
                path, f"not a {what}: layer {key(name)} must be a 3x3 conv {cin}->{cout}"
            )
        out[f"convs.{name}.weight"], out[f"convs.{name}.bias"] = weight.float(), bias.float()
    return out


def load_inverter_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The relu3_1 feature inverter's tensors, named as :class:`InverterDecoder`'s main path."""
    return inverter_state(
        path, INVERTER_LAYERS, lambda name: str(INVERTER_INDEX[name]), "relu3_1 feature inverter"
    )


def random_vgg19_encoder(seed: int) -> VGG19Encoder:
    """A seeded random-weight VGG-19: the stand-in loss network where no pretrained one exists.

    He-initialised convolutions keep activation scales roughly constant with depth, so the
    style statistics of every tap stay informative rather than vanishing or exploding.
    """
    generator = torch.Generator().manual_seed(seed)
    encoder = VGG19Encoder(trainable=False)
    state = imagenet_input_conv()
    for name, cin, cout in VGG19_LAYERS:
        if name == "pool":
            continue
        std = (2.0 / (cin * 9)) ** 0.5
        state[f"convs.{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * std
        state[f"convs.{name}.bias"] = torch.zeros(cout)
    encoder.load_state_dict(state, strict=True)
    return encoder
