"""Tests for ``backends.registry``: which backend a model file or ``--backend`` name gets.

Every backend, dkt's own included, comes from the ``dkt.backends`` entry-point group; these
tests fake that group (``registry.entry_points``) to add, shadow or break backends.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint, distribution
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from backends import registry
from backends.base import Backend, BackendDescriptor, LoadOptions
from backends.shapes import parse_shape
from backends.torch_backend import PRECISIONS, TorchBackend
from dkt.dktnet.model import MULTIPLE, pad_to_multiple
from dkt.errors import BackendError, ShapeError
from dkt.limits import MIN_IMAGE_SIDE

BUILTINS = {
    "torch": "backends.torch_backend:TorchBackend",
    "onnxruntime": "backends.onnxruntime_backend:OnnxRuntimeBackend",
    "tensorrt": "backends.tensorrt_backend:TensorRTBackend",
}


class PluginBackend(Backend):
    """A third-party backend as an installed package would declare it."""

    descriptor: ClassVar[BackendDescriptor] = BackendDescriptor(
        name="plugin",
        suffixes=(".plug",),
        devices=("cpu",),
        precisions=("fp32", "fp16"),
        size_multiple=1,
        min_side=1,
        dynamic_shapes=False,
        extra="plug",
    )
    loaded: ClassVar[list[tuple[Path, str, str | None]]] = []

    @classmethod
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> Backend:
        cls.loaded.append((model, options.device, options.precision))
        return cls()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return composite

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


class SafetensorsThief(PluginBackend):
    """A plug-in claiming dkt's checkpoint suffix under a name that sorts before 'torch'."""

    descriptor: ClassVar[BackendDescriptor] = dataclasses.replace(
        PluginBackend.descriptor, name="aaa", suffixes=(".safetensors",)
    )


class Undescribed(Backend):
    """A Backend subclass written before descriptors: only ``name``/``suffixes``."""

    name: ClassVar[str] = "undescribed"
    suffixes: ClassVar[tuple[str, ...]] = (".und",)


class NotABackend:
    """Something an entry point can name by mistake."""


def _fake_group(
    monkeypatch: pytest.MonkeyPatch, targets: dict[str, str], *, keep_installed: bool
) -> None:
    """Make the registry see ``targets`` (``name: module:attr``), before or instead of dkt's."""
    real = registry.entry_points
    extra = [EntryPoint(n, v, registry.ENTRY_POINT_GROUP) for n, v in targets.items()]

    def fake_entry_points(*, group: str) -> Iterable[EntryPoint]:
        installed = list(real(group=group)) if keep_installed else []
        return [*extra, *installed] if group == registry.ENTRY_POINT_GROUP else installed

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)


def _install(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    """A third-party package declaring these entry points next to dkt's own."""
    _fake_group(monkeypatch, targets, keep_installed=True)


def _write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


# --------------------------------------------------------------------------- the one list


def test_builtins_are_exactly_dkts_entry_points() -> None:
    """The registry's built-ins are what dkt's metadata declares (stale metadata: re-install)."""
    declared = {
        ep.name: ep.value
        for ep in distribution("dkt").entry_points
        if ep.group == registry.ENTRY_POINT_GROUP
    }
    assert declared == BUILTINS
    specs = registry.available()
    assert {name: spec.target for name, spec in specs.items()} == BUILTINS
    assert all(spec.package == "dkt" for spec in specs.values())


def test_no_backend_exists_outside_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_group(monkeypatch, {}, keep_installed=False)
    assert registry.available() == {}
    assert registry.descriptors() == {}
    with pytest.raises(BackendError, match="unknown backend 'torch'"):
        registry.get("torch")
    with pytest.raises(BackendError, match=r"no backend loads '\.safetensors'.*known: none"):
        registry.name_for_model(Path("model.safetensors"))


def test_a_group_of_only_a_plugin_has_only_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_group(monkeypatch, {"plugin": f"{__name__}:PluginBackend"}, keep_installed=False)
    assert list(registry.descriptors()) == ["plugin"]
    assert registry.name_for_model(Path("x.plug")) == "plugin"


# --------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize(
    ("name", "backend"),
    [
        ("model.safetensors", "torch"),
        ("MODEL.SafeTensors", "torch"),
        ("a/b/c.safetensors", "torch"),
        ("m.onnx", "onnxruntime"),
        ("m.engine", "tensorrt"),
        ("m.PLAN", "tensorrt"),
    ],
)
def test_suffix_picks_the_builtin_backend(name: str, backend: str) -> None:
    assert registry.name_for_model(Path(name)) == backend


