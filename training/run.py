"""``train``: one training run from a preset or file, on one or many GPUs or the CPU.

The verb behind ``dkt train``, callable from a script. Everything about a run is in its
config (``TrainRequest.config`` plus ``sets`` overrides); the data and run-length fields are
shortcuts for the matching config keys. It resolves the config, opens the data and the loss
network, sets up the run directory (new, resumed or initialised from a model) and runs the
loop. Under ``torchrun`` every process calls it; only rank 0 reports, through
:class:`Callbacks`, so the command decides how its notes look and a script can ignore them.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dkt.atomic import atomic_write_bytes
from dkt.errors import ConfigError, DktError, ImageInputError
from training.config import TrainConfig, load_config
from training.data import CompositeConfig, CompositeDataset
from training.distributed import DistContext, init_distributed
from training.loop import Trainer, TrainResult, run_training
from training.lossnet import LossNetwork, load_loss_network
from training.rundir import new_run_dir, read_run_config
from training.sources import bad_headers, drop_bad, load_foregrounds, load_paintings

__all__ = ["SKIPPED_FILES", "Callbacks", "TrainRequest", "TrainResult", "resolve_config", "train"]

#: The list of files ``skip_bad`` left out at the start, in the run directory.
SKIPPED_FILES = "skipped-files.txt"
#: How many skipped files the log names before pointing to :data:`SKIPPED_FILES`.
_NAMED_IN_LOG = 20
#: Where a run goes when no ``run_dir`` is given: ``runs/<config>-<time>``.
_RUNS = Path("runs")

#: Request field -> config key, for the shortcuts.
SHORTCUTS = {
    "paintings": "data.paintings",
    "paintings_csv": "data.paintings_csv",
    "photos": "data.photos",
    "masks": "data.masks",
    "coco": "data.coco",
    "yolo": "data.yolo",
    "loss_network": "loss.network",
    "deep_loss_network": "loss.deep_network",
    "encoder_init": "run.encoder_init",
    "decoder_init": "run.decoder_init",
    "steps": "run.steps",
    "batch_size": "data.batch_size",
    "size": "data.size",
    "workers": "data.workers",
    "seed": "run.seed",
    "skip_bad": "data.skip_bad",
}


@dataclass(frozen=True)
class TrainRequest:
    """What to train, on what, and where (the options of ``dkt train``).

    A shortcut left ``None`` leaves its config key as the preset or file has it; one given
    wins over the same key in ``sets``.
    """

    #: A preset name (``dktnet-lite``, ``dktnet-relu3``, ``dktnet-vgg19``) or a YAML file.
    config: str = "dktnet-lite"
    #: ``section.key=value`` overrides (the value is YAML).
    sets: Sequence[str] | None = None
    paintings: Path | None = None
    paintings_csv: Path | None = None
    photos: Path | None = None
    masks: Path | None = None
    coco: Path | None = None
    yolo: Path | None = None
    skip_bad: bool | None = None
    loss_network: str | None = None
    deep_loss_network: str | None = None
    decoder_init: str | None = None
    encoder_init: str | None = None
    #: Download torchvision's VGG-19 when no pretrained loss network is found.
    download_weights: bool = False
    #: Default: ``runs/<config>-<time>``.
    run_dir: Path | None = None
    #: Continue the run in this directory from its last checkpoint.
    resume: Path | None = None
    #: Start from this model's weights (fine-tuning).
    init: Path | None = None
    device: str = "auto"
    steps: int | None = None
    batch_size: int | None = None
    size: int | None = None
    workers: int | None = None
    seed: int | None = None


def _silent(message: str) -> None:
    pass


@dataclass
class Callbacks:
    """How the run reports itself (rank 0 only); every callback defaults to silence.

    The loop's own per-step log and progress bar are :class:`training.monitor.Monitor`'s.
    """

    note: Callable[[str], None] = _silent
    warn: Callable[[str], None] = _silent


def _shortcuts(request: TrainRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in SHORTCUTS}


def _check_resume(request: TrainRequest) -> None:
    """A resumed run keeps its config: only its length (``steps``, ``run.*``) may change."""
    if request.resume is None:
        return
    if request.run_dir is not None:
        raise ConfigError("--resume DIR continues that run; do not pass --run-dir as well")
    not_run = [k for k, v in _shortcuts(request).items() if v is not None and k != "steps"]
    if request.init is not None:
        not_run.append("init")
    if not_run:
        option = "--" + not_run[0].replace("_", "-")
        raise ConfigError(
            f"--resume keeps the run's config; only --steps and --set run.* may change, "
            f"not {option}"
        )


def resolve_config(request: TrainRequest) -> TrainConfig:
    """The run's config: the preset or file (or the resumed run's), ``sets``, then shortcuts."""
    _check_resume(request)
    given = [f"{SHORTCUTS[k]}={v}" for k, v in _shortcuts(request).items() if v is not None]
    overrides = [*(request.sets or []), *given]
    if request.resume is not None:
        return read_run_config(request.resume, overrides)
    return load_config(request.config, overrides)


def train(request: TrainRequest, callbacks: Callbacks | None = None) -> TrainResult:
    """Train until ``run.steps`` or Ctrl-C (``result.interrupted``, a checkpoint written).

    Raises :class:`~dkt.errors.ConfigError` (or another :class:`~dkt.errors.DktError`) for
    anything wrong with the request, before the run directory is made;
    :class:`~dkt.errors.TrainingDivergedError` when a loss or the weights become non-finite.
    """
    config = resolve_config(request)
    try:
        dist = init_distributed(request.device)
    except ValueError as exc:
        raise _usage(exc) from exc
    try:
        return _train(config, request, dist, callbacks or Callbacks())
    finally:
        dist.close()


def _usage(exc: ValueError) -> DktError:
    """A ``ValueError`` from the model or loop (fp16 on a CPU, a missing ``--encoder-init``)
    as the one-line error it is."""
    return exc if isinstance(exc, DktError) else ConfigError(str(exc))


def _train(
    config: TrainConfig, request: TrainRequest, dist: DistContext, callbacks: Callbacks
) -> TrainResult:
    report = callbacks if dist.is_main else Callbacks()
    try:
        with _forwarded_warnings(report.warn) if dist.is_main else contextlib.nullcontext():
            data = _dataset(config)
        loss_net = load_loss_network(
            config.loss.network, deep=config.loss.deep_network, download=request.download_weights
        )
        trainer = Trainer(config, loss_net, dist)
        init, resume = request.init, request.resume
        provenance = {"initialised_from": trainer.init_from(init)} if init and not resume else {}
    except ValueError as exc:
        raise _usage(exc) from exc
    target = _announce(config, request, dist, data, loss_net, report)
    try:
        result = run_training(
            trainer, data.dataset, target, resume=resume is not None, provenance=provenance
        )
    except ValueError as exc:
        raise _usage(exc) from exc
    if result.skipped_files:
        report.note(f"skipped {result.skipped_files} unreadable file(s)")
    return result


@dataclass
class _Data:
    dataset: CompositeDataset
    checked: int
    skipped: list[ImageInputError]


def _dataset(cfg: TrainConfig) -> _Data:
    """The composites to draw; every image file's header is read first, so a bad file stops
    the run here (or, with ``skip_bad``, is left out) rather than hours in."""
    data = cfg.data
    if data.paintings is None and data.paintings_csv is None:
        raise ConfigError("no paintings: pass --paintings DIR or --paintings-csv FILE")
    if data.photos is None:
        raise ConfigError("no foregrounds: pass --photos DIR with --masks, --coco or --yolo")
    paintings = load_paintings(
        Path(data.paintings) if data.paintings else None,
        csv=Path(data.paintings_csv) if data.paintings_csv else None,
    )
    foregrounds = load_foregrounds(
        Path(data.photos),
        masks=Path(data.masks) if data.masks else None,
        coco=Path(data.coco) if data.coco else None,
        yolo=Path(data.yolo) if data.yolo else None,
        ratio=data.filter_ratio,
    )
    checked, bad = bad_headers(paintings, foregrounds)
    if bad and not data.skip_bad:
        raise ImageInputError(
            bad[0].path,
            f"{bad[0].reason} ({len(bad)} of {checked} image files fail to open; "
            "--skip-bad leaves them out)",
        )
    paintings, foregrounds = drop_bad(paintings, foregrounds, (exc.path for exc in bad))
    composite = CompositeConfig(
        size=data.size, fg_ratio=data.fg_ratio, random_position_prob=data.random_position_prob,
        flip_prob=data.flip_prob, seed=cfg.run.seed,
    )  # fmt: skip
    dataset = CompositeDataset(paintings, foregrounds, composite, skip_bad=data.skip_bad)
    return _Data(dataset, checked, bad)


@contextlib.contextmanager
def _forwarded_warnings(warn: Callable[[str], None]) -> Iterator[None]:
    """The library's UserWarnings (files missing from a list, masks without a photo) as
    ``warn`` calls, also when an error follows: they may explain it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for warning in caught:
                warn(str(warning.message))


