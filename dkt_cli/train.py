"""``dkt train``: train DKTNet from a config preset or file, on one or many GPUs or the CPU.

Everything about a run is in its config (``--config`` plus ``--set key=value`` overrides);
the data and run-length options below are shortcuts for the matching ``--set`` keys. Under
``torchrun`` every process runs this same command; rank 0 alone prints and writes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from dkt.atomic import atomic_write_bytes
from dkt.errors import ConfigError, DktError, ImageInputError, TrainingDivergedError
from dkt_cli.console import EXIT_FAILED, err, fail, shown_warnings
from training.config import TrainConfig, load_config
from training.data import CompositeConfig, CompositeDataset
from training.distributed import DistContext, init_distributed
from training.loop import Trainer, run_training
from training.lossnet import load_loss_network
from training.rundir import new_run_dir, read_run_config
from training.sources import bad_headers, drop_bad, load_foregrounds, load_paintings

_DATA = "Data (shortcuts for --set data.*)"
_RUN = "Run (shortcuts for --set run.* / data.*)"

# CLI option name -> config key, for the shortcuts.
_SHORTCUTS = {
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


def _overrides(values: dict[str, Any], sets: list[str]) -> list[str]:
    """``--set`` items, then the shortcut options given: a named option wins over ``--set``."""
    shortcuts = [f"{_SHORTCUTS[name]}={v}" for name, v in values.items() if v is not None]
    return sets + shortcuts


def _resolve_config(config: str, resume: Path | None, overrides: list[str]) -> TrainConfig:
    if resume is not None:
        return read_run_config(resume, overrides)
    return load_config(config, overrides)


#: The list of files ``--skip-bad`` left out at the start, in the run directory.
SKIPPED_FILES = "skipped-files.txt"
#: How many skipped files the log names before pointing to :data:`SKIPPED_FILES`.
_NAMED_IN_LOG = 20


@dataclass
class _Data:
    dataset: CompositeDataset
    checked: int
    skipped: list[ImageInputError]


def _dataset(cfg: TrainConfig) -> _Data:
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


def _record_skipped(run_dir: Path, skipped: list[ImageInputError], say: Any) -> None:
    """Name the files --skip-bad left out: in the log, and all of them in the run directory."""
    if not skipped:
        return
    listing = run_dir / SKIPPED_FILES
    atomic_write_bytes(listing, "".join(f"{exc}\n" for exc in skipped).encode())
    names = ", ".join(str(exc.path) for exc in skipped[:_NAMED_IN_LOG])
    more = f" and {len(skipped) - _NAMED_IN_LOG} more" if len(skipped) > _NAMED_IN_LOG else ""
    say(
        f"skipped {len(skipped)} unreadable file(s) (listed in {listing}): {names}{more}",
        soft_wrap=True,
        markup=False,
    )


def _run_shape(steps: int, batch_size: int, processes: int) -> str:
    """``12 steps, batch 2 per process x 1 process``: "2 x 1" alone read as a size."""
    plural = "es" if processes != 1 else ""
    return f"{steps} steps, batch {batch_size} per process x {processes} process{plural}"


def _config_name(config: str) -> str:
    return Path(config).stem if config.endswith((".yaml", ".yml")) else config


def train(
    config: Annotated[
        str,
        typer.Option(
            "--config",
            "-c",
            help="Preset name (dktnet-lite, dktnet-relu3, dktnet-vgg19) or YAML file.",
        ),
    ] = "dktnet-lite",
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config key: section.key=value (YAML value). Repeatable."
        ),
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config as YAML and exit.")
    ] = False,
    paintings: Annotated[
        Path | None, typer.Option(help="Folder of paintings.", rich_help_panel=_DATA)
    ] = None,
    paintings_csv: Annotated[
        Path | None,
        typer.Option(help="CSV list of paintings (WikiArt split style).", rich_help_panel=_DATA),
    ] = None,
    photos: Annotated[
        Path | None, typer.Option(help="Folder of photos.", rich_help_panel=_DATA)
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(help="Folder of instance masks <photo>_objNN.png.", rich_help_panel=_DATA),
    ] = None,
    coco: Annotated[
        Path | None, typer.Option(help="COCO instances JSON.", rich_help_panel=_DATA)
    ] = None,
    yolo: Annotated[
        Path | None, typer.Option(help="Folder of YOLO segmentation labels.", rich_help_panel=_DATA)
    ] = None,
    skip_bad: Annotated[
        bool | None,
        typer.Option(
            "--skip-bad/--no-skip-bad",
            help="Skip unreadable images (counted at the end) instead of stopping at the first.",
            rich_help_panel=_DATA,
        ),
    ] = None,
    loss_network: Annotated[
        str | None,
        typer.Option(
            help="Pretrained VGG-19 weights (AdaIN vgg_normalised.pth, torchvision vgg19, or a "
            "file truncated after conv3_1 such as vgg_normalised_conv3_1.pth: then the loss "
            "uses relu1_1..relu3_1 only), or 'random:SEED' for the seeded random-weight "
            "stand-in (recorded in the model). Default: $DKT_VGG19_WEIGHTS, then the cache "
            "folder.",
        ),
    ] = None,
    deep_loss_network: Annotated[
        str | None,
        typer.Option(
            help="A distilled VGG-19 encoder (cd16x_encoder_relu4_1.pth or ..._relu5_1.pth) "
            "whose approximate relu4_1 (, relu5_1) taps extend the loss network past what "
            "--loss-network reaches; recorded per tap as distilled.",
        ),
    ] = None,
    decoder_init: Annotated[
        str | None,
        typer.Option(
            help="The pretrained inverter the decoder starts from: vgg19-relu3 takes "
            "feature_invertor_conv3_1.pth, cd16x-relu4 cd16x_decoder_relu4_1.pth.",
        ),
    ] = None,
    encoder_init: Annotated[
        str | None,
        typer.Option(
            help="cd16x-relu4 only: the distilled encoder file (cd16x_encoder_relu4_1.pth) "
            "its frozen encoder is loaded from.",
        ),
    ] = None,
    download_weights: Annotated[
        bool, typer.Option(help="Download torchvision's VGG-19 (sha256-checked) if none is found.")
    ] = False,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/<config>-<time>).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the run in this directory from its last checkpoint (with --steps N, "
            "a longer or shorter run: the learning-rate schedule follows the new length)."
        ),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Start from this model's weights (fine-tuning; same model config)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    steps: Annotated[
        int | None,
        typer.Option(
            help="Optimiser steps to train for (run.steps); with --resume, the new total.",
            min=1,
            rich_help_panel=_RUN,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Composites per step in each process (data.batch_size); under torchrun each "
            "GPU takes this many.",
            min=1,
            rich_help_panel=_RUN,
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Training resolution (multiple of 8).", min=32, rich_help_panel=_RUN),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="DataLoader processes that make composites (data.workers); 0 makes them in "
            "the training process.",
            min=0,
            rich_help_panel=_RUN,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the weights' initialisation and of every random draw (run.seed): "
            "the same seed and data give the same run.",
            rich_help_panel=_RUN,
        ),
    ] = None,
) -> None:
    """Train DKTNet: style, content, adversarial, consistency and reconstruction losses."""
    shortcut_values = {
        "paintings": paintings, "paintings_csv": paintings_csv, "photos": photos, "masks": masks,
        "coco": coco, "yolo": yolo, "loss_network": loss_network, "decoder_init": decoder_init,
        "deep_loss_network": deep_loss_network, "encoder_init": encoder_init,
        "steps": steps,
        "batch_size": batch_size, "size": size, "workers": workers, "seed": seed,
        "skip_bad": skip_bad,
    }  # fmt: skip
    if resume is not None:
        if run_dir is not None:
            fail("--resume DIR continues that run; do not pass --run-dir as well")
        not_run = [k for k, v in shortcut_values.items() if v is not None and k != "steps"]
        if init is not None:
            not_run.append("init")
        if not_run:
            option = "--" + not_run[0].replace("_", "-")
            fail(
                f"--resume keeps the run's config; only --steps and --set run.* may change, "
                f"not {option}"
            )
    try:
        cfg = _resolve_config(config, resume, _overrides(shortcut_values, sets or []))
    except ConfigError as exc:
        fail(str(exc))
    if print_config:
        print(cfg.to_yaml(), end="")
        return
    try:
        dist = init_distributed(device)
    except ValueError as exc:
        fail(str(exc))
    try:
        _train(cfg, config, run_dir, resume, init, download_weights, dist)
    finally:
        dist.close()


def _train(
    cfg: TrainConfig,
    config: str,
    run_dir: Path | None,
    resume: Path | None,
    init: Path | None,
    download_weights: bool,
    dist: DistContext,
) -> None:
    say = err.print if dist.is_main else (lambda *a, **k: None)
    try:
        with shown_warnings() if dist.is_main else contextlib.nullcontext():
            data = _dataset(cfg)
        dataset = data.dataset
        loss_net = load_loss_network(
            cfg.loss.network, deep=cfg.loss.deep_network, download=download_weights
        )
        trainer = Trainer(cfg, loss_net, dist)
        provenance = {"initialised_from": trainer.init_from(init)} if init and not resume else {}
    except (DktError, ValueError) as exc:
        fail(str(exc))
    if not loss_net.provenance.get("pretrained"):
        say(
            "[yellow]warning:[/] training with a random-weight loss network (not pretrained); "
            "the checkpoint records this"
        )
    target = resume or run_dir or new_run_dir(Path("runs"), _config_name(config))
    target = Path(str(dist.from_main(str(target))))
    say(
        f"{len(dataset.paintings)} paintings, {len(dataset.foregrounds)} foregrounds; "
        f"{_run_shape(cfg.run.steps, cfg.data.batch_size, dist.world_size)} at "
        f"{cfg.data.size} px on {dist.device}",
        soft_wrap=True,
    )
    say(f"run directory: {target}", soft_wrap=True)
    say(f"checked {data.checked} image files: {len(data.skipped)} fail to open")
    if dist.is_main:
        _record_skipped(target, data.skipped, say)
    try:
        result = run_training(
            trainer, dataset, target, resume=resume is not None, provenance=provenance
        )
    except TrainingDivergedError as exc:  # a run that failed, not a usage error
        fail(str(exc), code=EXIT_FAILED)
    except (DktError, ValueError) as exc:
        fail(str(exc))
    if result.skipped_files:
        say(f"skipped {result.skipped_files} unreadable file(s)")
    if result.interrupted:
        fail(
            f"interrupted at step {result.steps}; checkpoint written. "
            f"Continue with: dkt train --resume {target}",
            code=130,
        )
    say(
        f"done: {result.model} ({result.steps} steps)\nharmonize with it:  "
        f"dkt harmonize COMPOSITE --mask MASK -o OUT --model {result.model}",
        soft_wrap=True,
    )


__all__ = ["train"]
