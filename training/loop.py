"""DKTNet training: the full objective, checkpoints that resume exactly, one or many processes.

``L_G = L_s + λ_c L_c + λ_adv L_adv + λ_cons L_cons + L_recons`` (METHOD.md). The
adversarial term and the discriminator start after ``adversarial.warmup_steps`` generator-only
steps, so the discriminator first meets outputs that already look harmonized rather than a
decoder that has not learnt to reconstruct yet.

Exact resume rests on three things: every random draw of the data is a function of (seed,
step) (see ``training.sampler``), the training state holds every optimiser, scheduler,
EMA and RNG state, and a checkpoint is only written between steps. Under ``torchrun`` each
rank draws its own shard of every epoch; gradients are averaged by DistributedDataParallel;
rank 0 alone logs and writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import platform
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from dkt import dktnet
from dkt.dktnet.checkpoint import (
    file_sha256,
    load_checkpoint,
    non_finite_tensors,
    save_checkpoint,
)
from dkt.dktnet.distilled_weights import load_distilled_decoder_state, load_distilled_encoder
from dkt.dktnet.encoders import encoder_kind
from dkt.dktnet.model import MULTIPLE, DKTNet, NetworkOutput
from dkt.dktnet.vgg_weights import load_inverter_state
from dkt.errors import CheckpointError, TrainingDivergedError
from training.config import TrainConfig
from training.data import CompositeDataset
from training.discriminator import PatchDiscriminator
from training.distributed import DistContext
from training.ema import EMA
from training.losses import (
    adversarial_loss,
    autoencoder_loss,
    chroma_noise_loss,
    colour_loss,
    consistency_loss,
    content_loss,
    content_target,
    discriminator_step_loss,
    identity_loss,
    kernel_diversity_loss,
    style_loss,
)
from training.lossnet import LossNetwork
from training.monitor import Monitor, sample_grid
from training.optim import build_optimizer, build_scheduler
from training.rundir import (
    MODEL_NAME,
    checkpoint_paths,
    latest_checkpoint,
    prune_checkpoints,
    write_run_config,
)
from training.sampler import EpochItems, ResumableSampler, check_batch, collate_items
from training.state import LoadedState, load_training_state, restore_rng, save_training_state

__all__ = ["GeneratorPass", "TrainResult", "Trainer", "run_training"]

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: Encoder name -> the reader of the pretrained inverter its decoder starts from.
_DECODER_INITS = {
    "vgg19-relu3": load_inverter_state,
    "cd16x-relu4": load_distilled_decoder_state,
}


class GeneratorPass(nn.Module):
    """Everything that touches the generator's weights in one step, as one ``forward``.

    DistributedDataParallel synchronises gradients of what happens inside ``forward``; the
    generator is used several times per step (composite, identity painting, autoencoder,
    re-encoding for the consistency term), so all of it is gathered here.
    """

    def __init__(self, model: DKTNet) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        composite: torch.Tensor,
        mask: torch.Tensor,
        painting: torch.Tensor,
        *,
        consistency: bool,
        autoencoder: bool,
    ) -> dict[str, Any]:
        rendered: NetworkOutput = self.model.run_padded(composite, mask)
        # Unclamped blend: clamping would cut the gradient of every pixel outside [0, 1].
        output = composite * (1.0 - mask) + rendered.image * mask
        out: dict[str, Any] = {
            "output": output,
            "identity": self.model.run_padded(painting, mask).image,
            "kernel_weights": rendered.kernel_weights,
        }
        if consistency:
            out["consistency"] = consistency_loss(self.model, rendered, output, mask)
        if autoencoder:
            out["autoencoder"] = self.model.autoencode(composite)
        return out


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    model: Path
    steps: int
    interrupted: bool
    skipped_files: int
    #: Whether this process is rank 0, the one that reports (every rank gets a result).
    is_main: bool = True


class Trainer:
    """The generator, discriminator, their optimisers and schedulers, EMA, and one step."""

    def __init__(
        self, config: TrainConfig, loss_network: LossNetwork, dist: DistContext | None = None
    ) -> None:
        self.config = config
        self.dist = dist or DistContext()
        self.device = self.dist.device
        torch.manual_seed(config.run.seed)
        self.model = DKTNet(config.model)
        pretrained = encoder_kind(config.model.encoder).pretrained
        if pretrained == "vgg19":
            _copy_frozen_encoder(self.model, loss_network)
        if pretrained == "distilled" and not config.run.encoder_init:
            raise ValueError(
                f"model.encoder {config.model.encoder} needs its pretrained weights: pass "
                "--encoder-init cd16x_encoder_relu4_1.pth (run.encoder_init)"
            )
        if config.run.encoder_init:
            self.model.encoder.load_state_dict(
                load_distilled_encoder(config.run.encoder_init).state_dict()
            )
        if config.run.decoder_init:
            self.model.decoder.load_state_dict(
                _DECODER_INITS[config.model.encoder](config.run.decoder_init), strict=False
            )
        self.model.to(self.device).train()
        self.loss_network = loss_network
        self.content_taps = loss_network.content_indices(config.loss.content_taps)
        self.loss_net = loss_network.network.to(self.device).eval()
        adv = config.adversarial
        self.disc = PatchDiscriminator(channels=adv.channels, layers=adv.layers).to(self.device)
        optim, steps = config.optim, config.run.steps
        self.g_opt = build_optimizer(generator_groups(self.model), optim.lr, optim)
        self.d_opt = build_optimizer(self.disc.parameters(), adv.lr, optim)
        self.g_sched = build_scheduler(self.g_opt, steps, optim)
        self.d_sched = build_scheduler(self.d_opt, max(steps - adv.warmup_steps, 1), optim)
        self.ema = EMA(self.model, config.run.ema_decay) if config.run.ema_decay else None
        self.amp_dtype = _AMP_DTYPES.get(config.run.precision)
        if self.amp_dtype is torch.float16 and self.device.type != "cuda":
            raise ValueError("run.precision fp16 needs CUDA; use bf16 or fp32 on the CPU")
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype is torch.float16
        )
        self.g_pass: nn.Module = GeneratorPass(self.model)
        self.d_net: nn.Module = self.disc
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_pass = DistributedDataParallel(self.g_pass, device_ids=ids)
            self.d_net = DistributedDataParallel(self.disc, device_ids=ids)

    def init_from(self, path: Path) -> dict[str, Any]:
        """Start from a trained model's weights (fine-tuning); its shape must match the config.

        Returns what the provenance should say about it.
        """
        source = load_checkpoint(path)
        ours = dataclasses.replace(self.config.model, extra={})
        theirs = dataclasses.replace(source.config, working_size=ours.working_size, extra={})
        if theirs != ours:
            raise CheckpointError(
                path, f"--init: its model config {source.config.to_dict()} differs from the run's"
            )
        self.model.load_state_dict(source.state_dict())
        if self.ema is not None:  # restart the average from the loaded weights
            self.ema = EMA(self.model, self.ema.decay)
        return {
            "file": Path(path).name,
            "sha256": file_sha256(path),
            "steps": source.provenance.get("steps"),
            "loss_network": source.provenance.get("loss_network"),
        }

    # ------------------------------------------------------------------ one step

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def adversarial_active(self, step: int) -> bool:
        """The adversarial term and discriminator run from the step after the warm-up."""
        return self.config.loss.adversarial > 0 and step > self.config.adversarial.warmup_steps

    def adversarial_ramp(self, step: int) -> float:
        """λ_adv grows linearly over ``ramp_steps`` after the warm-up: no sudden jolt."""
        adv = self.config.adversarial
        if not adv.ramp_steps:
            return 1.0
        return min(1.0, (step - adv.warmup_steps) / adv.ramp_steps)

    def step(
        self, batch: dict[str, torch.Tensor], step: int
    ) -> tuple[dict[str, float], torch.Tensor]:
        """One generator update (and one discriminator update once adversarial); returns the
        losses and the blended output (for sample grids)."""
        weights = self.config.loss
        composite = batch["composite"].to(self.device, non_blocking=True)
        mask = batch["mask"].to(self.device, non_blocking=True)
        painting = batch["painting"].to(self.device, non_blocking=True)
        adversarial = self.adversarial_active(step)

        self.disc.requires_grad_(False)
        with self._autocast():
            gen = self.g_pass(
                composite,
                mask,
                painting,
                consistency=weights.consistency > 0,
                autoencoder=weights.autoencoder > 0,
            )
            output = gen["output"]
            with torch.no_grad():
                target_feats = self.loss_net(composite)
            output_feats = self.loss_net(output)
            content = torch.stack([
                content_loss(
                    output_feats[c],
                    content_target(target_feats[c], mask, weights.content_target),
                    mask,
                )
                for c in self.content_taps
            ]).mean()  # fmt: skip
            terms: dict[str, torch.Tensor] = {
                "style": style_loss(output_feats, target_feats, mask),
                "content": content,
                "identity": identity_loss(gen["identity"], painting),
            }
            if weights.colour > 0:
                terms["colour"] = colour_loss(output, composite, mask)
            if weights.chroma > 0:
                terms["chroma"] = chroma_noise_loss(output, composite, mask)
            if weights.diversity > 0:
                terms["diversity"] = kernel_diversity_loss(gen["kernel_weights"])
            if "consistency" in gen:
                terms["consistency"] = gen["consistency"]
            if "autoencoder" in gen:
                terms["autoencoder"] = autoencoder_loss(gen["autoencoder"], composite)
            if adversarial:
                terms["adversarial"] = adversarial_loss(self.disc(output), mask)
            scale = {name: getattr(weights, name) for name in terms}
            if adversarial:
                scale["adversarial"] *= self.adversarial_ramp(step)
            total = sum(scale[name] * value.float() for name, value in terms.items())
        self.g_opt.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self._clip(self.g_opt)
        self.scaler.step(self.g_opt)
        self.g_sched.step()
        if self.ema is not None:
            self.ema.update(self.model)

        if adversarial:
            self.disc.requires_grad_(True)
            with self._autocast():
                terms["discriminator"] = discriminator_step_loss(self.d_net, output, mask, painting)
            self.d_opt.zero_grad(set_to_none=True)
            self.scaler.scale(terms["discriminator"]).backward()
            self._clip(self.d_opt)
            self.scaler.step(self.d_opt)
            self.d_sched.step()
        self.scaler.update()
        values = {name: float(value.detach()) for name, value in terms.items()}
        values["total"] = float(total.detach())
        return values, output.detach()

    def _clip(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip each parameter group's gradient norm on its own (see :func:`generator_groups`)."""
        clip = self.config.optim.grad_clip
        if clip:
            self.scaler.unscale_(optimizer)
            for group in optimizer.param_groups:
                torch.nn.utils.clip_grad_norm_(group["params"], max_norm=clip)

    # ------------------------------------------------------------------ state

    def _state_parts(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        modules: dict[str, Any] = {"generator": self.model, "discriminator": self.disc}
        if self.ema is not None:
            modules["ema"] = self.ema
        optimizers = {"generator": self.g_opt, "discriminator": self.d_opt}
        schedulers = {"generator": self.g_sched, "discriminator": self.d_sched}
        return modules, optimizers, schedulers

    def save_state(self, path: Path, step: int, meta: dict[str, Any]) -> None:
        modules, optimizers, schedulers = self._state_parts()
        meta = {**meta, "grad_scaler": self.scaler.state_dict()}
        save_training_state(
            path, step=step, modules=modules, optimizers=optimizers, schedulers=schedulers,
            meta=meta,
        )  # fmt: skip

    def load_state(self, path: Path) -> LoadedState:
        """Restore weights, optimisers, schedulers and EMA (RNG states: see ``restore_rng``)."""
        modules, optimizers, schedulers = self._state_parts()
        loaded = load_training_state(
            path, modules=modules, optimizers=optimizers, schedulers=schedulers
        )
        if loaded.meta.get("grad_scaler"):
            self.scaler.load_state_dict(loaded.meta["grad_scaler"])
        return loaded

    def final_weights(self) -> contextlib.AbstractContextManager[Any]:
        """The weights to publish: EMA when kept (swapped in for the duration), else live."""
        if self.ema is None:
            return contextlib.nullcontext()
        return self.ema.swapped_into(self.model)


def generator_groups(model: DKTNet) -> list[dict[str, Any]]:
    """The generator's trainable parameters as optimiser groups, each clipped on its own.

    One global clip let the decoder's large gradients set the clip factor for everything
    (about 0.12 at initialisation), scaling the kernel generators' already small gradients
    to 1e-11..1e-13, below Adam's eps: P and K_c never moved. The bi-transformation (kernel
    generators) is therefore its own group; the decoder and a trainable encoder the other.
    """
    kernels = [p for p in model.bitransform.parameters() if p.requires_grad]
    ids = {id(p) for p in kernels}
    rest = [p for p in model.trainable_parameters() if id(p) not in ids]
    return [
        {"params": group, "name": name}
        for name, group in (("kernels", kernels), ("decoder", rest))
        if group
    ]


def _copy_frozen_encoder(model: DKTNet, loss_network: LossNetwork) -> None:
    """The paper's frozen encoder is the pretrained loss network itself (to the encoder's depth).

    A loss network that stops before the encoder's deepest tap is an error: the missing
    layers would otherwise stay random inside a model that claims to be pretrained.
    """
    source = loss_network.network.state_dict()
    wanted = model.encoder.state_dict()
    missing = sorted(set(wanted) - set(source))
    if missing:
        raise ValueError(
            f"model.encoder {model.config.encoder} needs VGG-19 layers the loss network lacks "
            f"({', '.join(missing[:3])}...); use encoder vgg19-relu3 or a deeper VGG-19 file"
        )
    model.encoder.load_state_dict({k: source[k] for k in wanted})


# --------------------------------------------------------------------------- the run


class _StopFlag:
    """Ctrl-C asks the loop to stop after the current step and checkpoint; twice aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (e.g. inside a test runner's worker)
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _diverged(
    run_dir: Path, step: int, what: str, config: TrainConfig, good_until: int
) -> TrainingDivergedError:
    """The one-line stop: the step, what went non-finite, and the last good checkpoint.

    Nothing is written at or after that step, and pruning only runs after a write, so the
    good checkpoint is still on disk. ``good_until``: the newest step whose weights are known
    good (a non-finite loss at step k condemns the weights written at k - 1, which made it).
    """
    found = latest_checkpoint(run_dir, at_most=good_until)
    kept = (
        f"the last good checkpoint is {checkpoint_paths(run_dir, found[0])[0]} (step {found[0]})"
        if found
        else "no good checkpoint was written before it"
    )
    return TrainingDivergedError(
        f"{run_dir}: training diverged at step {step}: {what} (optim.lr is "
        f"{config.optim.lr:g}: lower it, or check the data); {kept}"
    )


def _names(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _non_finite_losses(losses: dict[str, float], dist: DistContext) -> list[str] | None:
    """The loss terms that are NaN or infinite here, or ``None`` when all are finite on
    every process (one process's NaN reaches every process's weights through the gradient
    average, so all stop together)."""
    bad = [name for name, value in losses.items() if not math.isfinite(value)]
    anywhere = dist.total(int(bool(bad))) > 0 if dist.enabled else bool(bad)
    return (bad or ["on another process"]) if anywhere else None


def _loader(
    dataset: CompositeDataset, config: TrainConfig, dist: DistContext, start_step: int
) -> Iterator[dict[str, Any]]:
    sampler = ResumableSampler(
        len(dataset),
        config.data.batch_size,
        seed=config.run.seed,
        rank=dist.rank,
        world_size=dist.world_size,
        start_batch=start_step,
    )
    loader = DataLoader(
        EpochItems(dataset),
        batch_size=config.data.batch_size,
        sampler=sampler,
        num_workers=config.data.workers,
        collate_fn=collate_items,
        pin_memory=dist.device.type == "cuda",
        persistent_workers=config.data.workers > 0,
        prefetch_factor=4 if config.data.workers > 0 else None,
    )
    return iter(loader)


def _provenance(
    trainer: Trainer, dataset: CompositeDataset, extra: dict[str, Any]
) -> dict[str, Any]:
    cfg = trainer.config
    return {
        "trainer": "dkt training.loop",
        "dkt_version": dktnet.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "device": str(trainer.device),
        "world_size": trainer.dist.world_size,
        "size": cfg.data.size,
        "config": cfg.to_dict(),
        "loss_network": trainer.loss_network.provenance,
        "data": {"paintings": len(dataset.paintings), "foregrounds": len(dataset.foregrounds)},
        **extra,
    }


def run_training(
    trainer: Trainer,
    dataset: CompositeDataset,
    run_dir: Path,
    *,
    resume: bool = False,
    provenance: dict[str, Any] | None = None,
    monitor: Monitor | None = None,
) -> TrainResult:
    """Train until ``run.steps`` (or Ctrl-C), checkpointing every ``run.checkpoint_every``."""
    cfg, dist = trainer.config, trainer.dist
    if cfg.data.size % MULTIPLE:
        raise ValueError(f"training size must be a multiple of {MULTIPLE}, got {cfg.data.size}")
    start_step, seconds_before = 0, 0.0
    loaded: LoadedState | None = None
    extra = dict(provenance or {})
    if resume:
        found = latest_checkpoint(run_dir)
        if found is None:
            raise ValueError(f"{run_dir}: no complete checkpoint to resume from")
        loaded = trainer.load_state(found[1])
        start_step = loaded.step
        seconds_before = float(loaded.meta.get("train_seconds", 0.0))
        extra = {**loaded.meta.get("provenance", {}), **extra}
    if dist.is_main:  # on resume too: a longer run.steps must reach the next resume
        write_run_config(run_dir, cfg)
    dist.barrier()
    monitor = monitor or Monitor(
        run_dir if dist.is_main else None, total_steps=cfg.run.steps, start_step=start_step,
        log_every=cfg.run.log_every, tensorboard=cfg.run.tensorboard,
    )  # fmt: skip
    base = _provenance(trainer, dataset, extra)
    started = time.perf_counter()
    skipped: set[str] = set()
    step = start_step

    def info(at: int) -> dict[str, Any]:
        """The provenance of a model file written after ``at`` steps."""
        seconds = round(seconds_before + time.perf_counter() - started, 1)
        seen = at * cfg.data.batch_size * dist.world_size
        return {**base, "steps": at, "train_seconds": seconds, "samples_seen": seen}

    def checkpoint(at: int) -> None:
        # A finite loss can still step the weights to NaN (an overflowing update): such
        # weights are never written, on any process (they are the same on all).
        bad = non_finite_tensors(trainer.model.state_dict())
        if bad:
            what = f"NaN or infinite weights ({_names(bad)})"
            raise _diverged(run_dir, at, what, cfg, good_until=at - 1)
        if dist.is_main:
            provenance = info(at)
            model_path, state_path = checkpoint_paths(run_dir, at)
            model_path.parent.mkdir(parents=True, exist_ok=True)
            with trainer.final_weights():
                save_checkpoint(model_path, trainer.model, provenance=provenance)
            meta = {"train_seconds": provenance["train_seconds"], "provenance": extra}
            trainer.save_state(state_path, at, meta)
            prune_checkpoints(run_dir, cfg.run.keep_checkpoints)
        dist.barrier()

    interrupted = False
    window_start, window_images, rate = time.perf_counter(), 0, 0.0
    try:
        with _StopFlag() as stop:
            batches = _loader(dataset, cfg, dist, start_step) if step < cfg.run.steps else iter(())
            if loaded is not None:  # after the loader: starting workers draws from torch's RNG
                restore_rng(loaded.rng)
            for batch in map(check_batch, batches):
                step += 1
                skipped.update(batch["skipped"])
                losses, output = trainer.step(batch, step)
                bad_losses = _non_finite_losses(losses, dist)
                if bad_losses is not None:
                    what = f"NaN or infinite loss ({_names(bad_losses)})"
                    raise _diverged(run_dir, step, what, cfg, good_until=step - 2)
                window_images += cfg.data.batch_size * dist.world_size
                if step % cfg.run.log_every == 0 or step == cfg.run.steps:
                    losses = dist.mean(losses)
                    now = time.perf_counter()
                    rate = window_images / max(now - window_start, 1e-9)
                    window_start, window_images = now, 0
                elif step == start_step + 1:  # a first figure before the first log line
                    rate = window_images / max(time.perf_counter() - window_start, 1e-9)
                monitor.step(step, losses, trainer.g_sched.get_last_lr()[0], rate)
                if step % cfg.run.image_every == 0 and dist.is_main:
                    monitor.images(step, sample_grid(batch["composite"], output, batch["painting"]))
                stop_now = dist.total(int(stop.requested)) > 0 if dist.enabled else stop.requested
                if step % cfg.run.checkpoint_every == 0 or step == cfg.run.steps or stop_now:
                    checkpoint(step)
                if stop_now:
                    interrupted = True
                    break
                if step >= cfg.run.steps:
                    break
    finally:
        monitor.close()
    final = run_dir / MODEL_NAME
    if not interrupted and dist.is_main:
        with trainer.final_weights():
            save_checkpoint(final, trainer.model, provenance=info(step))
    dist.barrier()
    trainer.model.eval()
    return TrainResult(
        run_dir, final, step, interrupted, dist.total(len(skipped)), is_main=dist.is_main
    )
