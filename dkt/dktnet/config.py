"""The model's shape, stored inside every checkpoint so a file alone rebuilds its network."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DKTNetConfig:
    """Hyper-parameters that fix the network's tensors (and the working size it was trained at).

    ``kernel_dim`` is METHOD.md's ``d``: the rank of the dynamic kernels, much smaller than the
    deepest channel count ``C`` so each generated kernel stays cheap to predict and apply.
    """

    encoder: str = "lite"
    lite_channels: tuple[int, int, int, int] = (16, 32, 64, 128)
    kernel_dim: int = 32
    prototypes: int = 8
    generator_hidden: int = 256
    #: Rank of the kernel generator's covariance summary (0: mean and std only, as in every
    #: checkpoint made before it existed).
    cov_rank: int = 0
    skip_adain: bool = True
    #: The pretrained-inverter decoders' zero-initialised skips from the shallower taps
    #: (False: the inverter alone, an ablation).
    decoder_skips: bool = True
    working_size: int = 256
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lite_channels", tuple(int(c) for c in self.lite_channels))
        from dkt.dktnet.encoders import encoder_kind  # torch: not for reading a config

        encoder_kind(self.encoder)  # a ValueError naming the known encoders
        if len(self.lite_channels) != 4 or min(self.lite_channels) < 1:
            raise ValueError(f"lite_channels needs four positive ints, got {self.lite_channels}")
        if not 1 <= self.kernel_dim <= self.channels[-1]:
            raise ValueError(f"kernel_dim must be in 1..{self.channels[-1]}, got {self.kernel_dim}")
        if not 0 <= self.cov_rank <= self.channels[-1]:
            raise ValueError(f"cov_rank must be in 0..{self.channels[-1]}, got {self.cov_rank}")
        if self.prototypes < 1 or self.generator_hidden < 1 or self.working_size < 8:
            raise ValueError("prototypes and generator_hidden must be >= 1, working_size >= 8")

    @property
    def channels(self) -> tuple[int, ...]:
        """Channel counts of the encoder taps (strides 1, 2, 4 and, but for vgg19-relu3, 8)."""
        from dkt.dktnet.encoders import encoder_kind

        return encoder_kind(self.encoder).channels or tuple(self.lite_channels)

    @property
    def strides(self) -> tuple[int, ...]:
        """The stride of each tap: the deepest one is where the bi-transformation works."""
        return tuple(2**i for i in range(len(self.channels)))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lite_channels"] = list(self.lite_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DKTNetConfig:
        """Build from a stored dict; unknown keys are an error so typos never pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        values = dict(data)
        if "lite_channels" in values:
            values["lite_channels"] = tuple(int(c) for c in values["lite_channels"])
        return cls(**values)
