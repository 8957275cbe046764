"""dkt.doctor: the environment report behind ``dkt doctor``.

Lookups get an explicit ``env`` whose cache folder is the test's own empty directory, so the
machine's real cache, variables and ``../shared/weights`` never decide a result.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from dkt import doctor
from dkt.dktnet import BUNDLED_MODEL
from dkt.dktnet.pretrained import INVERTER_FILE, VGG_RELU3_FILE


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No weight variables set and an empty cache folder (``$XDG_CACHE_HOME/dkt``)."""
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.fixture
def no_shared(tmp_path: Path) -> Path:
    """A shared folder holding nothing, so no hint comes from the real checkout's files."""
    return tmp_path / "no-shared"


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stand-in weights")
    return path


@pytest.mark.parametrize("name", ["onnxscript", "tensorrt", "onnx"])
def test_a_missing_optional_package_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail as if absent
    assert doctor.package_version(name) == "not installed"
    assert doctor.doctor_report()["versions"][name] == "not installed"


def test_an_installed_package_reports_its_version() -> None:
    assert doctor.package_version("torch") == torch.__version__
    assert doctor.package_version("numpy") == __import__("numpy").__version__


def test_missing_onnxruntime_reports_no_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    report = doctor.doctor_report()
    assert report["versions"]["onnxruntime"] == "not installed"
    assert report["onnxruntime_providers"] == "not installed"


def test_providers_are_what_onnxruntime_offers() -> None:
    ort = pytest.importorskip("onnxruntime")
    assert doctor.doctor_report()["onnxruntime_providers"] == ort.get_available_providers()


