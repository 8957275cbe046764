"""Options several commands share, declared once so their names, help and panels agree.

``--model`` and ``--backend`` say what to open; ``--device``, ``--precision`` and
``--allow-cpu-fallback`` (with a command's ``--threads``) are the fields of
:class:`backends.base.LoadOptions`, how to open it: the same for every command that loads a
model.
"""

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


#: ``--device``: where the model runs; every backend takes these names.
Device = Annotated[
    str,
    typer.Option(
        help="auto, cpu, cuda, cuda:N; for .onnx also tensorrt[:N] (ORT's TensorRT provider).",
        rich_help_panel=MODEL_PANEL,
    ),
]

#: ``--precision``: ``None`` is the model file's own.
Precision = Annotated[
    str | None,
    typer.Option(
        help="fp32, fp16 or bf16 (GPU). Default: fp32, or what an exported file was built for.",
        rich_help_panel=MODEL_PANEL,
    ),
]

#: ``--allow-cpu-fallback``: a GPU that is not usable runs on the CPU instead of failing.
AllowCpuFallback = Annotated[
    bool,
    typer.Option(
        "--allow-cpu-fallback",
        help="Run on the CPU if the GPU asked for is unusable.",
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


# --- the two servers (``dkt serve``, ``dkt study serve``): one meaning of --host/--port/--token

#: ``--host``: loopback by default, so a server is never opened to the network by accident.
Host = Annotated[
    str,
    typer.Option(
        help="Address to listen on. The default is this machine only; 0.0.0.0 opens it "
        "to the network (set --token then)."
    ),
]
#: ``--port``: 0 picks a free one (the URL printed is the one really bound).
Port = Annotated[int, typer.Option(help="Port (0: any free one).", min=0, max=65535)]


def token_option(envvar: str, what: str) -> typer.models.OptionInfo:
    """``--token``, read from ``envvar`` by preference; ``what`` says where a client puts it."""
    return typer.Option(
        envvar=envvar,
        show_envvar=True,
        help=f"Require this token: {what}. Prefer the environment variable: a command line "
        "is visible to other users.",
    )
