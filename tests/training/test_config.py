"""Training configs: presets shipped in the package, overrides, and errors that name the key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from dkt.errors import ConfigError
from training.config import TrainConfig, apply_overrides, builtin_configs, load_config


def test_both_presets_ship_and_resolve() -> None:
    assert {"dktnet-lite", "dktnet-vgg19"} <= set(builtin_configs())
    lite, vgg = load_config("dktnet-lite"), load_config("dktnet-vgg19")
    assert lite.model.encoder == "lite"
    assert vgg.model.encoder == "vgg19"
    assert vgg.model.channels[-1] == 512  # the paper's relu4_1


def test_resolved_config_round_trips_through_yaml(tmp_path: Path) -> None:
    cfg = load_config("dktnet-vgg19", ["optim.lr=1e-3", "data.filter_ratio=null"])
    path = tmp_path / "run.yaml"
    path.write_text(cfg.to_yaml())
    again = load_config(str(path))
    assert again == cfg
    assert again.optim.lr == pytest.approx(1e-3)
    assert again.data.filter_ratio is None


def test_overrides_parse_yaml_values() -> None:
    cfg = load_config(
        "dktnet-lite",
        [
            "optim.betas=[0.9, 0.99]",
            "run.ema_decay=0.99",
            "run.tensorboard=false",
            "loss.network=random:3",
        ],
    )
    assert cfg.optim.betas == (0.9, 0.99)
    assert cfg.run.ema_decay == pytest.approx(0.99)
    assert cfg.run.tensorboard is False
    assert cfg.loss.network == "random:3"


def test_model_working_size_follows_data_size() -> None:
    assert load_config("dktnet-lite", ["data.size=192"]).model.working_size == 192
    with pytest.raises(ConfigError, match=r"model\.working_size"):
        load_config("dktnet-lite", ["model.working_size=128"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown key\\(s\\) optim.lrr"),
        ("nosuch.key=1", "unknown key\\(s\\) nosuch"),
        ("optim.lr=fast", "optim.lr = 'fast' is not a valid float"),
        ("data.fg_ratio=[0.1]", "data.fg_ratio .* list of 2 values"),
        ("run.steps=1.5", "run.steps = 1.5 is not a valid int"),
        ("run.precision=fp8", "run.precision must be one of"),
        ("data.size=100", "data.size must be a multiple of 8"),
        ("loss.style=-1", "loss weights must be >= 0"),
        ("model.kernel_dim=999", "kernel_dim must be in"),
        ("optim", "use section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("dktnet-lite", [override])


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"no such config file or preset .*dktnet-lite"):
        load_config(str(missing))
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{broken}: not valid YAML"):
        load_config(str(broken))
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"optim": {"learning_rate": 1}}))
    with pytest.raises(ConfigError, match=f"{typo}: unknown key\\(s\\) optim.learning_rate"):
        load_config(str(typo))


def test_apply_overrides_does_not_touch_its_input() -> None:
    data = {"optim": {"lr": 1.0}}
    out = apply_overrides(data, ["optim.lr=2", "run.steps=3"])
    assert data == {"optim": {"lr": 1.0}}
    assert out == {"optim": {"lr": 2}, "run": {"steps": 3}}


def test_defaults_equal_the_lite_preset_except_where_the_preset_says_otherwise() -> None:
    # The dataclass defaults and the shipped YAML must not drift apart silently.
    assert load_config("dktnet-lite") == TrainConfig()


def test_the_cd16x_preset_takes_the_distilled_files_and_only_it_takes_an_encoder_file() -> None:
    cfg = load_config(
        "dktnet-cd16x",
        ["run.encoder_init=enc.pth", "run.decoder_init=dec.pth", "loss.deep_network=enc5.pth"],
    )
    assert cfg.model.encoder == "cd16x-relu4" and cfg.model.channels == (16, 32, 64, 128)
    assert cfg.loss.chroma > 0 and cfg.model.decoder_skips
    with pytest.raises(ConfigError, match="encoder_init"):
        load_config("dktnet-relu3", ["run.encoder_init=enc.pth"])


def test_a_cd16x_run_without_its_encoder_weights_stops_before_training() -> None:
    from training.loop import Trainer
    from training.lossnet import load_loss_network

    cfg = load_config("dktnet-cd16x", ["data.size=32", "run.tensorboard=false"])
    with pytest.raises(ValueError, match="--encoder-init"):
        Trainer(cfg, load_loss_network("random:0"))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optim.lr=.inf", "optim.lr = inf"),
        ("optim.lr=inf", "optim.lr = inf"),  # YAML 1.1 reads it as a string, float() as inf
        ("adversarial.lr=.nan", "adversarial.lr = nan"),
        ("loss.style=.inf", "loss.style = inf"),
        ("optim.grad_clip=.inf", "optim.grad_clip = inf"),
        ("optim.betas=[0.5, .nan]", "optim.betas = [0.5, nan]"),
        ("data.fg_ratio=[0.1, .inf]", "data.fg_ratio = [0.1, inf]"),
    ],
)
def test_non_finite_hyper_parameters_are_refused_naming_the_key(override: str, key: str) -> None:
    """``optim.lr=.inf`` trained a model of NaN tensors to the end and exited 0."""
    with pytest.raises(ConfigError) as info:
        load_config("dktnet-lite", [override])
    assert str(info.value) == f"dktnet-lite (with overrides): {key} is not a finite number"


def _laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_before_anything_expands(tmp_path: Path) -> None:
    """Nine levels of aliases (10^9 values) took 208 s and 10.6 GB before an error."""
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs())
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert time.perf_counter() - start < 0.5
    assert str(info.value) == (
        f"{path}: YAML aliases (*name, line 2) are not allowed in a config; write the value out"
    )
    with pytest.raises(ConfigError, match="aliases are not allowed"):
        apply_overrides({}, ["optim.betas=[&b 0.5, *b]"])


def test_a_config_nested_thousands_deep_is_invalid_yaml_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))
