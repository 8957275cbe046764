"""The loss network Φ (VGG-19 to relu4_1, or to relu3_1 from a truncated file) and where its
weights come from.

A file that stops after conv3_1 (WCT's truncated VGG) gives a three-tap loss network,
relu1_1..relu3_1; the taps it really has are written into the provenance of every checkpoint
trained with it, so a "pretrained" loss never silently mixes in a random relu4_1.

A pretrained VGG-19 is the real thing: AdaIN's ``vgg_normalised.pth`` or torchvision's
``vgg19`` weights, found in this order: an explicit path, ``$DKT_VGG19_WEIGHTS``, the cache
folder (``~/.cache/dkt``), or a download of torchvision's file checked against its sha256.
Where none exists, a seeded random-weight VGG-19 may be used, but only when asked for by
name (``random:SEED``), and its use is written into every checkpoint trained with it so
nobody mistakes the result for a paper-faithful model.

Depth the exact files lack comes from the distilled VGG-19 (Collaborative Distillation,
:mod:`dkt.dktnet.distilled`): its aux taps approximate VGG-19's relu1_1..relu5_1. It can be
the whole loss network (its file as ``spec``) or extend an exact one past relu3_1
(``deep``). The provenance then says, tap by tap, which network gave it, and calls the
distilled one "distilled", never VGG-19.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from dkt.dktnet.checkpoint import file_sha256
from dkt.dktnet.distilled import DISTILLED_KIND, DistilledTaps, StackedTaps
from dkt.dktnet.distilled_weights import is_distilled_encoder_state, load_distilled_encoder
from dkt.dktnet.vgg_weights import load_vgg19_encoder, random_vgg19_encoder, read_state_dict
from dkt.downloads import cache_dir, download_file
from dkt.errors import CheckpointError, MissingLossNetworkError

__all__ = [
    "ENV_VAR",
    "TORCHVISION_VGG19_URL",
    "LossNetwork",
    "MissingLossNetworkError",
    "find_vgg19_weights",
    "load_loss_network",
]

ENV_VAR = "DKT_VGG19_WEIGHTS"
#: The random stand-in is always a full VGG-19 to relu4_1.
RANDOM_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: AdaIN's file first (the layout the method's reference code uses), then torchvision's, then
#: WCT's truncated relu3_1 file (three taps only, so any full VGG-19 is preferred to it).
CACHE_NAMES = ("vgg_normalised.pth", "vgg19-dcbb9e9d.pth", "vgg_normalised_conv3_1.pth")
TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
#: torchvision names its files after the first hex digits of their sha256.
TORCHVISION_VGG19_SHA256_PREFIX = "dcbb9e9d"


#: The tap the content loss reads (METHOD.md); a network that stops earlier uses its deepest.
CONTENT_TAP = "relu4_1"


@dataclass(frozen=True)
class LossNetwork:
    """``network(x) -> [taps]``, named by ``network.tap_names``, and where each came from."""

    network: nn.Module
    provenance: dict[str, object]

    @property
    def content_index(self) -> int:
        """Which tap L_c reads: relu4_1 where the network has it, else its deepest."""
        names = list(self.network.tap_names)
        return names.index(CONTENT_TAP) if CONTENT_TAP in names else len(names) - 1

    def content_indices(self, taps: tuple[str, ...] | None) -> list[int]:
        """The taps L_c reads: ``taps`` by name (each must exist), or :attr:`content_index`."""
        if not taps:
            return [self.content_index]
        names = list(self.network.tap_names)
        missing = [t for t in taps if t not in names]
        if missing:
            raise ValueError(
                f"loss.content_taps {', '.join(missing)}: the loss network has {', '.join(names)}"
            )
        return [names.index(t) for t in taps]


def find_vgg19_weights(
    explicit: str | Path | None = None,
    *,
    download: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[Path, str]:
    """The weights file to use and where it was found (path, env, cache or download).

    A path the user named that does not exist is an error, never a fall-through: a typo
    must not quietly turn into a different loss network.
    """
    env = os.environ if env is None else env
    if explicit is not None:
        if not Path(explicit).is_file():
            raise CheckpointError(explicit, "no such file (loss network)")
        return Path(explicit), "path"
    named = env.get(ENV_VAR)
    if named:
        if not Path(named).is_file():
            raise CheckpointError(named, f"no such file (${ENV_VAR})")
        return Path(named), f"${ENV_VAR}"
    folder = cache_dir(env)
    for name in CACHE_NAMES:
        if (folder / name).is_file():
            return folder / name, "cache"
    if download:
        dest = folder / CACHE_NAMES[1]
        download_file(TORCHVISION_VGG19_URL, dest, sha256_prefix=TORCHVISION_VGG19_SHA256_PREFIX)
        return dest, "download"
    raise MissingLossNetworkError(
        folder,
        f"no pretrained VGG-19 for the loss network: pass --loss-network PATH, set ${ENV_VAR}, "
        f"put {' or '.join(CACHE_NAMES)} here, add --download-weights, or use "
        "--loss-network random:0 for the (non-pretrained) stand-in",
    )


def _random(spec: str) -> LossNetwork:
    try:
        seed = int(spec.split(":", 1)[1])
    except ValueError:
        raise ValueError(
            f"--loss-network {spec!r}: the random stand-in takes an integer seed, e.g. random:0"
        ) from None
    return LossNetwork(
        random_vgg19_encoder(seed).eval(),
        {
            "kind": "random-vgg19",
            "seed": seed,
            "taps": list(RANDOM_TAPS),
            "pretrained": False,
            "note": "seeded random-weight VGG-19 stand-in; no pretrained weights were used",
        },
    )


def _file_record(path: Path, source: str) -> dict[str, object]:
    return {"file": path.name, "source": source, "sha256": file_sha256(path)}


def _distilled(path: Path) -> tuple[DistilledTaps, dict[str, object]]:
    taps = DistilledTaps(load_distilled_encoder(path, aux=True)).eval()
    record = {
        "kind": DISTILLED_KIND,
        "note": "Collaborative Distillation's 16x-smaller VGG-19; its aux taps approximate "
        "VGG-19's, they are not VGG-19",
        **_file_record(path, "path"),
    }
    return taps, record


def _is_distilled_file(path: Path) -> bool:
    return is_distilled_encoder_state(read_state_dict(path))


def load_loss_network(
    spec: str | None = None,
    *,
    deep: str | None = None,
    download: bool = False,
    env: Mapping[str, str] | None = None,
) -> LossNetwork:
    """``random:SEED`` for the stand-in, a path, or ``None`` to look the weights up.

    A distilled encoder file as ``spec`` gives a loss network of its aux taps alone;
    ``deep`` (a distilled encoder file) adds the taps past the exact network's deepest.
    """
    if spec is not None and spec.startswith("random:"):
        if deep is not None:
            raise ValueError("the random stand-in already reaches relu4_1; drop the deep network")
        return _random(spec)
    path, source = find_vgg19_weights(spec, download=download, env=env)
    if _is_distilled_file(path):
        if deep is not None:
            raise ValueError(f"{path}: already the distilled network; drop the deep network")
        distilled, record = _distilled(path)
        record["source"] = source
        taps = list(distilled.tap_names)
        sources = dict.fromkeys(taps, record)
        return LossNetwork(
            distilled, {**record, "taps": taps, "pretrained": True, "tap_sources": sources}
        )
    exact = load_vgg19_encoder(path).eval()
    exact_record = {"kind": "vgg19", **_file_record(path, source)}
    tap_sources = dict.fromkeys(exact.tap_names, exact_record)
    network: nn.Module = exact
    if deep is not None:
        if not Path(deep).is_file():
            raise CheckpointError(deep, "no such file (deep loss network)")
        deep_taps, deep_record = _distilled(Path(deep))
        network = StackedTaps(exact, deep_taps).eval()
        tap_sources.update(dict.fromkeys(network.tap_names[len(exact.tap_names) :], deep_record))
    kinds = dict.fromkeys(str(r["kind"]) for r in tap_sources.values())
    return LossNetwork(
        network,
        {
            **exact_record,
            "kind": "+".join(kinds),
            "taps": list(network.tap_names),
            "pretrained": True,
            "tap_sources": tap_sources,
        },
    )
