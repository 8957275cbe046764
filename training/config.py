"""Training configuration: one YAML document per run, with named presets shipped in the package.

A run is fully described by its resolved config (model shape, loss weights, data, optimiser,
schedule, run length), so the same file reproduces it and is saved beside every checkpoint.
Presets live in ``training/configs/*.yaml`` (``dktnet-lite``, ``dktnet-vgg19``); any key can
be overridden from the command line as ``section.key=value`` where ``value`` is YAML.

Unknown keys are errors that name the key and the file: a typo in a config must never be
silently ignored in a run that takes hours.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.decoder import INVERTERS
from dkt.dktnet.encoders import ENCODERS
from dkt.errors import ConfigError

__all__ = [
    "AdversarialSettings",
    "ConfigError",
    "DataSettings",
    "LossWeights",
    "OptimSettings",
    "RunSettings",
    "TrainConfig",
    "apply_overrides",
    "builtin_configs",
    "load_config",
]

PRECISIONS = ("fp32", "bf16", "fp16")
CONTENT_TARGETS = ("composite", "transformed")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class LossWeights:
    """Weights of ``L_G = L_s + λ_c L_c + λ_adv L_adv + λ_cons L_cons + L_recons``.

    ``identity`` and ``autoencoder`` are the two halves of ``L_recons`` (the unedited painting
    must come back unchanged; ``D(E(I)) ≈ I`` for a trainable encoder).
    """

    style: float = 1.0
    content: float = 2.0
    adversarial: float = 1.0
    consistency: float = 1.0
    identity: float = 10.0
    autoencoder: float = 10.0
    # Pixel colour statistics of the object vs the painting (training.losses.colour_loss).
    colour: float = 0.0
    # Kernel usage: each image's prototype mix confident, the batch's mix spread over the
    # prototypes (training.losses.kernel_diversity_loss); 0 turns it off.
    diversity: float = 0.05
    # Loss network Φ: a VGG-19 weights path, "random:SEED", or null to look it up
    # ($DKT_VGG19_WEIGHTS, then the cache folder, then a checksum-verified download).
    network: str | None = None
    # A distilled VGG-19 encoder file (cd16x_encoder_relu4_1.pth or ..._relu5_1.pth) whose
    # aux taps extend the loss network past what loss.network reaches (relu4_1, relu5_1);
    # recorded per tap as "distilled", never as VGG-19. null: loss.network's taps only.
    deep_network: str | None = None
    # Loss-network taps L_c reads, averaged (e.g. [relu3_1, relu4_1]: the exact relu3_1 keeps
    # the object's edges, relu4_1 its parts); null: relu4_1 where the network has it, else
    # its deepest tap.
    content_taps: tuple[str, ...] | None = None
    # Chroma speckle: the object's high-frequency a/b (Lab) energy above the painting's
    # (training.losses.chroma_noise_loss); 0 turns it off.
    chroma: float = 0.0
    # What L_c compares the output's deepest Φ features with: "composite" (the composite's
    # own, METHOD.md) or "transformed" (the composite's with the foreground re-normalised to
    # the background's statistics, as AdaIN trains): see training.losses.content_target.
    content_target: str = "composite"


@dataclass(frozen=True)
class AdversarialSettings:
    """The patch discriminator and when it starts (after a generator-only warm-up)."""

    warmup_steps: int = 500
    ramp_steps: int = 200
    lr: float = 2e-4
    channels: int = 32
    layers: int = 3


@dataclass(frozen=True)
class DataSettings:
    """Where foregrounds and paintings come from and how composites are drawn.

    ``filter_ratio`` keeps objects whose area in their own photo is within the range (null
    keeps all); ``fg_ratio`` is the pasted area's range after scaling to the working size.
    """

    paintings: str | None = None
    paintings_csv: str | None = None
    photos: str | None = None
    masks: str | None = None
    coco: str | None = None
    yolo: str | None = None
    size: int = 256
    batch_size: int = 4
    workers: int = 2
    filter_ratio: tuple[float, float] | None = (0.05, 0.30)
    fg_ratio: tuple[float, float] = (0.05, 0.30)
    random_position_prob: float = 0.5
    flip_prob: float = 0.5
    skip_bad: bool = False


@dataclass(frozen=True)
class OptimSettings:
    """Adam for the generator; the learning-rate schedule has a linear warm-up."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = 5.0
    schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1


