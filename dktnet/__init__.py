"""DKTNet: painterly image harmonization with dynamic kernels and a bi-transformation.

The core model package: network, checkpoint and image I/O. It knows nothing of the CLI.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

BUNDLED_MODEL = Path(__file__).parent / "weights" / "dktnet-relu3.safetensors"
BUNDLED_MODEL_CARD = BUNDLED_MODEL.with_name("MODEL_CARD.md")
