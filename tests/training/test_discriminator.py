"""Tests for training.discriminator: score grid, locality, size, and that it learns its job."""

from __future__ import annotations

import pytest
import torch

from training.discriminator import PatchDiscriminator
from training.losses import discriminator_step_loss, patch_targets


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("size", [(32, 32), (33, 47), (64, 40), (71, 32)])
def test_score_grid_is_floor_of_size_over_stride(layers: int, size: tuple[int, int]) -> None:
    disc = PatchDiscriminator(channels=4, layers=layers)
    with torch.no_grad():
        scores = disc(torch.rand(2, 3, *size))
    grid = (size[0] // 2**layers, size[1] // 2**layers)
    assert disc.stride == 2**layers
    assert disc.patch_grid(size) == grid
    assert scores.shape == (2, 1, *grid)
    assert torch.isfinite(scores).all()


def test_parameter_counts_match_the_docstring() -> None:
    assert _count(PatchDiscriminator()) == 1_844_545
    assert _count(PatchDiscriminator(norm="none")) == 1_843_649
    assert _count(PatchDiscriminator(spectral=False)) == 1_844_545
    assert _count(PatchDiscriminator(channels=32)) == 463_521


def test_rejects_bad_arguments_and_small_images() -> None:
    with pytest.raises(ValueError, match="norm"):
        PatchDiscriminator(norm="batch")
    disc = PatchDiscriminator(channels=4)
    with pytest.raises(ValueError, match="32"):
        disc(torch.rand(1, 3, 31, 64))
    assert PatchDiscriminator(channels=4, layers=5).min_side == 64


def test_scores_are_local_and_centred_on_their_block() -> None:
    """Without instance norm, a change in one 8x8 block moves only nearby scores.

    This is what lets the area-downsampled mask serve as the per-score target.
    """
    torch.manual_seed(0)
    disc = PatchDiscriminator(channels=4, norm="none").eval()  # eval: no power iteration
    image = torch.rand(1, 3, 64, 64)
    changed = image.clone()
    changed[..., 16:24, 16:24] = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        diff = (disc(changed) - disc(image)).abs()[0, 0]
    assert diff[2, 2] > 0  # the score centred on that block
    assert diff[6:, :].max() == 0 and diff[:, 6:].max() == 0  # 54 px receptive field


def _painting_pair() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A smooth 'painting' and the same painting with a noisy 'photo' pasted in its middle."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    painting = torch.stack([0.6 + 0.2 * torch.sin(6 * x), 0.4 + 0.2 * y, 0.3 + 0.1 * y])[None]
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1.0
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return painting, painting * (1.0 - mask) + photo * mask, mask


def test_a_few_adam_steps_teach_it_to_flag_the_pasted_patches() -> None:
    torch.manual_seed(0)
    painting, composite, mask = _painting_pair()
    disc = PatchDiscriminator(channels=8)
    with torch.no_grad():
        before = discriminator_step_loss(disc, composite, mask, painting=painting).item()
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(10):
        loss = discriminator_step_loss(disc, composite, mask, painting=painting)
        opt.zero_grad()
        loss.backward()
        opt.step()
    disc.eval()
    with torch.no_grad():
        on_composite, on_painting = disc(composite), disc(painting)
        after = discriminator_step_loss(disc, composite, mask, painting=painting).item()
    target = patch_targets(mask, on_composite)
    pasted = on_composite[target > 0.99].mean()
    clean = torch.cat([on_composite[target < 0.01], on_painting.flatten()]).mean()
    assert after < 0.5 * before
    assert pasted - clean > 0.5
