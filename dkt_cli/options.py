"""Options several commands share, declared once so their names, help and panels agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
