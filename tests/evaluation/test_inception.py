"""Tests for ``dkt.evaluation.inception``: the FID network, its weight files and their sources.

No real weights exist on the test machines, so a weights file is made from a randomly
initialised network, saved the way pytorch-fid's file is (a plain state dict with the
classifier, loaded with ``weights_only``) and as safetensors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import dkt.evaluation.inception as inc
from dkt.errors import CheckpointError
from dkt.evaluation.inception import (
    FIDInception,
    WeightsDownloadError,
    cache_dir,
    download_file,
    extract_features,
    find_inception_weights,
    load_inception,
)


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = FIDInception()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    # pytorch-fid's file also holds the 1008-way classifier, which features do not use.
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    return state


def test_architecture_matches_the_fid_inception_layout() -> None:
    net = FIDInception()
    keys = net.state_dict().keys()
    assert "Mixed_7c.branch3x3dbl_3b.conv.weight" in keys
    assert "Mixed_6e.branch7x7dbl_5.bn.running_var" in keys
    params = sum(p.numel() for p in net.parameters())
    assert params == 21_785_568  # torchvision Inception-v3 without aux head and classifier
    assert net.Mixed_7b.pool == "avg" and net.Mixed_7c.pool == "max"


def test_pth_round_trip_gives_identical_network_and_2048_features(
    tmp_path: Path, random_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "pt_inception.pth"
    torch.save(random_state, path)
    model = load_inception(path)
    loaded = model.state_dict()
    for key, value in random_state.items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], value), key
    image = (torch.rand(70, 90, 3) * 255).to(torch.uint8).numpy()
    feats = extract_features(model, [image])  # one forward pass: a few seconds on a CPU
    assert feats.shape == (1, 2048)
    assert (feats >= 0).all() and feats.std() > 0  # post-ReLU average pool, not constant


def test_safetensors_round_trip(tmp_path: Path, random_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in random_state.items()}, str(path))
    loaded = load_inception(path).state_dict()
    assert torch.equal(
        loaded["Conv2d_1a_3x3.conv.weight"], random_state["Conv2d_1a_3x3.conv.weight"]
    )


def test_wrong_tensors_are_named(tmp_path: Path, random_state: dict[str, torch.Tensor]) -> None:
    broken = dict(random_state)
    del broken["Mixed_5b.branch1x1.conv.weight"]
    broken["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"Mixed_5b\.branch1x1\.conv\.weight.*extra\.weight"):
        load_inception(path)
    reshaped = dict(random_state)
    reshaped["Conv2d_1a_3x3.bn.weight"] = torch.zeros(33)
    torch.save(reshaped, path)
    with pytest.raises(CheckpointError, match="wrong tensor shapes"):
        load_inception(path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"x": object()}, path)  # not loadable with weights_only=True
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_inception(path)


def test_weights_lookup_order(tmp_path: Path) -> None:
    explicit = tmp_path / "a.pth"
    named = tmp_path / "b.pth"
    explicit.write_bytes(b"x")
    named.write_bytes(b"x")
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    assert cache_dir(env) == cache / "dkt"
    none = find_inception_weights(None, env)
    assert none.path is None and "--inception-weights" in none.reason
    (cache / "dkt").mkdir(parents=True)
    (cache / "dkt" / inc.INCEPTION_FILENAME).write_bytes(b"x")
    assert find_inception_weights(None, env).source == "cache"
    env[inc.ENV_VAR] = str(named)
    assert find_inception_weights(None, env).path == named
    assert find_inception_weights(explicit, env).path == explicit
    with pytest.raises(CheckpointError, match="no such file"):
        find_inception_weights(tmp_path / "typo.pth", env)
    with pytest.raises(CheckpointError, match=inc.ENV_VAR):
        find_inception_weights(None, {inc.ENV_VAR: str(tmp_path / "gone.pth")})


def test_cache_dir_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir({}) == tmp_path / ".cache" / "dkt"


def test_download_checks_the_sha256_prefix(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"painterly" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "weights.pth"
    got = download_file(source.as_uri(), dest, sha256_prefix=digest[:8].upper())
    assert got == dest and dest.read_bytes() == source.read_bytes()

    bad = tmp_path / "cache" / "bad.pth"
    with pytest.raises(WeightsDownloadError, match="checksum mismatch"):
        download_file(source.as_uri(), bad, sha256_prefix="00000000")
    assert not bad.exists()
    assert not [p for p in bad.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_download_failure_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WeightsDownloadError, match="download failed"):
        download_file((tmp_path / "missing").as_uri(), tmp_path / "x", sha256_prefix="0")
    assert not (tmp_path / "x").exists()


def test_download_inception_weights_goes_to_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "published.pth"
    source.write_bytes(b"weights")
    monkeypatch.setattr(inc, "INCEPTION_URL", source.as_uri())
    monkeypatch.setattr(inc, "INCEPTION_SHA256_PREFIX", hashlib.sha256(b"weights").hexdigest()[:8])
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    path = inc.download_inception_weights(env)
    assert path == tmp_path / "xdg" / "dkt" / inc.INCEPTION_FILENAME
    assert find_inception_weights(None, env).path == path
