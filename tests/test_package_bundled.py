"""scripts/package_bundled.py: the bundled file lists every training stage and its totals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dkt.dktnet.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from dkt.dktnet.model import DKTNet
from tests.tiny import tiny_config

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "package_bundled", ROOT / "scripts" / "package_bundled.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stages_are_listed_with_totals_and_the_working_size_is_set(tmp_path: Path) -> None:
    model = DKTNet(tiny_config())
    first, last = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_checkpoint(first, model, provenance={"steps": 10, "train_seconds": 5.0, "size": 32})
    later = {"steps": 20, "train_seconds": 7.5, "size": 32,
             "initialised_from": {"file": "a.safetensors"}}  # fmt: skip
    save_checkpoint(last, model, provenance=later)
    out = tmp_path / "bundled.safetensors"
    _script().package(last, [first], 64, out)
    info = read_checkpoint_info(out)
    assert info.config.working_size == 64
    assert [s["file"] for s in info.provenance["stages"]] == ["a.safetensors", "b.safetensors"]
    assert info.provenance["stages"][1]["initialised_from"] == "a.safetensors"
    assert info.provenance["total_steps"] == 30
    assert info.provenance["total_train_seconds"] == 12.5
    for name, tensor in load_checkpoint(out).state_dict().items():
        assert tensor.equal(model.state_dict()[name]), name