def test_get_returns_the_declared_classes() -> None:
    from backends.onnxruntime_backend import OnnxRuntimeBackend
    from backends.tensorrt_backend import TensorRTBackend

    assert registry.get("torch") is TorchBackend
    assert registry.get("onnxruntime") is OnnxRuntimeBackend
    assert registry.get("tensorrt") is TensorRTBackend


@pytest.mark.parametrize("name", ["weights.xyz", "weights"])
def test_unknown_suffix_names_the_file_and_says_pass_backend(name: str) -> None:
    with pytest.raises(BackendError) as info:
        registry.name_for_model(Path("models") / name)
    message = str(info.value)
    assert str(Path("models") / name) in message
    assert "--backend" in message
    assert ".safetensors" in message and ".onnx" in message  # what *is* known
    assert "\n" not in message


def test_unknown_backend_name_lists_available_ones() -> None:
    with pytest.raises(BackendError, match="unknown backend 'tensorflow'") as info:
        registry.get("tensorflow")
    listed = str(info.value).split("available: ")[1].rstrip(")").split(", ")
    assert listed == list(registry.available())


def test_backend_option_overrides_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, plugin=f"{__name__}:PluginBackend")
    PluginBackend.loaded.clear()
    model = tmp_path / "model.safetensors"
    engine = registry.open_backend(model, LoadOptions(device="x"), backend="plugin")
    assert isinstance(engine, PluginBackend)
    assert PluginBackend.loaded == [(tmp_path / "model.safetensors", "x", None)]


# --------------------------------------------------------------------------- plug-ins


def test_third_party_backend_is_found_by_name_and_by_suffix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _install(monkeypatch, plugin=f"{__name__}:PluginBackend")
    assert set(registry.available()) == {"plugin", *BUILTINS}
    assert list(registry.available())[-1] == "plugin"  # dkt's own are listed first
    assert registry.get("plugin") is PluginBackend
    assert registry.name_for_model(Path("net.plug")) == "plugin"
    assert registry.name_for_model(Path("NET.PLUG")) == "plugin"
    assert registry.name_for_model(Path("net.safetensors")) == "torch"
    assert registry.descriptors()["plugin"] is PluginBackend.descriptor
    # Its distribution is unknown here, so the hint cannot be "pip install 'dkt[plug]'".
    assert registry.install_hint("plugin") == (
        "install the 'plug' extra of the package providing 'plugin'"
    )

    PluginBackend.loaded.clear()
    engine = registry.open_backend(Path("net.plug"), LoadOptions(precision="fp16"))
    assert isinstance(engine, PluginBackend)
    assert PluginBackend.loaded == [(Path("net.plug"), "cpu", "fp16")]


def test_dkts_backend_wins_a_name_clash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plug-in's entry point comes first on the path, and still does not shadow torch."""
    _install(monkeypatch, torch=f"{__name__}:PluginBackend")
    assert registry.available()["torch"].package == "dkt"
    assert registry.get("torch") is TorchBackend


def test_dkts_backend_wins_a_suffix_clash(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, aaa=f"{__name__}:SafetensorsThief")
    assert registry.name_for_model(Path("m.safetensors")) == "torch"
    assert registry.get("aaa") is SafetensorsThief  # still usable with --backend


