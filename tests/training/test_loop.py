"""The training loop: exact resume after a kill, Ctrl-C, and two processes under torchrun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import TINY_TRAIN_SETS
from training.config import load_config
from training.data import CompositeConfig, CompositeDataset
from training.loop import Trainer, run_training
from training.lossnet import load_loss_network
from training.sampler import collate_items
from training.sources import load_foregrounds, load_paintings

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]


def _dataset(data: Path, cfg) -> CompositeDataset:
    return CompositeDataset(
        load_paintings(data / "paintings"),
        load_foregrounds(data / "photos", masks=data / "masks", ratio=None),
        CompositeConfig(size=cfg.data.size, seed=cfg.run.seed),
    )


def _train(data: Path, run: Path, sets: list[str], *, resume: bool = False):
    cfg = load_config("dktnet-lite", TINY_TRAIN_SETS + sets)
    trainer = Trainer(cfg, load_loss_network(cfg.loss.network))
    return run_training(trainer, _dataset(data, cfg), run, resume=resume)


def _same_weights(a: Path, b: Path) -> None:
    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key


def test_resume_in_process_continues_bit_exactly(train_data: Path, tmp_path: Path) -> None:
    """EMA, both optimisers, schedulers and the data position all come back."""
    common = ["run.checkpoint_every=2", "run.ema_decay=0.9", "optim.schedule=constant",
              "optim.warmup_steps=0"]  # fmt: skip
    _train(train_data, tmp_path / "a", [*common, "run.steps=4"])
    _train(train_data, tmp_path / "b", [*common, "run.steps=2"])
    _train(train_data, tmp_path / "b", [*common, "run.steps=4"], resume=True)
    _same_weights(tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors")
    a_state = load_file(tmp_path / "a" / "checkpoints" / "step-00000004.state.safetensors")
    b_state = load_file(tmp_path / "b" / "checkpoints" / "step-00000004.state.safetensors")
    for key in a_state:
        if not key.startswith("rng."):
            assert torch.equal(a_state[key], b_state[key]), key


def _cli(data: Path, run: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "dkt", "train", "--paintings", str(data / "paintings"),
            "--photos", str(data / "photos"), "--masks", str(data / "masks"),
            "--run-dir", str(run)]  # fmt: skip
    for item in TINY_TRAIN_SETS:
        args += ["--set", item]
    return args + list(extra)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_killed_run_resumes_to_the_same_weights(train_data: Path, tmp_path: Path) -> None:
    """SIGKILL after the first checkpoint, --resume: identical to a run never interrupted."""
    sets = ["--steps", "10", "--set", "run.checkpoint_every=2", "--set", "data.workers=1"]
    whole = subprocess.run(_cli(train_data, tmp_path / "whole", *sets), env=_env(),
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli(train_data, run, *sets), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(run / "checkpoints" / "step-00000002.state.safetensors", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not (run / "model.safetensors").exists(), "the run finished before it was killed"
    resumed = subprocess.run(
        [sys.executable, "-m", "dkt", "train", "--resume", str(run)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    _same_weights(tmp_path / "whole" / "model.safetensors", run / "model.safetensors")


def test_ctrl_c_checkpoints_and_says_how_to_resume(train_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = _cli(train_data, run, "--steps", "400", "--set", "run.checkpoint_every=1")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    proc = subprocess.Popen(args, env=_env(), **pipes)
    _wait_for(run / "checkpoints" / "step-00000001.state.safetensors", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"dkt train --resume {run}" in " ".join(err.split())
    assert "Traceback" not in err
    assert not (run / "model.safetensors").exists()
    assert list((run / "checkpoints").glob("*.state.safetensors"))


def test_two_processes_under_torchrun_match_one_process_with_their_joint_batch(
    train_data: Path, tmp_path: Path
) -> None:
    """gloo on the CPU: rank r takes items r, r+2, ... of each epoch, so 2 x batch 1 sees
    exactly the items of 1 x batch 2; with per-sample-mean losses the weights agree."""
    sets = ["--steps", "3", "--set", "loss.content=0", "--set", "run.checkpoint_every=3"]
    single = subprocess.run(_cli(train_data, tmp_path / "one", *sets), env=_env(),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert single.returncode == 0, single.stderr
    per_rank = _cli(train_data, tmp_path / "two", *sets, "--set", "data.batch_size=1",
                    "--device", "cpu")[3:]  # fmt: skip
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    cmd = [*torchrun, "-m", "dkt", *per_rank]
    double = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr
    assert double.stderr.count("run directory:") == 1  # rank 0 alone speaks
    one = load_file(tmp_path / "one" / "model.safetensors")
    two = load_file(tmp_path / "two" / "model.safetensors")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
    from dkt.dktnet.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(tmp_path / "two" / "model.safetensors")
    assert info.provenance["world_size"] == 2
    assert info.provenance["samples_seen"] == 6


@pytest.mark.parametrize("decoder_gain", [1.0, 1e6])
def test_one_clipped_step_moves_every_kernel_tensor(train_data: Path, decoder_gain: float) -> None:
    """After one clipped optimiser step every dynamic-kernel tensor of every generator moves.

    Adam's first step moves each element by about the learning rate when its gradient is
    well above eps; the bar is an RMS change of at least half the learning rate. With one
    global clip dominated by the decoder (clip factor 0.12 on the bundled model) and V
    initialised at 1e-3, P and K_c got gradients below Adam's eps and moved by orders of
    magnitude less. ``decoder_gain`` makes the decoder's gradient a million times larger:
    the kernels' step must not shrink with it.
    """
    lr = 1e-4
    sets = [
        "model.prototypes=4", "model.generator_hidden=32", "model.cov_rank=4",
        "model.kernel_dim=16", "data.size=64", "data.batch_size=2", "data.workers=0",
        "data.filter_ratio=null", "loss.network=random:0", f"optim.lr={lr}",
        "optim.warmup_steps=0", "optim.schedule=constant", "run.tensorboard=false",
    ]  # fmt: skip
    cfg = load_config("dktnet-relu3", sets)
    trainer = Trainer(cfg, load_loss_network(cfg.loss.network))
    dataset = _dataset(train_data, cfg)
    batch = collate_items([dataset[i] for i in range(2)])
    generators = {
        name: getattr(trainer.model.bitransform, name)
        for name in ("to_standard_fg", "to_standard_bg", "to_painting")
    }
    before = {
        (g, t): getattr(gen, t).detach().clone()
        for g, gen in generators.items()
        for t in ("P", "K_c", "K_b", "V")
    }
    for p in trainer.model.decoder.parameters():
        p.register_hook(lambda grad: grad * decoder_gain)
    trainer.step(batch, 1)
    for (g, t), old in before.items():
        moved = (getattr(generators[g], t).detach() - old).pow(2).mean().sqrt().item()
        assert moved > 0.5 * lr, f"{g}.{t} moved by {moved:.2e} (RMS), under half of lr {lr}"


def _poison_from(monkeypatch: pytest.MonkeyPatch, step: int, *, weights: bool) -> None:
    """From ``step`` on, Trainer.step reports a NaN loss, or leaves a NaN in the weights
    while its loss stays finite (an update that overflows)."""
    real = Trainer.step

    def step_with_nan(self: Trainer, batch, at: int):
        losses, output = real(self, batch, at)
        if at >= step:
            if weights:
                with torch.no_grad():
                    next(self.model.decoder.parameters()).view(-1)[0] = float("nan")
            else:
                losses = {**losses, "style": float("nan"), "total": float("nan")}
        return losses, output

    monkeypatch.setattr(Trainer, "step", step_with_nan)


@pytest.mark.parametrize(("weights", "good"), [(False, 2), (True, 3)])
def test_a_non_finite_step_stops_the_run_and_keeps_the_last_good_checkpoint(
    train_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights: bool, good: int
) -> None:
    """A NaN loss ran to the end and wrote a NaN model. The loss at step 4 was made by the
    weights written at step 3, so step 2's are the last good ones; NaN weights written at
    step 4 leave step 3's good."""
    from dkt.errors import TrainingDivergedError
    from training.rundir import checkpoint_paths

    _poison_from(monkeypatch, 4, weights=weights)
    run = tmp_path / "run"
    sets = ["run.steps=6", "run.checkpoint_every=1", "run.keep_checkpoints=5"]
    with pytest.raises(TrainingDivergedError) as info:
        _train(train_data, run, sets)
    message = str(info.value)
    what = "NaN or infinite weights (decoder." if weights else "NaN or infinite loss (style, total)"
    assert message.startswith(f"{run}: training diverged at step 4: {what}")
    assert "optim.lr is 0.0002: lower it" in message
    good_model = checkpoint_paths(run, good)[0]
    assert message.endswith(f"the last good checkpoint is {good_model} (step {good})")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == [
        n
        for s in (1, 2, 3)
        for n in (f"step-{s:08d}.safetensors", f"step-{s:08d}.state.safetensors")
    ]
    assert not (run / "model.safetensors").exists()
