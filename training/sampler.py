"""Which item each rank draws at each step, so a resumed run sees exactly the same data.

The data position of a run is its step count: batch ``k`` of rank ``r`` is a pure function
of (seed, k, r, world size). A resumed run therefore starts its sampler at the step it
resumes from instead of replaying or skipping loader output. Items are addressed by a
single integer key ``epoch * len(dataset) + index`` so DataLoader workers (which hold their
own copies of the dataset) need no shared epoch state: each key carries its epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from dkt.errors import DktError
from training.data import CompositeDataset

__all__ = ["EpochItems", "ResumableSampler", "check_batch", "collate_items"]


class EpochItems(Dataset):
    """``CompositeDataset`` addressed by ``epoch * len + index`` keys.

    Each item also lists the files its draw had to skip (``skip_bad``), so the main process
    can count them even when the skips happened in worker processes.
    """

    def __init__(self, dataset: CompositeDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int) -> dict[str, Any]:
        epoch, index = divmod(int(key), len(self.dataset))
        self.dataset.set_epoch(epoch)
        before = set(self.dataset.skipped)
        try:
            item: dict[str, Any] = dict(self.dataset[index])
        except DktError as exc:
            # Raised in a worker, our error types would reach the main process as a
            # RuntimeError holding a traceback; carry the one-line message instead.
            return {"error": str(exc)}
        item["skipped"] = sorted(str(p) for p in self.dataset.skipped - before)
        return item


def collate_items(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the tensors; concatenate the per-item lists of skipped files.

    A batch with a failed item is just ``{"error": message}``: see :func:`check_batch`.
    """
    for item in items:
        if "error" in item:
            return {"error": item["error"]}
    batch: dict[str, Any] = {
        key: torch.stack([item[key] for item in items]) for key in items[0] if key != "skipped"
    }
    batch["skipped"] = [path for item in items for path in item.get("skipped", ())]
    return batch


def check_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Raise the data error a worker reported, with its one-line message naming the file."""
    if "error" in batch:
        raise DktError(batch["error"])
    return batch


class ResumableSampler(Sampler[int]):
    """Endless item keys for one rank, starting at batch ``start_batch``.

    Every epoch is a fresh permutation of the dataset (seeded by (seed, epoch)) split into
    ``world_size`` disjoint strided shards; each rank takes whole batches of its shard, so
    no item is seen twice in an epoch and the ranks never overlap.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_batch: int = 0,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.length = length
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_batch = start_batch
        self.batches_per_epoch = (length // world_size) // batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"{length} items cannot fill one batch of {batch_size} on each of "
                f"{world_size} rank(s); lower the batch size"
            )

    def __len__(self) -> int:  # endless; DataLoader only needs this for progress
        return 2**62

    def epoch_keys(self, epoch: int) -> np.ndarray:
        """This rank's item keys for ``epoch``, in order (whole batches only)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.length)
        shard = order[self.rank :: self.world_size][: self.batches_per_epoch * self.batch_size]
        return shard + epoch * self.length

    def __iter__(self) -> Iterator[int]:
        epoch, batch = divmod(self.start_batch, self.batches_per_epoch)
        offset = batch * self.batch_size
        while True:
            yield from (int(k) for k in self.epoch_keys(epoch)[offset:])
            epoch, offset = epoch + 1, 0
