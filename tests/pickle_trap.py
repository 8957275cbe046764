"""A pickle file that would run code when unpickled, for tests proving a loader never does.

The control that gives such a test its meaning (the file really carries code) is checked
with ``torch.load(weights_only=True)``, which names the global it refuses: the trap is never
sprung, not even by the test itself.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch


class Tripwire:
    """Unpickling this object creates ``marker``: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_trap(path: Path, payload: dict[str, object], marker: Path) -> None:
    """``payload`` (tensors, a state dict) saved by ``torch.save`` with a :class:`Tripwire`."""
    torch.save({**payload, "trap": Tripwire(marker)}, path)


def assert_carries_code(path: Path) -> None:
    """Control: a safe load refuses the file for its ``open`` call, without running it."""
    with pytest.raises(pickle.UnpicklingError, match=r"Unsupported global: GLOBAL io\.open"):
        torch.load(path, weights_only=True)
