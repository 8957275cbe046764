"""Where the relu3_1 VGG-19 and its inverter are looked up (dkt.dktnet.pretrained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkt.dktnet.pretrained import (
    ENV_DIR,
    INVERTER_FILE,
    VGG_RELU3_FILE,
    MissingPretrainedError,
    find_relu3_weights,
)


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
