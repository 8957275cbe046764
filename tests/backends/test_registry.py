"""Tests for ``dkt.backends.registry``: which backend a model file or ``--backend`` name gets."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from dkt.backends import registry
from dkt.backends.base import Backend, BackendError
from dkt.backends.registry import BackendSpec
from dkt.backends.torch_backend import TorchBackend


class PluginBackend(Backend):
    """A third-party backend as an installed package would declare it."""

    name: ClassVar[str] = "plugin"
    suffixes: ClassVar[tuple[str, ...]] = (".plug",)
    loaded: ClassVar[list[tuple[Path, str, str]]] = []

    @classmethod
    def load(
        cls,
        model: Path,
        *,
        device: str = "cpu",
        precision: str | None = None,
        allow_cpu_fallback: bool = False,
        threads: int | None = None,
    ) -> Backend:
        cls.loaded.append((model, device, precision))
        return cls()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return composite

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


class NotABackend:
    """Something an entry point can name by mistake."""


def _use_entry_points(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    """Make the registry see exactly these ``name=module:attr`` entry points."""
    eps = [EntryPoint(name, value, registry.ENTRY_POINT_GROUP) for name, value in targets.items()]

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return eps if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)


# --------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name", ["model.safetensors", "MODEL.SafeTensors", "a/b/c.safetensors"])
def test_safetensors_suffix_means_torch(name: str) -> None:
    assert registry.name_for_model(Path(name)) == "torch"
    assert registry.get("torch") is TorchBackend


@pytest.mark.parametrize("name", ["weights.xyz", "weights"])
def test_unknown_suffix_names_the_file_and_says_pass_backend(name: str) -> None:
    with pytest.raises(BackendError) as info:
        registry.name_for_model(Path("models") / name)
    message = str(info.value)
    assert str(Path("models") / name) in message
    assert "--backend" in message
    assert ".safetensors" in message  # what *is* known
    assert "\n" not in message


def test_unknown_backend_name_lists_available_ones() -> None:
    with pytest.raises(BackendError, match="unknown backend 'tensorflow'") as info:
        registry.get("tensorflow")
    assert "available: " in str(info.value)
    assert "torch" in str(info.value).split("available: ")[1]


def test_backend_option_overrides_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_entry_points(monkeypatch, plugin=f"{__name__}:PluginBackend")
    PluginBackend.loaded.clear()
    engine = registry.open_backend(tmp_path / "model.safetensors", backend="plugin", device="x")
    assert isinstance(engine, PluginBackend)
    assert PluginBackend.loaded == [(tmp_path / "model.safetensors", "x", None)]


# --------------------------------------------------------------------------- plug-ins


def test_entry_point_backend_is_found_by_name_and_by_class_suffix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_entry_points(monkeypatch, plugin=f"{__name__}:PluginBackend")
    assert set(registry.available()) == {"plugin", "torch", "onnxruntime", "tensorrt"}
    assert registry.get("plugin") is PluginBackend
    # The entry point itself declares no suffixes: they come from the class.
    assert registry.name_for_model(Path("net.plug")) == "plugin"
    assert registry.name_for_model(Path("NET.PLUG")) == "plugin"
    assert registry.name_for_model(Path("net.safetensors")) == "torch"

    PluginBackend.loaded.clear()
    engine = registry.open_backend(Path("net.plug"), precision="fp16")
    assert isinstance(engine, PluginBackend)
    assert PluginBackend.loaded == [(Path("net.plug"), "cpu", "fp16")]


def test_builtin_wins_over_entry_point_of_the_same_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_entry_points(monkeypatch, torch=f"{__name__}:PluginBackend")
    assert registry.get("torch") is TorchBackend


def test_entry_point_to_a_non_backend_class_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_entry_points(
        monkeypatch, wrong=f"{__name__}:NotABackend", absent=f"{__name__}:NoSuchClass"
    )
    with pytest.raises(BackendError, match=r"'wrong'.*NotABackend is not a dkt Backend"):
        registry.get("wrong")
    with pytest.raises(BackendError, match=r"'absent'.*NoSuchClass is not a dkt Backend"):
        registry.get("absent")


def test_import_error_in_a_backend_module_is_a_backend_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plug-in whose own dependency is missing fails only when asked for, and says why."""
    (tmp_path / "dkt_test_broken_plugin.py").write_text(
        "import dkt_test_dependency_not_installed\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _use_entry_points(monkeypatch, broken="dkt_test_broken_plugin:Broken")
    assert registry.get("torch") is TorchBackend  # other backends are unaffected
    with pytest.raises(BackendError) as info:
        registry.get("broken")
    message = str(info.value)
    assert "backend 'broken' is not available" in message
    assert "dkt_test_dependency_not_installed" in message


def test_import_error_carries_the_install_hint() -> None:
    spec = BackendSpec(
        "onnx", "dkt_test_onnx_module_missing:OnnxBackend", (".onnx",), "pip install 'dkt[onnx]'"
    )
    with pytest.raises(BackendError) as info:
        registry.load_class(spec)
    message = str(info.value)
    assert "backend 'onnx' is not available" in message
    assert message.endswith("; install it with: pip install 'dkt[onnx]'")