def test_entry_point_to_a_non_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(
        monkeypatch,
        wrong=f"{__name__}:NotABackend",
        absent=f"{__name__}:NoSuchClass",
        undescribed=f"{__name__}:Undescribed",
        misnamed=f"{__name__}:PluginBackend",
    )
    with pytest.raises(BackendError, match=r"'wrong'.*NotABackend is not a dkt Backend"):
        registry.get("wrong")
    with pytest.raises(BackendError, match=r"'absent'.*NoSuchClass is not a dkt Backend"):
        registry.get("absent")
    with pytest.raises(BackendError, match=r"'undescribed'.*declares no BackendDescriptor"):
        registry.get("undescribed")
    with pytest.raises(BackendError, match=r"'misnamed'.*describes itself as 'plugin'"):
        registry.get("misnamed")


def test_broken_entry_point_is_one_line_and_others_keep_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_module(tmp_path, monkeypatch, "dkt_test_broken_plugin", "import dkt_test_dep_absent\n")
    _install(monkeypatch, broken="dkt_test_broken_plugin:Broken")

    with pytest.raises(BackendError) as info:
        registry.get("broken")
    message = str(info.value)
    assert message.startswith("backend 'broken' (dkt_test_broken_plugin:Broken) is not available")
    assert "dkt_test_dep_absent" in message
    assert "\n" not in message
    assert "install it with" not in message  # no extra of dkt's installs an unknown module

    assert registry.get("torch") is TorchBackend
    assert registry.name_for_model(Path("m.onnx")) == "onnxruntime"
    assert set(registry.descriptors()) == set(BUILTINS)
    assert registry.unavailable() == {"broken": message}
    with pytest.raises(BackendError, match=r"pass --backend; not loaded: backend 'broken'"):
        registry.name_for_model(Path("m.xyz"))


def test_broken_entry_point_names_the_extra_that_installs_what_it_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend module importing its runtime at top level still gets the install hint."""
    _write_module(tmp_path, monkeypatch, "dkt_test_eager", "import dkt_test_runtime.sub\n")
    monkeypatch.setitem(registry.EXTRAS, "dkt_test_runtime", "pip install 'dkt[fake]'")
    _install(monkeypatch, eager="dkt_test_eager:Eager")
    with pytest.raises(BackendError) as info:
        registry.get("eager")
    message = str(info.value)
    assert message.startswith("backend 'eager' ")
    assert message.endswith("; install it with: pip install 'dkt[fake]'")


def test_module_raising_at_import_is_reported_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "raise RuntimeError('CUDA driver too old\\n  details\\n  more details')\n"
    _write_module(tmp_path, monkeypatch, "dkt_test_raising", body)
    _install(monkeypatch, raising="dkt_test_raising:Raising")
    message = registry.unavailable()["raising"]
    assert "backend 'raising'" in message
    assert "RuntimeError: CUDA driver too old" in message
    assert "\n" not in message
    assert registry.get("torch") is TorchBackend


# --------------------------------------------------------------------------- descriptors


def test_descriptors_cover_every_builtin_and_name_the_classes() -> None:
    found = registry.descriptors()
    assert set(found) == set(BUILTINS)
    for name, descriptor in found.items():
        cls = registry.get(name)
        assert descriptor is cls.descriptor
        assert (cls.name, cls.suffixes) == (descriptor.name, descriptor.suffixes)
        assert descriptor.size_multiple == MULTIPLE
        assert descriptor.min_side == MIN_IMAGE_SIDE
        assert descriptor.dynamic_shapes
        assert "\n" not in descriptor.summary() and descriptor.summary().startswith(name)


def test_torch_descriptor() -> None:
    d = registry.descriptors()["torch"]
    assert d.suffixes == (".safetensors",)
    assert d.precisions == tuple(PRECISIONS) == ("fp32", "fp16", "bf16")
    assert d.devices == ("auto", "cpu", "cuda", "mps")
    for kind in d.devices[1:]:
        torch.device(kind)  # each is a device torch knows
    assert d.extra is None and registry.install_hint("torch") == ""


def test_onnxruntime_descriptor() -> None:
    from backends.onnx_metadata import ONNX_PRECISIONS
    from backends.onnxruntime_backend import CPU, CUDA, TENSORRT, provider_plan

    d = registry.descriptors()["onnxruntime"]
    assert d.suffixes == (".onnx",)
    assert d.precisions == ONNX_PRECISIONS == ("fp32", "fp16", "int8")
    assert d.devices == ("auto", "cpu", "cuda", "tensorrt")
    for kind in d.devices:
        assert provider_plan(kind, [TENSORRT, CUDA, CPU])  # every declared device is accepted
    with pytest.raises(BackendError, match="invalid device"):
        provider_plan("mps", [CPU])
    assert d.extra == "onnx"
    assert registry.install_hint("onnxruntime") == "pip install 'dkt[onnx]'"


def test_tensorrt_descriptor() -> None:
    from backends.tensorrt_backend import cuda_index

    d = registry.descriptors()["tensorrt"]
    assert d.suffixes == (".engine", ".plan")
    assert d.precisions == ("fp32", "fp16")
    assert d.devices == ("auto", "cuda")
    assert [cuda_index(kind) for kind in d.devices] == [0, 0]
    with pytest.raises(BackendError, match="NVIDIA GPUs only"):
        cuda_index("cpu")
    assert d.extra == "trt"
    assert registry.install_hint("tensorrt") == "pip install 'dkt[trt]'"


def test_declared_extras_exist_and_install_the_runtime() -> None:
    """An extra named in a descriptor must be one dkt's metadata really has."""
    requires = distribution("dkt").requires or []
    runtime = {"onnxruntime": "onnxruntime", "tensorrt": "tensorrt"}
    for name, descriptor in registry.descriptors().items():
        if descriptor.extra is None:
            continue
        marker = f'extra == "{descriptor.extra}"'
        packages = [r.split(";")[0] for r in requires if marker in r]
        assert any(p.startswith(runtime[name]) for p in packages), (name, packages)


