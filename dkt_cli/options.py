"""Options several commands share, declared once so their names, help and panels agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

_Request = TypeVar("_Request")

MODEL_PANEL = "Model"

#: ``--model``: any file a backend loads; the commands default it to the bundled model.
ModelFile = Annotated[
    Path,
    typer.Option(
        "--model",
        help="Model file: a checkpoint (.safetensors), an ONNX export (.onnx) or a TensorRT "
        "engine (.engine, .plan) from `dkt export`. Default: the bundled model.",
        show_default="bundled model",
        rich_help_panel=MODEL_PANEL,
    ),
]

#: ``--backend``: a registry name, overriding the one the model file's suffix implies.
BackendName = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Backend; default from the model file's suffix.",
        rich_help_panel=MODEL_PANEL,
    ),
]


def request_from(cls: type[_Request], params: Mapping[str, Any], **renamed: str) -> _Request:
    """A library verb's request dataclass from a command's parameters (``locals()``).

    Each field takes the parameter of its name, or the one ``renamed`` gives
    (``format="fmt"``); parameters that are only about printing (``--json``, ``--quiet``)
    have no field and stay behind. A field with no parameter is a bug, caught by any test
    of the command.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: params[renamed.get(name, name)] for name in names})