def test_a_broken_install_is_not_called_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package whose own import fails (a dependency gone) is installed, but broken."""
    (tmp_path / "dkt_doctor_broken_pkg.py").write_text("import dkt_doctor_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = doctor.package_version("dkt_doctor_broken_pkg")
    assert text.startswith("import failed"), text
    assert "dkt_doctor_absent_dependency" in text


def test_cuda_devices_are_listed_with_name_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [SimpleNamespace(name="Fake GPU A", total_memory=8 << 30),
               SimpleNamespace(name="Fake GPU B", total_memory=16 << 30)]  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(devices))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: devices[i])
    report = doctor.cuda_report()
    assert report["available"] is True and report["count"] == 2
    assert report["devices"] == [
        {"index": 0, "name": "Fake GPU A", "memory_bytes": 8 << 30},
        {"index": 1, "name": "Fake GPU B", "memory_bytes": 16 << 30},
    ]


def test_no_cuda_means_no_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert doctor.cuda_report()["devices"] == []
    assert doctor.cuda_report()["count"] == 0


def test_a_failing_cuda_driver_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> bool:
        raise RuntimeError("CUDA driver initialization failed\nmore text")

    monkeypatch.setattr(torch.cuda, "is_available", broken)
    report = doctor.cuda_report()
    assert report["count"] == 0
    assert report["error"] == "RuntimeError: CUDA driver initialization failed"


def test_cpu_threads_are_torchs(one_thread) -> None:
    torch.set_num_threads(1)
    assert doctor.doctor_report()["cpu"]["torch_threads"] == 1
    torch.set_num_threads(2)
    assert doctor.doctor_report()["cpu"]["torch_threads"] == 2


def test_weights_found_through_their_variables(
    tmp_path: Path, env: dict[str, str], no_shared: Path
) -> None:
    folder = tmp_path / "relu3"
    vgg, inverter = _touch(folder / VGG_RELU3_FILE), _touch(folder / INVERTER_FILE)
    full = _touch(tmp_path / "mine" / "vgg19-full.pth")
    inception = _touch(tmp_path / "mine" / "inception.pth")
    env.update(DKT_WEIGHTS_DIR=str(folder), DKT_VGG19_WEIGHTS=str(full))
    env["DKT_INCEPTION_WEIGHTS"] = str(inception)
    report = doctor.weights_report(env, shared=no_shared)
    assert report["vgg_relu3_1"]["path"] == str(vgg)
    assert report["inverter_relu3_1"]["path"] == str(inverter)
    assert report["vgg_relu3_1"]["source"] == "$DKT_WEIGHTS_DIR"
    assert report["vgg19"]["path"] == str(full)
    # The distilled pair is looked up in the same folder and named as missing there.
    assert report["cd16x_encoder_relu4_1"]["path"] == "not found"
    assert "cd16x_encoder_relu4_1.pth" in report["cd16x_encoder_relu4_1"]["reason"]
    encoder = _touch(folder / "cd16x_encoder_relu4_1.pth")
    _touch(folder / "cd16x_decoder_relu4_1.pth")
    again = doctor.weights_report(env, shared=no_shared)
    assert again["cd16x_encoder_relu4_1"]["path"] == str(encoder)
    assert "approximation" in again["cd16x_encoder_relu4_1"]["what"]
    assert report["vgg19"]["source"] == "$DKT_VGG19_WEIGHTS"
    assert report["inception"]["path"] == str(inception)
    assert report["inception"]["source"] == "$DKT_INCEPTION_WEIGHTS"
    # A set variable is the only place its lookup searches: the cache is not listed.
    assert report["vgg19"]["looked_in"] == [f"$DKT_VGG19_WEIGHTS={full}"]


def test_nothing_found_says_where_it_looked(env: dict[str, str], no_shared: Path) -> None:
    cache = Path(env["XDG_CACHE_HOME"]) / "dkt"
    report = doctor.weights_report(env, shared=no_shared)
    assert set(report) == {
        "vgg_relu3_1", "inverter_relu3_1", "cd16x_encoder_relu4_1", "cd16x_decoder_relu4_1",
        "vgg19", "inception",
    }  # fmt: skip
    for key, entry in report.items():
        assert entry["path"] == "not found", key
        assert entry["source"] is None, key
        assert any(str(cache) in place for place in entry["looked_in"]), (key, entry)
        assert any(place.endswith("(unset)") for place in entry["looked_in"]), (key, entry)
        assert "hint" not in entry
    assert f"{cache}/vgg19-dcbb9e9d.pth" in report["vgg19"]["looked_in"]


def test_a_variable_naming_a_missing_file_is_reported_not_raised(
    tmp_path: Path, env: dict[str, str], no_shared: Path
) -> None:
    env["DKT_VGG19_WEIGHTS"] = str(tmp_path / "typo.pth")
    env["DKT_WEIGHTS_DIR"] = str(tmp_path / "empty")
    report = doctor.weights_report(env, shared=no_shared)
    assert report["vgg19"]["path"] == "not found"
    assert (
        report["vgg19"]["reason"] == f"{tmp_path / 'typo.pth'}: no such file ($DKT_VGG19_WEIGHTS)"
    )
    assert report["vgg_relu3_1"]["path"] == "not found"
    assert str(tmp_path / "empty") in report["vgg_relu3_1"]["reason"]


def test_cached_files_are_found_and_a_truncated_vgg_is_flagged(
    env: dict[str, str], no_shared: Path
) -> None:
    cache = Path(env["XDG_CACHE_HOME"]) / "dkt"
    _touch(cache / VGG_RELU3_FILE)
    _touch(cache / INVERTER_FILE)
    report = doctor.weights_report(env, shared=no_shared)
    assert report["vgg_relu3_1"]["path"] == str(cache / VGG_RELU3_FILE)
    assert report["vgg_relu3_1"]["source"] == "cache"
    # The loss-network lookup falls back to the truncated file: found, but not to relu4_1.
    assert report["vgg19"]["path"] == str(cache / VGG_RELU3_FILE)
    assert "no relu4_1" in report["vgg19"]["note"]


def test_the_shared_folder_is_only_a_hint(
    tmp_path: Path, env: dict[str, str], no_shared: Path
) -> None:
    shared = tmp_path / "shared" / "weights"
    _touch(shared / VGG_RELU3_FILE)
    _touch(shared / INVERTER_FILE)
    report = doctor.weights_report(env, shared=shared)
    assert report["vgg_relu3_1"]["path"] == "not found"
    assert report["vgg_relu3_1"]["hint"].endswith(f"set $DKT_WEIGHTS_DIR={shared}")
    assert "hint" not in doctor.weights_report(env, shared=no_shared)["vgg_relu3_1"]


def test_the_bundled_model_has_its_real_sha256_and_size() -> None:
    report = doctor.bundled_model_report()
    assert report["path"] == str(BUNDLED_MODEL)
    assert report["sha256"] == hashlib.sha256(BUNDLED_MODEL.read_bytes()).hexdigest()
    assert report["size"] == BUNDLED_MODEL.stat().st_size
    assert report["parameters"] > 0
    assert "error" not in report


def test_a_missing_bundled_model_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "dktnet-relu3.safetensors"
    report = doctor.bundled_model_report(path)
    assert report["error"] == f"{path}: no such file"
    assert "sha256" not in report


def test_an_unloadable_bundled_model_is_an_error_but_still_hashed(tmp_path: Path) -> None:
    """A Git LFS pointer in place of the file: hashable, not loadable."""
    path = tmp_path / "dktnet-relu3.safetensors"
    path.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n")
    report = doctor.bundled_model_report(path)
    assert report["error"].startswith(f"{path}: not a safetensors checkpoint")
    assert report["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_report_is_plain_json(env: dict[str, str], no_shared: Path) -> None:
    report = doctor.doctor_report(env, shared=no_shared)
    assert json.loads(json.dumps(report)) == report
    assert set(report) >= {"versions", "cuda", "cpu", "weights", "bundled_model"}
    assert report["versions"]["dkt"] == __import__("dkt").__version__


def test_the_library_module_imports_no_cli_packages() -> None:
    """dkt.doctor is library code: the CLI depends on it, never the other way."""
    source = Path(doctor.__file__).read_text()
    for name in ("typer", "rich", "dkt_cli"):
        assert f"import {name}" not in source and f"from {name}" not in source, name
