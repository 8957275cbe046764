"""The data position of a run is its step: a resumed or sharded sampler draws the same keys."""

from __future__ import annotations

import itertools

import pytest

from training.sampler import ResumableSampler, collate_items


def take(sampler: ResumableSampler, n: int) -> list[int]:
    return list(itertools.islice(iter(sampler), n))


def test_resuming_at_a_batch_continues_the_same_stream() -> None:
    full = take(ResumableSampler(10, 3, seed=1), 3 * 7)  # crosses two epoch boundaries
    resumed = take(ResumableSampler(10, 3, seed=1, start_batch=4), 3 * 3)
    assert resumed == full[3 * 4 :]


def test_each_epoch_is_a_permutation_with_the_epoch_in_the_key() -> None:
    sampler = ResumableSampler(9, 3, seed=0)
    keys = take(sampler, 18)
    assert sorted(k % 9 for k in keys[:9]) == list(range(9))
    assert all(k // 9 == 0 for k in keys[:9]) and all(k // 9 == 1 for k in keys[9:])
    assert keys[:9] != [k - 9 for k in keys[9:]]  # a fresh order every epoch


def test_ranks_get_disjoint_shards_of_every_epoch() -> None:
    a = set(take(ResumableSampler(12, 2, rank=0, world_size=2), 6))
    b = set(take(ResumableSampler(12, 2, rank=1, world_size=2), 6))
    assert not a & b
    assert a | b == set(range(12))


def test_too_few_items_for_a_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot fill one batch"):
        ResumableSampler(3, 2, world_size=2)


def test_collate_keeps_skipped_file_names() -> None:
    import torch

    items = [{"x": torch.zeros(2), "skipped": ["a.jpg"]}, {"x": torch.ones(2), "skipped": []}]
    batch = collate_items(items)
    assert batch["x"].shape == (2, 2)
    assert batch["skipped"] == ["a.jpg"]


def test_a_worker_data_error_reaches_the_loop_as_one_line_naming_the_file(tmp_path) -> None:
    from torch.utils.data import DataLoader

    from dkt.errors import DktError
    from training.data import CompositeConfig, CompositeDataset, Foreground
    from training.sampler import EpochItems, check_batch

    bad = tmp_path / "painting.png"
    bad.write_bytes(b"not an image")
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"also not")
    ds = CompositeDataset([bad], [Foreground(photo, photo)], CompositeConfig(size=32), length=2)
    loader = DataLoader(EpochItems(ds), batch_size=2, num_workers=1, collate_fn=collate_items)
    with pytest.raises(DktError) as caught:
        check_batch(next(iter(loader)))
    message = str(caught.value)
    assert "\n" not in message and "painting.png" in message
