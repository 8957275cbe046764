"""Backend registry: every backend, dkt's own included, comes from the ``dkt.backends`` group.

One list, the package metadata, so a backend cannot be half-registered (known by name here
but missing from ``dkt doctor`` there). Adding one, built-in or third-party, is a module with
a :class:`~backends.base.Backend` subclass carrying a ``descriptor``, one entry point::

    [project.entry-points."dkt.backends"]
    mybackend = "my_pkg.module:MyBackend"

and, if it needs an optional runtime, one extra named by ``descriptor.extra`` (imported
lazily with :func:`require_module`, so reading the descriptor never needs it).

A module is imported only when its backend is asked for, or when a model file's suffix is
looked up; one that fails to import is reported in one line and the others keep working.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from backends.base import Backend, BackendDescriptor, LoadOptions
from dkt.errors import BackendError

ENTRY_POINT_GROUP = "dkt.backends"
#: The distribution whose entry points win a name clash: dkt's own backends cannot be
#: shadowed by an installed plug-in that happens to reuse a name.
OWN_PACKAGE = "dkt"

#: Optional packages and the extra that installs them, for :func:`require_module` and for a
#: backend module that fails to import (its descriptor cannot be read to say which extra).
EXTRAS: dict[str, str] = {
    "onnx": "pip install 'dkt[onnx]'",
    "onnxruntime": "pip install 'dkt[onnx]'",
    "onnxscript": "pip install 'dkt[onnx]'",
    "tensorrt": "pip install 'dkt[trt]'",
}


@dataclass(frozen=True)
class BackendSpec:
    """One ``dkt.backends`` entry point, known before its module is imported."""

    name: str
    target: str  # "module:Class"
    package: str | None = None  # the distribution declaring it; None if unknown

    @property
    def own(self) -> bool:
        return self.package == OWN_PACKAGE


def require_module(module: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or fail with one line naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = EXTRAS.get(module.partition(".")[0], "")
        hint = f"; install it with: {hint}" if hint else ""
        raise BackendError(f"{purpose} needs the '{module}' package ({exc}){hint}") from exc


def _package_of(entry_point: object) -> str | None:
    dist = getattr(entry_point, "dist", None)
    return getattr(dist, "name", None) if dist is not None else None


def available() -> dict[str, BackendSpec]:
    """All declared backends by name, sorted; dkt's own first, then third-party ones.

    On a name clash dkt's entry point wins, then the first found on ``sys.path`` (the one
    Python would import).
    """
    specs: dict[str, BackendSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = BackendSpec(ep.name, ep.value, _package_of(ep))
        if ep.name not in specs or (spec.own and not specs[ep.name].own):
            specs[ep.name] = spec
    return dict(sorted(specs.items(), key=lambda item: (not item[1].own, item[0])))


def _first_line(exc: BaseException) -> str:
    """A traceback-free reason: some import errors (numpy's, CUDA's) span a dozen lines."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def load_class(spec: BackendSpec) -> type[Backend]:
    """The backend class an entry point names, checked, or a one-line :class:`BackendError`."""
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except ImportError as exc:
        hint = EXTRAS.get((exc.name or "").partition(".")[0], "")
        hint = f"; install it with: {hint}" if hint else ""
        raise BackendError(
            f"backend '{spec.name}' ({spec.target}) is not available ({_first_line(exc)}){hint}"
        ) from exc
    except Exception as exc:  # a plug-in's module may raise anything at import time
        raise BackendError(
            f"backend '{spec.name}' ({spec.target}) is not available: its module failed to "
            f"import ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    cls = getattr(module, attr.strip(), None)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend '{spec.name}': {spec.target} is not a dkt Backend class")
    descriptor = getattr(cls, "descriptor", None)
    if not isinstance(descriptor, BackendDescriptor):
        raise BackendError(
            f"backend '{spec.name}': {spec.target} declares no BackendDescriptor "
            "(set the class attribute 'descriptor')"
        )
    if descriptor.name != spec.name:
        raise BackendError(
            f"backend '{spec.name}': {spec.target} describes itself as '{descriptor.name}'; "
            "the entry point's name and the descriptor's must match"
        )
    return cls


def get(name: str) -> type[Backend]:
    specs = available()
    if name not in specs:
        raise BackendError(f"unknown backend '{name}' (available: {', '.join(specs)})")
    return load_class(specs[name])


def _survey() -> tuple[dict[str, type[Backend]], dict[str, str]]:
    """(classes that load, one-line reasons for those that do not), by backend name."""
    loaded: dict[str, type[Backend]] = {}
    broken: dict[str, str] = {}
    for name, spec in available().items():
        try:
            loaded[name] = load_class(spec)
        except BackendError as exc:
            broken[name] = str(exc)
    return loaded, broken


def descriptors() -> dict[str, BackendDescriptor]:
    """The descriptor of every backend whose module imports, for ``dkt doctor`` and help.

    Importing a backend module never needs its runtime, so a backend listed here may still
    fail to load a model; :func:`install_hint` says what to install.
    """
    return {name: cls.descriptor for name, cls in _survey()[0].items()}


def unavailable() -> dict[str, str]:
    """Backends whose module does not import, each with its one-line reason."""
    return _survey()[1]


def install_hint(name: str) -> str:
    """The pip command for backend ``name``'s optional runtime (``""``: it needs none)."""
    spec = available().get(name)
    if spec is None:
        raise BackendError(f"unknown backend '{name}'")
    descriptor = load_class(spec).descriptor
    if spec.package is None and descriptor.extra:
        return f"install the '{descriptor.extra}' extra of the package providing '{name}'"
    return descriptor.install_hint(spec.package or OWN_PACKAGE)


def name_for_model(model: Path) -> str:
    """The backend a model file's suffix implies (``--backend`` overrides this)."""
    suffix = model.suffix.lower()
    loaded, broken = _survey()
    for name, cls in loaded.items():
        if suffix in cls.descriptor.suffixes:
            return name
    known = sorted({s for cls in loaded.values() for s in cls.descriptor.suffixes})
    unloadable = f"; not loaded: {'; '.join(broken.values())}" if broken else ""
    raise BackendError(
        f"{model}: no backend loads '{suffix or '(no suffix)'}' files "
        f"(known: {', '.join(known) or 'none'}); pass --backend{unloadable}"
    )


def open_backend(
    model: Path, options: LoadOptions = LoadOptions(), *, backend: str | None = None
) -> Backend:
    """Load ``model`` with the named backend, or the one its suffix implies."""
    return get(backend or name_for_model(model)).load(model, options)