def test_min_side_and_multiple_are_what_the_code_enforces() -> None:
    side = registry.descriptors()["onnxruntime"].min_side
    assert parse_shape(f"1x{side}x{side}") == (1, side, side)
    with pytest.raises(ShapeError, match="at least"):
        parse_shape(f"1x{side - 1}x{side}")
    multiple = registry.descriptors()["torch"].size_multiple
    padded = pad_to_multiple(torch.zeros(1, 1, 17, 17 + multiple))
    assert padded.shape[-2] % multiple == 0 and padded.shape[-2] - 17 < multiple
    assert padded.shape[-1] % multiple == 0 and padded.shape[-1] - 17 - multiple < multiple


def test_descriptors_are_readable_without_the_optional_runtimes(tmp_path: Path) -> None:
    """Backend modules import their runtimes lazily: blocking them loses no descriptor."""
    script = (
        "import json, sys\n"
        "for m in ('onnx', 'onnxruntime', 'onnxscript', 'onnxslim', 'tensorrt'):\n"
        "    sys.modules[m] = None\n"
        "from backends import registry\n"
        "print(json.dumps({n: d.extra for n, d in registry.descriptors().items()}))\n"
        "print(json.dumps(registry.unavailable()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    found, broken = (json.loads(line) for line in done.stdout.splitlines())
    assert broken == {}
    assert found == {"torch": None, "onnxruntime": "onnx", "tensorrt": "trt"}


def test_descriptor_is_frozen_and_checked() -> None:
    d = TorchBackend.descriptor
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"'\.lowercase'"):
        dataclasses.replace(d, suffixes=(".ONNX",))
    with pytest.raises(ValueError, match=r"'\.lowercase'"):
        dataclasses.replace(d, suffixes=("onnx",))
    with pytest.raises(ValueError, match="no devices"):
        dataclasses.replace(d, devices=())
    with pytest.raises(ValueError, match=">= 1"):
        dataclasses.replace(d, min_side=0)
    with pytest.raises(ValueError, match="empty or has spaces"):
        dataclasses.replace(d, name="my backend")


def test_name_and_suffixes_follow_the_subclass_descriptor() -> None:
    assert (SafetensorsThief.name, SafetensorsThief.suffixes) == ("aaa", (".safetensors",))
    assert (PluginBackend.name, PluginBackend.suffixes) == ("plugin", (".plug",))
    assert Undescribed.name == "undescribed"  # a class without one keeps its own
    assert PluginBackend.descriptor.install_hint("dkt-plug") == "pip install 'dkt-plug[plug]'"
