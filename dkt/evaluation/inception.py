"""The FID Inception-v3 network, its weights file, and where that file comes from.

FID and KID figures are only comparable with published ones when computed with the very
network everyone uses: the TensorFlow FID Inception graph (2015-12-05) as ported to PyTorch
by pytorch-fid. Its blocks differ slightly from torchvision's Inception-v3 (average pools
that exclude padding; a max pool in the last block), and its weights are the file
``pt_inception-2015-12-05-6726825d.pth``. This module builds that architecture with the
module names the weights file uses, so the file loads as is, and returns the 2048-d pool3
features. The weights cannot be bundled (about 91 MB, and not ours to redistribute); they
are read from a path, an environment variable or a cache folder, or downloaded with a
checksum where the network allows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dkt.dktnet.vgg_weights import read_state_dict
from dkt.downloads import cache_dir, download_file
from dkt.errors import CheckpointError, WeightsDownloadError

__all__ = [
    "ENV_VAR",
    "INCEPTION_FILENAME",
    "INCEPTION_SHA256_PREFIX",
    "INCEPTION_URL",
    "FIDInception",
    "WeightsDownloadError",
    "WeightsLookup",
    "cache_dir",
    "download_file",
    "download_inception_weights",
    "extract_features",
    "find_inception_weights",
    "load_inception",
]

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILENAME
)
#: The file name's suffix is the start of the file's sha256: all a download can be checked by.
INCEPTION_SHA256_PREFIX = "6726825d"
ENV_VAR = "DKT_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
FEATURE_DIM = 2048


# --------------------------------------------------------------------------- network


class _Conv(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1, padding not counted (the TF graph's behaviour)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _Conv(cin, 64, 1)
        self.branch5x5_1 = _Conv(cin, 48, 1)
        self.branch5x5_2 = _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg3(x))], 1)


class _BlockB(nn.Module):
    """35 -> 17 reduction."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = _Conv(cin, 192, 1)
        self.branch7x7_1 = _Conv(cin, c7, 1)
        self.branch7x7_2 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _Conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _Conv(cin, c7, 1)
        self.branch7x7dbl_2 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _Conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class _BlockD(nn.Module):
    """17 -> 8 reduction."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _Conv(cin, 192, 1)
        self.branch3x3_2 = _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(cin, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for layer in (
            self.branch7x7x3_1,
            self.branch7x7x3_2,
            self.branch7x7x3_3,
            self.branch7x7x3_4,
        ):
            b7 = layer(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockE(nn.Module):
    """8x8 block with split 1x3 / 3x1 branches; ``pool`` is "avg" (7b) or "max" (7c).

    The max pool in the last block is a quirk of the TF FID graph that pytorch-fid keeps;
    features only match published FIDs with it.
    """

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _Conv(cin, 320, 1)
        self.branch3x3_1 = _Conv(cin, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(cin, 448, 1)
        self.branch3x3dbl_2 = _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = _avg3(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInception(nn.Module):
    """Inception-v3 as used for FID, up to the 2048-d average pool ("pool3").

    ``forward`` takes RGB in [0, 1], (B, 3, H, W) of any size, resizes to 299x299
    (bilinear, no antialias, as pytorch-fid does), scales to [-1, 1] and returns (B, 2048).
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b = _BlockA(192, 32)
        self.Mixed_5c = _BlockA(256, 64)
        self.Mixed_5d = _BlockA(288, 64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, 128)
        self.Mixed_6c = _BlockC(768, 160)
        self.Mixed_6d = _BlockC(768, 160)
        self.Mixed_6e = _BlockC(768, 192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, "avg")
        self.Mixed_7c = _BlockE(2048, "max")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(
                x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
            )
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# --------------------------------------------------------------------------- weights

_SHOWN = 5


def _is_ignored(key: str) -> bool:
    """Tensors in the file the feature extractor does not use: the 1008-way classifier, and
    batch-norm step counters (present or not depending on the torch that saved the file)."""
    return key.startswith("fc.") or key.endswith("num_batches_tracked")


