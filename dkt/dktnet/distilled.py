"""The distilled VGG-19 of Collaborative Distillation ("16x"): an encoder, and loss-network taps.

Wang et al. (CVPR 2020) distilled the normalised VGG-19 into a network with the same layer
plan and 16x fewer filters (16/32/64/128 channels at relu1_1..relu4_1), plus 1x1 "aux"
convolutions trained so that ``relu(aux(feature))`` approximates the real VGG-19's
relu1_1..relu5_1. It reaches the paper's relu4_1 (about 68 px of receptive field, where
relu3_1 sees 24 px) for a small fraction of the full network's compute, which is why the
``cd16x-relu4`` model encodes with it.

It is an approximation of VGG-19, not VGG-19: every name and provenance record that comes
from this module says "distilled" (:data:`DISTILLED_KIND`), and the aux taps are never
reported as the real network's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from dkt.dktnet.encoders import Encoder, conv3x3, walk_layers

#: What provenance records call this network, so no reader mistakes it for VGG-19.
DISTILLED_KIND = "distilled-vgg19-cd16x"

# (name, in, out); "pool" is a 2x2 max-pool. Names are the weight files' own.
CD16X_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv11", 3, 16),
    ("conv12", 16, 16),
    ("pool", 0, 0),
    ("conv21", 16, 32),
    ("conv22", 32, 32),
    ("pool", 0, 0),
    ("conv31", 32, 64),
    ("conv32", 64, 64),
    ("conv33", 64, 64),
    ("conv34", 64, 64),
    ("pool", 0, 0),
    ("conv41", 64, 128),
    ("conv42", 128, 128),
    ("conv43", 128, 128),
    ("conv44", 128, 128),
    ("pool", 0, 0),
    ("conv51", 128, 128),
)
#: Tap (native conv name) -> the VGG-19 tap its aux convolution approximates, and that
#: tap's channel count in the real VGG-19.
CD16X_AUX = {
    "conv11": ("relu1_1", 64),
    "conv21": ("relu2_1", 128),
    "conv31": ("relu3_1", 256),
    "conv41": ("relu4_1", 512),
    "conv51": ("relu5_1", 512),
}
CD16X_DEPTHS = {"relu4_1": "conv41", "relu5_1": "conv51"}


def cd16x_layers(depth: str) -> tuple[tuple[str, int, int], ...]:
    """The layer list truncated after ``depth`` (``relu4_1`` or ``relu5_1``)."""
    if depth not in CD16X_DEPTHS:
        raise ValueError(f"distilled depth must be one of {sorted(CD16X_DEPTHS)}, got {depth!r}")
    names = [name for name, _, _ in CD16X_LAYERS]
    return CD16X_LAYERS[: names.index(CD16X_DEPTHS[depth]) + 1]


class DistilledEncoder(Encoder):
    """The distilled VGG-19 to ``depth``, frozen; taps relu1_1, relu2_1, relu3_1, relu4_1(, 5_1).

    ``aux`` adds the 1x1 convolutions that map each native tap to an approximation of the
    real VGG-19's tap (:meth:`vgg_like`): a loss network needs them, the model's encoder
    does not (the bi-transformation works on the native 128 channels).
    """

    def __init__(self, depth: str = "relu4_1", aux: bool = False) -> None:
        super().__init__()
        self.trainable = False
        self.depth = depth
        self.layers = cd16x_layers(depth)
        self.taps = tuple(name for name, _, _ in self.layers if name in CD16X_AUX)
        self.tap_names = tuple(CD16X_AUX[name][0] for name in self.taps)
        self.channels = tuple(cout for name, _, cout in self.layers if name in self.taps)
        self.conv0 = nn.Conv2d(3, 3, kernel_size=1)
        self.convs = nn.ModuleDict(
            {name: conv3x3(cin, cout) for name, cin, cout in self.layers if name != "pool"}
        )
        self.pool = nn.MaxPool2d(2, 2)
        self.aux = nn.ModuleDict(
            {
                name: nn.Conv2d(cout, CD16X_AUX[name][1], kernel_size=1)
                for name, _, cout in self.layers
                if aux and name in CD16X_AUX
            }
        )
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return walk_layers(self, x)

    def vgg_like(self, x: torch.Tensor, names: Sequence[str] | None = None) -> list[torch.Tensor]:
        """The aux approximations of VGG-19's relu taps (64/128/256/512/512 channels).

        ``names`` (tap names, default all) limits the aux convolutions to the taps wanted:
        the shallow ones run at full resolution, and a loss network that takes them from the
        exact VGG-19 would compute them for nothing at every training step.
        """
        if not len(self.aux):
            raise ValueError("this distilled encoder was built without its aux convolutions")
        wanted = self.tap_names if names is None else tuple(names)
        return [
            self.aux[conv](tap).relu()
            for conv, name, tap in zip(self.taps, self.tap_names, self(x), strict=True)
            if name in wanted
        ]


class DistilledTaps(nn.Module):
    """A loss network of the distilled encoder's aux taps, ``forward(x) -> [taps]``."""

    def __init__(self, encoder: DistilledEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.tap_names = encoder.tap_names
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder.vgg_like(x)


class StackedTaps(nn.Module):
    """Shallow taps from one network, the deeper ones from another (exact VGG + distilled).

    Why: the exact VGG-19 file stops at relu3_1; its taps are the real thing where it has
    them, and the distilled network's aux taps add only what it lacks (relu4_1, relu5_1).
    """

    def __init__(self, shallow: nn.Module, deep: DistilledTaps) -> None:
        super().__init__()
        self.shallow, self.deep = shallow, deep
        have = set(shallow.tap_names)
        self.deep_names = tuple(n for n in deep.tap_names if n not in have)
        self.tap_names = (*shallow.tap_names, *self.deep_names)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [*self.shallow(x), *self.deep.encoder.vgg_like(x, self.deep_names)]


def tap_groups(
    taps: Sequence[str], sources: Mapping[str, Mapping[str, object]]
) -> list[tuple[list[str], Mapping[str, object]]]:
    """Runs of consecutive ``taps`` that came from one network, each with that network's record.

    ``sources`` is a loss network's ``provenance["tap_sources"]`` (tap -> the record of the
    network that gives it: ``kind``, ``file``, ...). A tap missing from ``sources`` gets an
    empty record. What reports use to say, tap by tap, which taps are the real VGG-19 and
    which the distilled approximation.
    """
    groups: list[tuple[list[str], Mapping[str, object]]] = []
    for tap in taps:
        record = sources.get(tap) or {}
        if groups and groups[-1][1] == record:
            groups[-1][0].append(tap)
        else:
            groups.append(([tap], record))
    return groups
