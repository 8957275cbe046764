"""The training loop for DKTNet's generator (style, content and reconstruction terms).

Each step sees a batch of on-the-fly composites plus, as identity samples, the same
paintings with the same masks but nothing pasted: the network must leave those unchanged.
Checkpoints are written atomically every ``checkpoint_every`` steps and at the end, each with
its full provenance (data, steps, time, loss network) in the file's metadata.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

import dktnet
from dktnet.checkpoint import save_checkpoint
from dktnet.model import MULTIPLE, DKTNet
from training.data import CompositeDataset
from training.losses import autoencoder_loss, content_loss, identity_loss, style_loss
from training.lossnet import LossNetwork


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings; everything here is recorded in the checkpoint's provenance."""

    steps: int = 2000
    batch_size: int = 4
    lr: float = 2e-4
    style_weight: float = 1.0
    content_weight: float = 2.0
    identity_weight: float = 10.0
    autoencoder_weight: float = 10.0
    log_every: int = 20
    checkpoint_every: int = 200
    workers: int = 0
    seed: int = 0


@dataclass(frozen=True)
class StepLosses:
    style: float
    content: float
    identity: float
    autoencoder: float
    total: float


def _batches(loader: DataLoader, dataset: CompositeDataset) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches; each pass over the data is a new epoch of random draws."""
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


def generator_losses(
    model: DKTNet,
    loss_net: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    settings: TrainSettings,
) -> tuple[torch.Tensor, StepLosses]:
    """Weighted sum of L_s, λ_c L_c and the two reconstruction terms for one batch."""
    composite, mask, painting = batch["composite"], batch["mask"], batch["painting"]
    rendered = model.render(composite, mask)
    # Unclamped blend: clamping would cut the gradient of every pixel outside [0, 1].
    output = composite * (1.0 - mask) + rendered.image * mask
    with torch.no_grad():
        target_feats = loss_net(composite)
    output_feats = loss_net(output)
    l_style = style_loss(output_feats, target_feats, mask)
    l_content = content_loss(output_feats[-1], target_feats[-1], mask)
    l_identity = identity_loss(model.render(painting, mask).image, painting)
    l_auto = autoencoder_loss(model.autoencode(composite), composite)
    total = (
        settings.style_weight * l_style
        + settings.content_weight * l_content
        + settings.identity_weight * l_identity
        + settings.autoencoder_weight * l_auto
    )
    parts = StepLosses(
        l_style.item(), l_content.item(), l_identity.item(), l_auto.item(), total.item()
    )
    return total, parts


def train(
    model: DKTNet,
    dataset: CompositeDataset,
    loss_network: LossNetwork,
    settings: TrainSettings,
    output: Path,
    provenance: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Train ``model`` in place and write it to ``output``; returns the checkpoint path."""
    size = dataset.config.size
    if size % MULTIPLE:
        raise ValueError(f"training size must be a multiple of {MULTIPLE}, got {size}")
    torch.manual_seed(settings.seed)
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=False,  # the dataset draws its own random samples per (seed, epoch, index)
        drop_last=True,
        num_workers=settings.workers,
        persistent_workers=False,  # set_epoch must reach freshly started workers each epoch
    )
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=settings.lr)
    model.train()
    loss_net = loss_network.network
    started = time.perf_counter()
    window_start, window_images = started, 0
    base = {
        "trainer": "dkt training.loop",
        "dkt_version": dktnet.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "device": "cpu",
        "size": size,
        "settings": dataclasses.asdict(settings),
        "loss_network": loss_network.provenance,
        **(provenance or {}),
    }

    def checkpoint(step: int) -> None:
        info = {**base, "steps": step, "samples_seen": step * settings.batch_size,
                "train_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        save_checkpoint(output, model, provenance=info)

    for step, batch in enumerate(_batches(loader, dataset), start=1):
        total, parts = generator_losses(model, loss_net, batch, settings)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), max_norm=5.0)
        optimizer.step()
        window_images += settings.batch_size
        if step % settings.log_every == 0 or step == settings.steps:
            now = time.perf_counter()
            log(
                f"step {step}/{settings.steps} total {parts.total:.4f} style {parts.style:.4f} "
                f"content {parts.content:.4f} identity {parts.identity:.4f} "
                f"autoencoder {parts.autoencoder:.4f} "
                f"{window_images / (now - window_start):.2f} img/s"
            )
            window_start, window_images = now, 0
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            checkpoint(step)
        if step >= settings.steps:
            break
    model.eval()
    return output