def _names(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def check_state(state: Mapping[str, torch.Tensor], model: nn.Module, path: Path) -> None:
    """Refuse a file whose tensors do not match the FID Inception, naming what is off."""
    want = {k: v.shape for k, v in model.state_dict().items() if not _is_ignored(k)}
    have = {k: v.shape for k, v in state.items() if not _is_ignored(k)}
    missing, unexpected = set(want) - set(have), set(have) - set(want)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {_names(unexpected)}")
        raise CheckpointError(path, "not FID Inception weights; " + "; ".join(parts))
    wrong = [f"{k} {tuple(have[k])} != {tuple(want[k])}" for k in want if have[k] != want[k]]
    if wrong:
        raise CheckpointError(path, f"wrong tensor shapes: {_names(wrong)}")


def load_inception(path: str | Path, device: str | torch.device = "cpu") -> FIDInception:
    """Build :class:`FIDInception` and load ``path`` (.pth via ``weights_only``, or .safetensors).

    The classifier (``fc.*``) in the published file is ignored; anything else missing,
    extra or mis-shaped is a :class:`CheckpointError` naming the tensors.
    """
    path = Path(path)
    state = read_state_dict(path)
    model = FIDInception()
    check_state(state, model, path)
    kept = {k: v for k, v in state.items() if not _is_ignored(k)}
    model.load_state_dict(kept, strict=False)
    return model.eval().requires_grad_(False).to(device)


@torch.inference_mode()
def extract_features(
    model: FIDInception,
    images: Iterable[np.ndarray],
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Pool3 features (N, 2048) float64 of uint8 RGB images (H, W, 3) of any sizes.

    Each image is resized to 299x299 on its own, so images of different sizes can share a
    batch.
    """
    feats: list[np.ndarray] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            feats.append(model(torch.cat(batch).to(device)).double().cpu().numpy())
            batch.clear()

    for image in images:
        t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        t = F.interpolate(t, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        batch.append(t)
        if len(batch) == batch_size:
            flush()
    flush()
    if not feats:
        return np.zeros((0, FEATURE_DIM))
    return np.concatenate(feats)


# --------------------------------------------------------------------------- where from


@dataclass(frozen=True)
class WeightsLookup:
    """Where the Inception weights were found (``path``), or why not (``reason``)."""

    path: Path | None
    source: str
    reason: str = ""


def find_inception_weights(
    explicit: Path | None = None, env: Mapping[str, str] | None = None
) -> WeightsLookup:
    """The weights file to use: ``explicit`` path, then ``$DKT_INCEPTION_WEIGHTS``, then cache.

    A path the user named that does not exist is an error (a typo must not quietly turn
    FID off); an empty cache is not, it is reported in ``reason``.
    """
    env = os.environ if env is None else env
    if explicit is not None:
        if not Path(explicit).is_file():
            raise CheckpointError(explicit, "no such file (--inception-weights)")
        return WeightsLookup(Path(explicit), "--inception-weights")
    named = env.get(ENV_VAR)
    if named:
        if not Path(named).is_file():
            raise CheckpointError(named, f"no such file (${ENV_VAR})")
        return WeightsLookup(Path(named), f"${ENV_VAR}")
    cached = cache_dir(env) / INCEPTION_FILENAME
    if cached.is_file():
        return WeightsLookup(cached, "cache")
    return WeightsLookup(
        None,
        "none",
        f"no Inception weights: pass --inception-weights, set ${ENV_VAR}, or put "
        f"{INCEPTION_FILENAME} in {cache_dir(env)}",
    )


def download_inception_weights(env: Mapping[str, str] | None = None) -> Path:
    """Fetch the pytorch-fid weights into the cache folder, checksum-verified."""
    dest = cache_dir(env) / INCEPTION_FILENAME
    return download_file(INCEPTION_URL, dest, sha256_prefix=INCEPTION_SHA256_PREFIX)