def _announce(
    config: TrainConfig,
    request: TrainRequest,
    dist: DistContext,
    data: _Data,
    loss_net: LossNetwork,
    report: Callbacks,
) -> Path:
    """The run directory (rank 0's choice on every rank), and what the run is, said once."""
    if not loss_net.provenance.get("pretrained"):
        report.warn(
            "training with a random-weight loss network (not pretrained); the checkpoint "
            "records this"
        )
    target = request.resume or request.run_dir or new_run_dir(_RUNS, _config_name(request.config))
    target = Path(str(dist.from_main(str(target))))
    dataset = data.dataset
    report.note(
        f"{len(dataset.paintings)} paintings, {len(dataset.foregrounds)} foregrounds; "
        f"{_run_shape(config.run.steps, config.data.batch_size, dist.world_size)} at "
        f"{config.data.size} px on {dist.device}"
    )
    report.note(f"run directory: {target}")
    report.note(f"checked {data.checked} image files: {len(data.skipped)} fail to open")
    if dist.is_main:
        _record_skipped(target, data.skipped, report.note)
    return target


def _record_skipped(
    run_dir: Path, skipped: list[ImageInputError], note: Callable[[str], None]
) -> None:
    """Name the files ``skip_bad`` left out: in the log, and all of them in the run directory."""
    if not skipped:
        return
    listing = run_dir / SKIPPED_FILES
    atomic_write_bytes(listing, "".join(f"{exc}\n" for exc in skipped).encode())
    names = ", ".join(str(exc.path) for exc in skipped[:_NAMED_IN_LOG])
    more = f" and {len(skipped) - _NAMED_IN_LOG} more" if len(skipped) > _NAMED_IN_LOG else ""
    note(f"skipped {len(skipped)} unreadable file(s) (listed in {listing}): {names}{more}")


def _run_shape(steps: int, batch_size: int, processes: int) -> str:
    """``12 steps, batch 2 per process x 1 process``: "2 x 1" alone read as a size."""
    plural = "es" if processes != 1 else ""
    return f"{steps} steps, batch {batch_size} per process x {processes} process{plural}"


def _config_name(config: str) -> str:
    return Path(config).stem if config.endswith((".yaml", ".yml")) else config
