"""Hostile or broken model files and training configs, through the CLI (issue 26).

The companion of ``test_hostile_inputs.py`` (images): one case per kind, each saying what a
user gets: the exit code, the one line naming the file and what is wrong, and that no
partial or wrong output is left behind. A diverging training run, non-finite
hyper-parameters, a YAML alias bomb, a checkpoint with NaN weights, a model whose output
overflows, and tampered ONNX metadata or engine sidecars. All files are tiny and made here.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

import training.run  # noqa: F401 - `dkt train` imports it as it runs: here, so no timed run does
from backends.engine_sidecar import EngineMetadata, sidecar_path, write_sidecar
from backends.shapes import ShapeProfile
from dkt.imaging.imageio import write_image
from dkt.inference.pairing import OUTPUT_MARKER
from dkt_cli.app import app
from tests.conftest import TINY_TRAIN_SETS, synthetic_pair

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()

FAILS = 1
USAGE = 2


@dataclass
class Setup:
    """What a case made: the command line, how its one error line starts, and the paths
    that must not exist afterwards (no partial or wrong output)."""

    args: list[str]
    start: str
    absent: list[Path] = field(default_factory=list)
    stdout_empty: bool = False


@dataclass
class Files:
    """What every case may start from: a tiny checkpoint and ONNX export, training data."""

    tmp: Path
    checkpoint: Path
    onnx: Path
    train_data: Path


# --------------------------------------------------------------------------- helpers


def _rewrite_tensors(src: Path, dst: Path, edit: Callable[[dict], None]) -> Path:
    with safe_open(str(src), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        metadata = dict(fh.metadata() or {})
    edit(tensors)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


def _nan_checkpoint(f: Files) -> Path:
    def edit(tensors: dict) -> None:
        name = "bitransform.to_painting.V"
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] = float("nan")

    return _rewrite_tensors(f.checkpoint, f.tmp / "nan.safetensors", edit)


def _overflowing_checkpoint(f: Files) -> Path:
    """Finite weights (what one step at lr=1e30 writes) whose activations overflow."""

    def edit(tensors: dict) -> None:
        for name in tensors:
            tensors[name] = tensors[name] * 1e30

    return _rewrite_tensors(f.checkpoint, f.tmp / "huge.safetensors", edit)


def _harmonize(f: Files, model: Path) -> tuple[list[str], Path]:
    composite, mask = synthetic_pair()
    write_image(f.tmp / "c.png", composite)
    write_image(f.tmp / "m.png", mask)
    out = f.tmp / "out" / "r.png"
    args = ["harmonize", f.tmp / "c.png", "--mask", f.tmp / "m.png", "-o", out,
            "--model", model, "--device", "cpu"]  # fmt: skip
    return [str(a) for a in args], out


def _train(f: Files, run: Path, *extra: str) -> list[str]:
    data = f.train_data
    args = ["train", "--paintings", str(data / "paintings"), "--photos", str(data / "photos"),
            "--masks", str(data / "masks"), "--run-dir", str(run)]  # fmt: skip
    for item in TINY_TRAIN_SETS:
        args += ["--set", item]
    return args + list(extra)


def _tampered_onnx(f: Files, name: str, record: str) -> Path:
    onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install 'dkt[onnx]')")
    proto = onnx.load_model(str(f.onnx))
    for entry in list(proto.metadata_props):
        if entry.key == "dkt":
            proto.metadata_props.remove(entry)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "dkt", record
    path = f.tmp / f"{name}.onnx"
    onnx.save_model(proto, str(path))
    return path


def _onnx_record(f: Files, **changes: object) -> str:
    from backends.onnx_metadata import read_metadata

    return json.dumps({**read_metadata(f.onnx), **changes})


def _engine(f: Files, sidecar: bytes) -> Path:
    engine = f.tmp / "model.engine"
    engine.write_bytes(b"\x00not really an engine")
    profile = ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128))
    meta = EngineMetadata("0.1.0", "tiny.safetensors", "ab" * 32, "10.8.0.43", "NVIDIA H100",
                          "9.0", "fp16", profile)  # fmt: skip
    write_sidecar(engine, meta)
    sidecar_path(engine).write_bytes(sidecar)
    return engine


# --------------------------------------------------------------------------- the kinds


def train_diverges(f: Files) -> Setup:
    """lr=1e30: one step makes weights near 1e30, the next loss overflows to NaN."""
    run = f.tmp / "run"
    args = _train(f, run, "--steps", "4", "--set", "optim.lr=1e30",
                  "--set", "run.checkpoint_every=1")  # fmt: skip
    written = [run / "model.safetensors", run / "checkpoints" / "step-00000002.safetensors"]
    return Setup(args, f"error: {run}: training diverged at step 2: NaN or infinite loss", written)


def train_infinite_lr(f: Files) -> Setup:
    run = f.tmp / "run"
    args = _train(f, run, "--steps", "2", "--set", "optim.lr=.inf")
    return Setup(args, "error: dktnet-lite (with overrides): optim.lr = inf is not a finite", [run])


def config_alias_bomb(f: Files) -> Setup:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = f.tmp / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    args = ["train", "--config", str(path), "--print-config"]
    return Setup(args, f"error: {path}: YAML aliases (*name, line 2) are not allowed",
                 stdout_empty=True)  # fmt: skip


def nan_checkpoint_harmonize(f: Files) -> Setup:
    model = _nan_checkpoint(f)
    args, out = _harmonize(f, model)
    return Setup(args, f"error: {model}: not loaded: tensor(s) with NaN or infinite", [out])


def nan_checkpoint_export(f: Files) -> Setup:
    model = _nan_checkpoint(f)
    out = f.tmp / "exported" / "nan.onnx"
    args = ["export", str(model), "-o", str(out), "--exporter", "torchscript"]
    return Setup(args, f"error: {model}: not loaded: tensor(s) with NaN", [out, out.parent])


def overflowing_model(f: Files) -> Setup:
    args, out = _harmonize(f, _overflowing_checkpoint(f))
    return Setup(args, f"{f.tmp / 'c.png'}: the model's output is NaN or infinite", [out])


def overflowing_model_in_onnx(f: Files) -> Setup:
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    from dkt.export.onnx import export_onnx
    from tests.export_fixtures import PROFILE

    exported = f.tmp / "huge.onnx"
    export_onnx(_overflowing_checkpoint(f), exported, profile=PROFILE, exporter="torchscript")
    args, out = _harmonize(f, exported)
    return Setup(args, f"{f.tmp / 'c.png'}: the model's output is NaN or infinite", [out])


def onnx_metadata_list(f: Files) -> Setup:
    model = _tampered_onnx(f, "list", "[1, 2, 3]")
    return Setup(["info", str(model)], f"error: {model}: dkt metadata in the ONNX file is a "
                 "JSON list, not an object")  # fmt: skip


def onnx_metadata_deep(f: Files) -> Setup:
    model = _tampered_onnx(f, "deep", "[" * 100_000 + "]" * 100_000)
    return Setup(["info", str(model)], f"error: {model}: dkt metadata in the ONNX file is "
                 "nested too deeply")  # fmt: skip


def onnx_metadata_huge_size(f: Files) -> Setup:
    model = _tampered_onnx(f, "huge", _onnx_record(f, working_size="huge"))
    args, out = _harmonize(f, model)
    return Setup(args, f"error: {model}: dkt metadata in the ONNX file: working_size must be "
                 'a whole number from 8, or null, got "huge"', [out])  # fmt: skip


def onnx_metadata_bad_version(f: Files) -> Setup:
    model = _tampered_onnx(f, "version", _onnx_record(f, format_version="x"))
    return Setup(["info", str(model)], f"error: {model}: dkt metadata in the ONNX file: "
                 'format_version must be a whole number from 1, got "x"')  # fmt: skip


def sidecar_not_utf8(f: Files) -> Setup:
    engine = _engine(f, '{"gpu_name": "caf\xe9"}'.encode("latin-1"))
    return Setup(["info", str(engine)],
                 f"error: {sidecar_path(engine)}: engine metadata is not UTF-8 text")  # fmt: skip


def sidecar_tampered(f: Files) -> Setup:
    engine = _engine(f, b'["not", "a", "record"]')
    return Setup(["info", str(engine)],
                 f"error: {sidecar_path(engine)}: engine metadata is a JSON list")  # fmt: skip


@dataclass(frozen=True)
class Case:
    make: Callable[[Files], Setup]
    code: int


CASES = [
    Case(train_diverges, FAILS),
    Case(train_infinite_lr, USAGE),
    Case(config_alias_bomb, USAGE),
    Case(nan_checkpoint_harmonize, USAGE),
    Case(nan_checkpoint_export, USAGE),
    Case(overflowing_model, FAILS),
    Case(overflowing_model_in_onnx, FAILS),
    Case(onnx_metadata_list, USAGE),
    Case(onnx_metadata_deep, USAGE),
    Case(onnx_metadata_huge_size, USAGE),
    Case(onnx_metadata_bad_version, USAGE),
    Case(sidecar_not_utf8, USAGE),
    Case(sidecar_tampered, USAGE),
]


def _leftovers(folder: Path, before: set[Path]) -> list[Path]:
    """Temporary files (atomic writes name theirs with a leading dot) left in ``folder``."""
    return [p for p in folder.rglob(".*") if p not in before and p.name != OUTPUT_MARKER]


@pytest.mark.parametrize("case", CASES, ids=[c.make.__name__ for c in CASES])
def test_hostile_model_or_config(
    case: Case, tmp_path: Path, tiny_checkpoint: Path, torchscript_odd_onnx: Path,
    train_data: Path,
) -> None:  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    checkpoint = shutil.copy(tiny_checkpoint, work / "tiny.safetensors")
    files = Files(work, Path(checkpoint), torchscript_odd_onnx, train_data)
    setup = case.make(files)
    before = set(work.rglob(".*"))
    start = time.perf_counter()
    result = runner.invoke(app, setup.args)
    seconds = time.perf_counter() - start

    assert result.exit_code == case.code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(setup.start)]
    assert len(lines) == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, result.stderr  # one line, not one per layer
    for path in setup.absent:
        assert not path.exists(), path
    assert _leftovers(work, before) == []
    if setup.stdout_empty:
        assert result.stdout == ""
        assert seconds < 1.0  # refused before anything expands (it took 208 s and 10.6 GB)
