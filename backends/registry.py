"""Backend registry: built-in backends plus third-party ones from entry points.

Third parties add a backend by declaring, in their package metadata::

    [project.entry-points."dkt.backends"]
    mybackend = "my_pkg.module:MyBackend"

Backends are imported only when used, so a missing optional dependency (onnxruntime,
tensorrt) only matters to someone who asks for that backend.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from dkt.backends.base import Backend, BackendError

ENTRY_POINT_GROUP = "dkt.backends"


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"
    suffixes: tuple[str, ...]
    install_hint: str = ""


BUILTIN: tuple[BackendSpec, ...] = (
    BackendSpec("torch", "dkt.backends.torch_backend:TorchBackend", (".safetensors",)),
    BackendSpec(
        "onnxruntime",
        "dkt.backends.onnxruntime_backend:OnnxRuntimeBackend",
        (".onnx",),
        "pip install 'dkt[onnx]'",
    ),
    BackendSpec(
        "tensorrt",
        "dkt.backends.tensorrt_backend:TensorRTBackend",
        (".engine", ".plan"),
        "pip install 'dkt[trt]'",
    ),
)

#: Optional packages and the extra that installs them, for :func:`require_module`.
EXTRAS: dict[str, str] = {
    "onnx": "pip install 'dkt[onnx]'",
    "onnxruntime": "pip install 'dkt[onnx]'",
    "onnxscript": "pip install 'dkt[onnx]'",
    "tensorrt": "pip install 'dkt[trt]'",
}


def require_module(module: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or fail with one line naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = EXTRAS.get(module.partition(".")[0], "")
        hint = f"; install it with: {hint}" if hint else ""
        raise BackendError(f"{purpose} needs the '{module}' package ({exc}){hint}") from exc


def _entry_point_specs() -> list[BackendSpec]:
    """Specs declared by installed packages; their suffixes are read from the class on load."""
    specs = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs.append(BackendSpec(ep.name, ep.value, ()))
    return specs


def available() -> dict[str, BackendSpec]:
    """All known backends by name; built-ins win over an entry point of the same name."""
    specs = {spec.name: spec for spec in _entry_point_specs()}
    specs.update({spec.name: spec for spec in BUILTIN})
    return dict(sorted(specs.items()))


def load_class(spec: BackendSpec) -> type[Backend]:
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install it with: {spec.install_hint}" if spec.install_hint else ""
        raise BackendError(f"backend '{spec.name}' is not available ({exc}){hint}") from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend '{spec.name}': {spec.target} is not a dkt Backend class")
    return cls


def get(name: str) -> type[Backend]:
    specs = available()
    if name not in specs:
        raise BackendError(f"unknown backend '{name}' (available: {', '.join(specs)})")
    return load_class(specs[name])


def name_for_model(model: Path) -> str:
    """The backend a model file's suffix implies (``--backend`` overrides this)."""
    suffix = model.suffix.lower()
    specs = available()
    for spec in specs.values():
        if suffix in spec.suffixes:
            return spec.name
    for spec in specs.values():  # third-party backends declare suffixes on the class
        if not spec.suffixes and suffix in getattr(load_class(spec), "suffixes", ()):
            return spec.name
    known = sorted({s for spec in specs.values() for s in spec.suffixes})
    raise BackendError(
        f"{model}: no backend loads '{suffix or '(no suffix)'}' files "
        f"(known: {', '.join(known)}); pass --backend"
    )


def open_backend(
    model: Path,
    *,
    backend: str | None = None,
    device: str = "cpu",
    precision: str | None = None,
    allow_cpu_fallback: bool = False,
    threads: int | None = None,
) -> Backend:
    """Load ``model`` with the named backend, or the one its suffix implies."""
    cls = get(backend or name_for_model(model))
    return cls.load(
        model,
        device=device,
        precision=precision,
        allow_cpu_fallback=allow_cpu_fallback,
        threads=threads,
    )