@dataclass(frozen=True)
class RunSettings:
    """Length, precision, EMA and how often to log, write images and checkpoint."""

    steps: int = 4000
    seed: int = 0
    precision: str = "fp32"
    ema_decay: float | None = None
    log_every: int = 20
    image_every: int = 200
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    tensorboard: bool = True
    # vgg19-relu3 only: the pretrained relu3_1 feature inverter its decoder starts from
    # (WCT's feature_invertor_conv3_1.pth); null starts from random weights.
    decoder_init: str | None = None
    # cd16x-relu4 only: the distilled encoder file (cd16x_encoder_relu4_1.pth) the frozen
    # encoder is loaded from (the VGG encoders are copied from the loss network instead).
    encoder_init: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the machine it runs on."""

    # cov_rank 16 for new runs; DKTNetConfig's own default (0) is what checkpoints made before
    # the covariance summary existed load with.
    model: DKTNetConfig = field(default_factory=lambda: DKTNetConfig(cov_rank=16))
    loss: LossWeights = field(default_factory=LossWeights)
    adversarial: AdversarialSettings = field(default_factory=AdversarialSettings)
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    run: RunSettings = field(default_factory=RunSettings)

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-ready data (tuples as lists), the inverse of :func:`from_dict`."""
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        """Block-style sections with one key per line; short lists stay on one line."""
        return yaml.dump(self.to_dict(), Dumper=_ConfigDumper, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build and check; ``model.working_size`` follows ``data.size`` (one knob, not two)."""
        data = _plain(data)
        size = (data.get("data") or {}).get("size", DataSettings.size)
        model = data.get("model") or {}
        if isinstance(model, dict):
            given = model.get("working_size", size)
            if given != size:
                raise ConfigError(
                    f"{source}: model.working_size ({given}) must equal data.size ({size}); "
                    "set data.size only"
                )
            data["model"] = {**model, "working_size": size}
        try:
            return _build(cls, data, source, "")
        except ConfigError as exc:
            if str(exc).startswith(source):
                raise
            raise ConfigError(f"{source}: {exc}") from None
        except ValueError as exc:  # DKTNetConfig's own checks
            raise ConfigError(f"{source}: {exc}") from None


def _validate(cfg: TrainConfig) -> None:
    _check_finite(dataclasses.asdict(cfg), "")
    run, optim, data, adv = cfg.run, cfg.optim, cfg.data, cfg.adversarial
    checks = [
        (run.precision in PRECISIONS, f"run.precision must be one of {PRECISIONS}"),
        (optim.schedule in SCHEDULES, f"optim.schedule must be one of {SCHEDULES}"),
        (run.steps >= 1, "run.steps must be >= 1"),
        (min(run.log_every, run.image_every, run.checkpoint_every) >= 1,
         "run.log_every, run.image_every and run.checkpoint_every must be >= 1"),
        (run.keep_checkpoints >= 1, "run.keep_checkpoints must be >= 1"),
        (run.ema_decay is None or 0.0 < run.ema_decay < 1.0, "run.ema_decay must be in (0, 1)"),
        (data.size % 8 == 0 and data.size >= 32, "data.size must be a multiple of 8, >= 32"),
        (data.batch_size >= 1 and data.workers >= 0, "data.batch_size >= 1, data.workers >= 0"),
        (optim.lr > 0 and adv.lr > 0, "learning rates must be > 0"),
        (0.0 <= optim.min_lr_ratio <= 1.0, "optim.min_lr_ratio must be in [0, 1]"),
        (min(optim.warmup_steps, adv.warmup_steps, adv.ramp_steps) >= 0,
         "warm-up and ramp steps must be >= 0"),
        (all(w >= 0 for w in _weights(cfg.loss)), "loss weights must be >= 0"),
        (cfg.loss.content_target in CONTENT_TARGETS,
         f"loss.content_target must be one of {CONTENT_TARGETS}"),
        (run.decoder_init is None or cfg.model.encoder in INVERTERS,
         "run.decoder_init (a pretrained inverter) only fits model.encoder vgg19-relu3 or "
         "cd16x-relu4"),
        (run.encoder_init is None or getattr(ENCODERS.get(cfg.model.encoder), "pretrained", None)
         == "distilled",
         "run.encoder_init (a distilled encoder file) only fits model.encoder cd16x-relu4"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _check_finite(values: dict[str, Any], where: str) -> None:
    """Refuse NaN and infinity anywhere: ``optim.lr=.inf`` trained a model of NaN tensors
    to the end and exited 0, and a NaN passes every ``>``/``<`` range check as False only
    where the check happens to be written that way round."""
    for key, value in values.items():
        if isinstance(value, dict):
            _check_finite(value, f"{where}{key}.")
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            raise ConfigError(f"{where}{key} = {_plain(value)!r} is not a finite number")


_NOT_WEIGHTS = ("network", "deep_network", "content_target", "content_taps")


def _weights(loss: LossWeights) -> list[float]:
    return [v for k, v in dataclasses.asdict(loss).items() if k not in _NOT_WEIGHTS]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _ConfigDumper(yaml.SafeDumper):
    pass


_ConfigDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)

T = TypeVar("T")


def _build(cls: type[T], data: Any, source: str, where: str) -> T:
    """Build dataclass ``cls`` from ``data``, checking keys and value types on the way."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where or 'the config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        names = ", ".join(f"{where}{k}" for k in unknown)
        raise ConfigError(f"{source}: unknown key(s) {names}")
    values = {
        name: _coerce(hints[name], value, source, f"{where}{name}") for name, value in data.items()
    }
    if cls is DKTNetConfig:
        return DKTNetConfig.from_dict(values)  # type: ignore[return-value]
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    """Check ``value`` against a field's type hint; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        real = [o for o in options if o is not type(None)]
        return _coerce(real[0], value, source, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a class, not an instance
        return _build(hint, value or {}, source, f"{key}.")
    bad = ConfigError(f"{source}: {key} = {value!r} is not a valid {_type_name(hint)}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or (
            args[-1] is not Ellipsis and len(value) != len(args)
        ):
            raise bad
        inner = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        return tuple(_coerce(t, v, source, key) for t, v in zip(inner, value, strict=True))
    if origin is dict or hint is dict or hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    return value


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        return "list" if args[-1] is Ellipsis else f"list of {len(args)} values"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


# --------------------------------------------------------------------------- files


def builtin_configs() -> dict[str, str]:
    """Names of the presets shipped with the package, mapped to their YAML text."""
    folder = resources.files("training") / "configs"
    return {
        entry.name.removesuffix(".yaml"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


class _AliasError(yaml.MarkedYAMLError):
    pass


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``) before anything is built from them.

    Nine levels of aliases to aliases (the "billion laughs") are a few hundred bytes of
    YAML that expand to 10^9 values: one took 208 s and 10.6 GB before an error. A config
    has no need of them, so the first alias ends the read.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasError(problem="alias", problem_mark=self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` without aliases; raises ``yaml.YAMLError`` (or RecursionError for
    thousands of nested brackets)."""
    loader = _ConfigLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = _safe_yaml(text)
    except _AliasError as exc:
        line = exc.problem_mark.line + 1
        raise ConfigError(
            f"{source}: YAML aliases (*name, line {line}) are not allowed in a config; "
            "write the value out"
        ) from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML (nested too deeply)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a YAML mapping of sections")
    return data


def load_config_data(name_or_path: str) -> tuple[dict[str, Any], str]:
    """The raw mapping of a preset name or a YAML file, and a label naming where it came from."""
    presets = builtin_configs()
    if name_or_path in presets:
        return _read_yaml(presets[name_or_path], name_or_path), name_or_path
    path = Path(name_or_path)
    if not path.is_file():
        names = ", ".join(sorted(presets))
        raise ConfigError(f"{name_or_path}: no such config file or preset (presets: {names})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return _read_yaml(text, str(path)), str(path)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``section.key=value`` (value parsed as YAML) set.

    Keys are checked later, against the dataclasses, so the error names the key either way.
    """
    result = _plain(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"override {item!r}: use section.key=value, e.g. optim.lr=1e-4")
        try:
            value = _safe_yaml(raw) if raw.strip() else None
        except _AliasError:
            raise ConfigError(f"override {item!r}: YAML aliases are not allowed") from None
        except (yaml.YAMLError, RecursionError):
            raise ConfigError(f"override {item!r}: the value is not valid YAML") from None
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def load_config(
    name_or_path: str = "dktnet-lite", overrides: list[str] | None = None
) -> TrainConfig:
    """Resolve a preset or file plus command-line overrides into a checked :class:`TrainConfig`."""
    data, source = load_config_data(name_or_path)
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{source} (with overrides)"
    return TrainConfig.from_dict(data, source)
