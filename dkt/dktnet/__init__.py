"""DKTNet: painterly image harmonization with dynamic kernels and a bi-transformation.

The core model package: the network and its checkpoints. It knows nothing of the CLI.
"""

from __future__ import annotations

from pathlib import Path

from dkt._version import __version__

__all__ = ["BUNDLED_MODEL", "BUNDLED_MODEL_CARD", "__version__"]

BUNDLED_MODEL = Path(__file__).parent / "weights" / "dktnet-cd16x.safetensors"
BUNDLED_MODEL_CARD = BUNDLED_MODEL.with_name("MODEL_CARD.md")
