"""Where the baselines' pretrained files are looked up (dkt.dktnet.pretrained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkt.dktnet.pretrained import (
    CD16X_DECODER_RELU4_FILE,
    CD16X_ENCODER_RELU4_FILE,
    CD16X_RELU4_FILES,
    ENV_DIR,
    INVERTER_FILE,
    RELU3_FILES,
    VGG_RELU3_FILE,
    find_pretrained,
    find_relu3_weights,
)
from dkt.errors import MissingPretrainedError


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    for name in (VGG_RELU3_FILE, INVERTER_FILE):
        (path / name).write_bytes(b"x")
    return path


def test_named_folder_then_env_then_cache(tmp_path: Path) -> None:
    named, env_dir = _folder(tmp_path / "named"), _folder(tmp_path / "env")
    cache = _folder(tmp_path / "xdg" / "dkt")
    env = {ENV_DIR: str(env_dir), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    found = find_relu3_weights(named, env=env)
    assert (found.vgg, found.inverter, found.source) == (
        named / VGG_RELU3_FILE,
        named / INVERTER_FILE,
        "path",
    )
    assert find_relu3_weights(env=env).vgg.parent == env_dir
    assert find_relu3_weights(env={"XDG_CACHE_HOME": str(tmp_path / "xdg")}).vgg.parent == cache


def test_a_named_folder_without_the_files_is_an_error_not_a_fall_through(tmp_path: Path) -> None:
    _folder(tmp_path / "xdg" / "dkt")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / VGG_RELU3_FILE).write_bytes(b"x")
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    with pytest.raises(MissingPretrainedError, match=INVERTER_FILE) as err:
        find_relu3_weights(tmp_path / "half", env=env)
    assert "half" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(MissingPretrainedError, match=ENV_DIR):
        find_relu3_weights(env={ENV_DIR: str(tmp_path / "half"), **env})


def test_nothing_found_says_how_to_provide_the_files(tmp_path: Path) -> None:
    with pytest.raises(MissingPretrainedError, match=f"set \\${ENV_DIR}"):
        find_relu3_weights(env={"XDG_CACHE_HOME": str(tmp_path)})


def test_each_baseline_names_its_own_files_in_the_same_places(tmp_path: Path) -> None:
    """The distilled relu4_1 pair is found by the same lookup, named folder first."""
    named = tmp_path / "named"
    named.mkdir()
    for name in CD16X_RELU4_FILES:
        (named / name).write_bytes(b"x")
    env = {ENV_DIR: str(_folder(tmp_path / "env")), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    found = find_pretrained(CD16X_RELU4_FILES, named, env=env)
    assert found.paths == (named / CD16X_ENCODER_RELU4_FILE, named / CD16X_DECODER_RELU4_FILE)
    assert found.source == "path"
    # $DKT_WEIGHTS_DIR holds only the relu3_1 pair: asked for the distilled pair, it is an
    # error naming that folder and both missing files, not a fall-through to the cache.
    with pytest.raises(MissingPretrainedError) as err:
        find_pretrained(CD16X_RELU4_FILES, env=env)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "env") in message
    assert CD16X_ENCODER_RELU4_FILE in message and CD16X_DECODER_RELU4_FILE in message
    assert find_pretrained(RELU3_FILES, env=env).paths[0].parent == tmp_path / "env"


def test_only_the_missing_files_are_named(tmp_path: Path) -> None:
    half = tmp_path / "half"
    half.mkdir()
    (half / CD16X_ENCODER_RELU4_FILE).write_bytes(b"x")
    with pytest.raises(MissingPretrainedError) as err:
        find_pretrained(CD16X_RELU4_FILES, half, env={"XDG_CACHE_HOME": str(tmp_path)})
    assert str(err.value) == f"{half}: needs {CD16X_DECODER_RELU4_FILE} (path)"
    cache = tmp_path / "dkt"
    with pytest.raises(
        MissingPretrainedError, match=f"^{cache}: no {CD16X_ENCODER_RELU4_FILE} and"
    ):
        find_pretrained(CD16X_RELU4_FILES, env={"XDG_CACHE_HOME": str(tmp_path)})
