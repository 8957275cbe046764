"""The tiny model shape the unit tests share: small enough to run in milliseconds."""

from __future__ import annotations

from dkt.dktnet.config import DKTNetConfig


def tiny_config(**overrides: object) -> DKTNetConfig:
    """A lite config with a handful of channels; keyword arguments override any field."""
    values: dict[str, object] = {
        "lite_channels": (4, 8, 8, 16),
        "kernel_dim": 4,
        "prototypes": 3,
        "generator_hidden": 16,
    }
    values.update(overrides)
    return DKTNetConfig(**values)
