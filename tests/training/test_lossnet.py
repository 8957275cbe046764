"""Where the loss network's weights come from: path, environment, cache, checked download."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from dkt.errors import CheckpointError, MissingLossNetworkError, WeightsDownloadError
from training import lossnet
from training.lossnet import find_vgg19_weights, load_loss_network


def test_explicit_path_then_env_then_cache(tmp_path: Path) -> None:
    mine, named = tmp_path / "mine.pth", tmp_path / "named.pth"
    mine.write_bytes(b"a")
    named.write_bytes(b"b")
    cache = tmp_path / "cache" / "dkt"
    cache.mkdir(parents=True)
    (cache / "vgg19-dcbb9e9d.pth").write_bytes(b"c")
    env = {"DKT_VGG19_WEIGHTS": str(named), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert find_vgg19_weights(mine, env=env) == (mine, "path")
    assert find_vgg19_weights(env=env) == (named, "$DKT_VGG19_WEIGHTS")
    del env["DKT_VGG19_WEIGHTS"]
    assert find_vgg19_weights(env=env) == (cache / "vgg19-dcbb9e9d.pth", "cache")
    (cache / "vgg_normalised.pth").write_bytes(b"d")  # AdaIN's file is preferred
    assert find_vgg19_weights(env=env)[0] == cache / "vgg_normalised.pth"


def test_a_named_file_that_is_missing_is_an_error_not_a_fall_through(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    with pytest.raises(CheckpointError, match="no such file"):
        find_vgg19_weights(tmp_path / "typo.pth", env=env)
    with pytest.raises(CheckpointError, match=r"\$DKT_VGG19_WEIGHTS"):
        find_vgg19_weights(env={**env, "DKT_VGG19_WEIGHTS": str(tmp_path / "typo.pth")})


def test_nothing_found_says_every_way_to_get_weights(tmp_path: Path) -> None:
    with pytest.raises(MissingLossNetworkError) as caught:
        find_vgg19_weights(env={"XDG_CACHE_HOME": str(tmp_path)})
    message = str(caught.value)
    for hint in ("--loss-network PATH", "$DKT_VGG19_WEIGHTS", "--download-weights", "random:0"):
        assert hint in message


def test_download_keeps_only_a_file_with_the_right_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "served.pth"
    source.write_bytes(b"pretend weights")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setattr(lossnet, "TORCHVISION_VGG19_URL", source.as_uri())
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    monkeypatch.setattr(lossnet, "TORCHVISION_VGG19_SHA256_PREFIX", "00000000")
    with pytest.raises(WeightsDownloadError, match="checksum mismatch"):
        find_vgg19_weights(download=True, env=env)
    assert not list((tmp_path / "cache").rglob("*.pth"))
    monkeypatch.setattr(lossnet, "TORCHVISION_VGG19_SHA256_PREFIX", digest[:8])
    path, source_kind = find_vgg19_weights(download=True, env=env)
    assert source_kind == "download"
    assert path.read_bytes() == b"pretend weights"


def test_random_stand_in_only_by_name_and_recorded() -> None:
    net = load_loss_network("random:3")
    assert net.provenance["pretrained"] is False and net.provenance["seed"] == 3
    with pytest.raises(ValueError, match="integer seed"):
        load_loss_network("random:x")


def test_the_truncated_relu3_file_is_found_in_the_cache_after_any_full_vgg(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "dkt"
    cache.mkdir(parents=True)
    (cache / "vgg_normalised_conv3_1.pth").write_bytes(b"a")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert find_vgg19_weights(env=env) == (cache / "vgg_normalised_conv3_1.pth", "cache")
    (cache / "vgg19-dcbb9e9d.pth").write_bytes(b"b")  # a full VGG-19 is preferred
    assert find_vgg19_weights(env=env)[0] == cache / "vgg19-dcbb9e9d.pth"


def test_a_truncated_file_gives_a_three_tap_loss_network_that_says_so(shared_weights: Path) -> None:
    lossnet = load_loss_network(str(shared_weights / "vgg_normalised_conv3_1.pth"))
    assert lossnet.provenance["taps"] == ["relu1_1", "relu2_1", "relu3_1"]
    assert lossnet.provenance["pretrained"] is True
    feats = lossnet.network(torch.rand(1, 3, 32, 32))
    assert len(feats) == 3


def test_the_random_stand_in_records_its_four_taps() -> None:
    assert load_loss_network("random:0").provenance["taps"] == [
        "relu1_1",
        "relu2_1",
        "relu3_1",
        "relu4_1",
    ]


def test_deep_distilled_taps_extend_the_exact_network_and_say_which_is_which(
    shared_weights: Path, shared_cd16x_weights: Path
) -> None:
    net = load_loss_network(
        str(shared_weights / "vgg_normalised_conv3_1.pth"),
        deep=str(shared_cd16x_weights / "cd16x_encoder_relu5_1.pth"),
    )
    taps = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert net.provenance["taps"] == taps
    sources = net.provenance["tap_sources"]
    assert {sources[t]["kind"] for t in taps[:3]} == {"vgg19"}
    assert {sources[t]["kind"] for t in taps[3:]} == {"distilled-vgg19-cd16x"}
    assert sources["relu5_1"]["file"] == "cd16x_encoder_relu5_1.pth"
    assert net.content_index == 3  # L_c reads relu4_1, not the deepest tap
    feats = net.network(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    # The shallow taps are the exact network's own, not the approximation's.
    exact = load_loss_network(str(shared_weights / "vgg_normalised_conv3_1.pth")).network
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(net.network(x)[2], exact(x)[2])


def test_a_distilled_file_alone_is_a_loss_network_of_its_aux_taps(
    shared_cd16x_weights: Path,
) -> None:
    net = load_loss_network(str(shared_cd16x_weights / "cd16x_encoder_relu4_1.pth"))
    assert net.provenance["kind"] == "distilled-vgg19-cd16x"
    assert net.provenance["taps"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    assert "not VGG-19" in str(net.provenance["note"])
    with pytest.raises(ValueError, match="already the distilled"):
        load_loss_network(
            str(shared_cd16x_weights / "cd16x_encoder_relu4_1.pth"),
            deep=str(shared_cd16x_weights / "cd16x_encoder_relu5_1.pth"),
        )


def test_a_missing_deep_network_is_named(shared_weights: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="deep loss network"):
        load_loss_network(
            str(shared_weights / "vgg_normalised_conv3_1.pth"), deep=str(tmp_path / "typo.pth")
        )


def test_content_taps_are_read_by_name_and_an_unknown_one_is_named(
    shared_weights: Path, shared_cd16x_weights: Path
) -> None:
    net = load_loss_network(
        str(shared_weights / "vgg_normalised_conv3_1.pth"),
        deep=str(shared_cd16x_weights / "cd16x_encoder_relu5_1.pth"),
    )
    assert net.content_indices(None) == [3]
    assert net.content_indices(("relu3_1", "relu4_1")) == [2, 3]
    with pytest.raises(ValueError, match="relu6_1: the loss network has relu1_1"):
        net.content_indices(("relu6_1",))
