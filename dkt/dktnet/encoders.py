"""Encoders with one tap per level at strides 1, 2, 4 (, 8) (METHOD.md step 1).

``vgg19`` is AdaIN's normalised VGG-19 up to relu4_1, frozen; ``vgg19-relu3`` is the same
network truncated after relu3_1 (three taps at strides 1, 2, 4), the depth for which real
pretrained weights and a pretrained feature inverter are public and small. Its first layer
is a fixed 1x1 convolution that maps RGB in [0, 1] to whatever input the weights expect, which
is how both AdaIN's ``vgg_normalised.pth`` and torchvision's ImageNet ``vgg19`` load into the same
module (see :mod:`dkt.dktnet.vgg_weights`). ``lite`` is a compact trainable encoder with the same
taps and fewer channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in NHWC memory order (same values, same shape).

    Why: oneDNN's CPU convolutions run NHWC directly, while NCHW input is reordered to a
    blocked layout and back around every convolution. On the bundled model at 512 px that
    was a third of the run (2 threads: 2.2 s -> 1.4 s). The layout then carries through
    every element-wise op and into the decoder; an exported graph does not see it.
    """
    return x.contiguous(memory_format=torch.channels_last)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    """3x3 convolution with reflection padding (no dark borders in the decoded image)."""
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, padding_mode="reflect")


class Encoder(nn.Module):
    """Common shape: ``forward(x) -> [tap_stride1, tap_stride2, tap_stride4, tap_stride8]``."""

    channels: tuple[int, ...]
    trainable: bool


def walk_layers(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Run a VGG-plan network (``conv0``, ``layers``, ``convs``, ``pool``, ``taps``): its taps.

    The exact VGG-19 and its distilled copy share this plan (a fixed 1x1 input conv, then
    3x3 conv + ReLU layers with 2x2 max-pools between stages), only their widths differ.
    """
    x = net.conv0(channels_last(x))
    taps = []
    for name, _, _ in net.layers:
        if name == "pool":
            x = net.pool(x)
            continue
        x = net.convs[name](x).relu_()
        if name in net.taps:
            taps.append(x)
    return taps


# (name, in, out); a "pool" entry is a 2x2 max-pool. relu1_1, relu2_1, relu3_1, relu4_1 are taps.
VGG19_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    ("pool", 0, 0),
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    ("pool", 0, 0),
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    ("pool", 0, 0),
    ("conv4_1", 256, 512),
)
VGG19_TAPS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")
#: The deepest tap each VGG depth keeps, by name.
VGG19_DEPTHS = {"relu3_1": "conv3_1", "relu4_1": "conv4_1"}


def vgg19_layers(depth: str = "relu4_1") -> tuple[tuple[str, int, int], ...]:
    """The layer list of a VGG-19 truncated after ``depth`` (``relu3_1`` or ``relu4_1``)."""
    if depth not in VGG19_DEPTHS:
        raise ValueError(f"VGG-19 depth must be one of {sorted(VGG19_DEPTHS)}, got {depth!r}")
    names = [name for name, _, _ in VGG19_LAYERS]
    return VGG19_LAYERS[: names.index(VGG19_DEPTHS[depth]) + 1]


class VGG19Encoder(Encoder):
    """Normalised VGG-19 to ``depth``, frozen unless ``trainable`` (a loss network stays frozen).

    ``depth`` is the deepest tap: ``relu4_1`` (four taps, the paper's encoder and loss
    network) or ``relu3_1`` (three taps; what a truncated weights file really holds, so a
    loss network built from one never invents a relu4_1).
    """

    def __init__(self, trainable: bool = False, depth: str = "relu4_1") -> None:
        super().__init__()
        self.trainable = trainable
        self.depth = depth
        self.layers = vgg19_layers(depth)
        self.taps = tuple(name for name, _, _ in self.layers if name in VGG19_TAPS)
        self.tap_names = tuple(name.replace("conv", "relu") for name in self.taps)
        self.channels = tuple(cout for name, _, cout in self.layers if name in self.taps)
        self.conv0 = nn.Conv2d(3, 3, kernel_size=1)
        self.convs = nn.ModuleDict(
            {name: conv3x3(cin, cout) for name, cin, cout in self.layers if name != "pool"}
        )
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        if not trainable:
            self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return walk_layers(self, x)


class LiteEncoder(Encoder):
    """Compact trainable encoder: one conv at stride 1, two per level below it."""

    def __init__(self, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.trainable = True
        c1, c2, c3, c4 = channels
        self.stem = conv3x3(3, c1)
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.AvgPool2d(2, 2),
                conv3x3(cin, cout),
                nn.ReLU(inplace=True),
                conv3x3(cout, cout),
            )
            for cin, cout in ((c1, c2), (c2, c3), (c3, c4))
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = [self.stem(channels_last(x)).relu_()]
        for level in self.levels:
            taps.append(torch.relu(level(taps[-1])))
        return taps


@dataclass(frozen=True)
class EncoderKind:
    """What a config's ``model.encoder`` name stands for: the one place an encoder registers.

    Adding an encoder is a module with its :class:`Encoder` and one entry in
    :data:`ENCODERS`; the config, the model, the training setup and ``dkt info`` read the
    rest from here.
    """

    #: Builds it from the config's ``lite_channels`` (which only the lite encoder uses).
    build: Callable[[tuple[int, int, int, int]], Encoder]
    #: Tap channels, shallow to deep; ``None``: the config's ``lite_channels``.
    channels: tuple[int, ...] | None = None
    #: Where its frozen weights come from: ``None`` (trained with the rest), ``"vgg19"``
    #: (copied from the loss network's exact VGG-19), ``"distilled"`` (``run.encoder_init``).
    pretrained: str | None = None


def _distilled(depth: str) -> Callable[[tuple[int, int, int, int]], Encoder]:
    def build(_: tuple[int, int, int, int]) -> Encoder:
        from dkt.dktnet.distilled import DistilledEncoder  # it imports this module

        return DistilledEncoder(depth=depth)

    return build


#: Every encoder a config can name. ``cd16x-relu4`` is the distilled VGG-19 (16x fewer
#: filters; :mod:`dkt.dktnet.distilled`), an approximation of VGG-19, not VGG-19.
ENCODERS: dict[str, EncoderKind] = {
    "lite": EncoderKind(LiteEncoder),
    "vgg19": EncoderKind(lambda _: VGG19Encoder(depth="relu4_1"), (64, 128, 256, 512), "vgg19"),
    "vgg19-relu3": EncoderKind(lambda _: VGG19Encoder(depth="relu3_1"), (64, 128, 256), "vgg19"),
    "cd16x-relu4": EncoderKind(_distilled("relu4_1"), (16, 32, 64, 128), "distilled"),
}


def encoder_kind(name: str) -> EncoderKind:
    """The registered encoder ``name``; a ``ValueError`` naming the known ones otherwise."""
    if name not in ENCODERS:
        raise ValueError(f"encoder must be one of {tuple(ENCODERS)}, got {name!r}")
    return ENCODERS[name]


def build_encoder(name: str, lite_channels: tuple[int, int, int, int]) -> Encoder:
    """The encoder a config names."""
    return encoder_kind(name).build(lite_channels)
