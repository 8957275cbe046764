"""dkt: painterly image harmonization with DKTNet.

Paste a photographic object into a painting and ``dkt`` restyles the object to match the
painting, leaving every pixel of the painting outside the object as it was::

    import dkt

    h = dkt.Harmonizer()                      # the bundled model; any .safetensors/.onnx/.engine
    result = h("composite.jpg", "mask.png")   # numpy uint8 (H, W, 3)
    composite, mask = dkt.paste("painting.jpg", "cutout.png", at=(120, 80), scale=0.5)
    result = h(composite, mask)

The names below load on first use, so ``import dkt`` is quick and pulls in neither torch
nor the command line's libraries (Typer, rich) until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dkt._version import __version__

if TYPE_CHECKING:
    from dkt.api import Harmonizer as Harmonizer
    from dkt.api import paste as paste
    from dkt.errors import DktError as DktError
    from dkt.errors import ImageInputError as ImageInputError
    from dkt.errors import InputError as InputError
    from dkt.errors import OptionError as OptionError
    from dkt.errors import PathError as PathError
    from dkt.errors import StrengthError as StrengthError
    from dkt.inference.jobs import RunSummary as RunSummary

#: Public name -> module that defines it.
_EXPORTS = {
    "Harmonizer": "dkt.api",
    "paste": "dkt.api",
    "RunSummary": "dkt.inference.jobs",
    "DktError": "dkt.errors",
    "PathError": "dkt.errors",
    "ImageInputError": "dkt.errors",
    "StrengthError": "dkt.errors",
    "OptionError": "dkt.errors",
    "InputError": "dkt.inputs",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dkt' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
