"""Tests for dkt.dktnet.vgg_weights on fake weight files of the real shapes (nothing is downloaded).

The fake files are built once per module: VGG-19 to relu4_1 is 3.5M floats, plus one deeper
layer of the real shape that every loader must ignore.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from dkt.dktnet.encoders import VGG19_LAYERS, VGG19Encoder
from dkt.dktnet.vgg_weights import (
    ADAIN_INDEX,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TORCHVISION_INDEX,
    detect_layout,
    imagenet_input_conv,
    load_inverter_state,
    load_vgg19_encoder,
    read_state_dict,
    to_encoder_state,
)
from dkt.errors import CheckpointError
from tests.pickle_trap import assert_carries_code, write_trap

# The public layouts, written out here independently of dkt.dktnet.vgg_weights:
# AdaIN's vgg_normalised is conv0 (1x1), then (ReflectionPad2d, Conv2d, ReLU) per conv and a
# MaxPool2d between stages; torchvision's vgg19.features is (Conv2d, ReLU) per conv + MaxPool2d.
ADAIN_LAYOUT = {
    "conv0": 0, "conv1_1": 2, "conv1_2": 5, "conv2_1": 9, "conv2_2": 12, "conv3_1": 16,
    "conv3_2": 19, "conv3_3": 22, "conv3_4": 25, "conv4_1": 29,
}  # fmt: skip
TORCHVISION_LAYOUT = {
    "conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10,
    "conv3_2": 12, "conv3_3": 14, "conv3_4": 16, "conv4_1": 19,
}  # fmt: skip
CONV_SHAPES = {name: (cout, cin, 3, 3) for name, cin, cout in VGG19_LAYERS if name != "pool"}
CONV_SHAPES["conv0"] = (3, 3, 1, 1)


@pytest.fixture(scope="module")
def adain_state() -> dict[str, torch.Tensor]:
    """AdaIN's vgg_normalised layout: bare nn.Sequential indices, conv4_2 (index 32) beyond."""
    gen = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    for name, index in ADAIN_LAYOUT.items():
        shape = CONV_SHAPES[name]
        state[f"{index}.weight"] = torch.randn(shape, generator=gen) * 0.05
        state[f"{index}.bias"] = torch.randn(shape[0], generator=gen) * 0.05
    state["32.weight"] = torch.randn(512, 512, 3, 3, generator=gen)  # conv4_2: ignored
    state["32.bias"] = torch.randn(512, generator=gen)
    return state


@pytest.fixture(scope="module")
def torchvision_state() -> dict[str, torch.Tensor]:
    """torchvision's vgg19 layout: features.N.* plus a (shrunken) classifier that is ignored."""
    gen = torch.Generator().manual_seed(1)
    state: dict[str, torch.Tensor] = {}
    for name, index in TORCHVISION_LAYOUT.items():
        shape = CONV_SHAPES[name]
        state[f"features.{index}.weight"] = torch.randn(shape, generator=gen) * 0.05
        state[f"features.{index}.bias"] = torch.randn(shape[0], generator=gen) * 0.05
    state["features.21.weight"] = torch.randn(512, 512, 3, 3, generator=gen)  # conv4_2
    state["features.21.bias"] = torch.randn(512, generator=gen)
    state["classifier.0.weight"] = torch.randn(16, 32, generator=gen)
    state["classifier.0.bias"] = torch.randn(16, generator=gen)
    return state


@pytest.fixture(scope="module")
def files(
    tmp_path_factory: pytest.TempPathFactory,
    adain_state: dict[str, torch.Tensor],
    torchvision_state: dict[str, torch.Tensor],
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("vgg")
    paths = {
        "adain_pth": folder / "vgg_normalised.pth",
        "adain_st": folder / "vgg_normalised.safetensors",
        "torchvision_pth": folder / "vgg19-dcbb9e9d.pth",
    }
    torch.save(adain_state, paths["adain_pth"])
    save_file(adain_state, str(paths["adain_st"]))
    torch.save(torchvision_state, paths["torchvision_pth"])
    return paths


def _assert_convs_from(
    encoder: VGG19Encoder, state: dict[str, torch.Tensor], index: dict[str, int], prefix: str
) -> None:
    for name, i in index.items():
        module = encoder.conv0 if name == "conv0" else encoder.convs[name]
        assert torch.equal(module.weight, state[f"{prefix}{i}.weight"]), name
        assert torch.equal(module.bias, state[f"{prefix}{i}.bias"]), name


# ---------------------------------------------------------------------------- detect_layout


def test_index_maps_match_the_public_layouts() -> None:
    assert ADAIN_INDEX == ADAIN_LAYOUT
    assert TORCHVISION_INDEX == TORCHVISION_LAYOUT


def test_detect_layout(
    adain_state: dict[str, torch.Tensor], torchvision_state: dict[str, torch.Tensor]
) -> None:
    assert detect_layout(adain_state) == "adain"
    assert detect_layout(torchvision_state) == "torchvision"
    assert detect_layout(VGG19Encoder().state_dict()) == "dkt"


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"weight": torch.zeros(3)},
        {"0.weight": torch.zeros(64, 3, 3, 3), "2.weight": torch.zeros(1)},  # not a 1x1 conv0
        {"features.0.weight": torch.zeros(32, 3, 3, 3)},  # not VGG's first conv
        {"conv0.weight": torch.zeros(3, 3, 1, 1)},  # half of the dkt names
    ],
)
def test_detect_layout_rejects_other_layouts(state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="neither"):
        detect_layout(state)


# ---------------------------------------------------------------------------- loading


@pytest.mark.parametrize("key", ["adain_pth", "adain_st"])
def test_adain_file_loads_every_tensor_into_place(
    files: dict[str, Path], adain_state: dict[str, torch.Tensor], key: str
) -> None:
    encoder = load_vgg19_encoder(files[key])
    _assert_convs_from(encoder, adain_state, ADAIN_LAYOUT, "")
    assert not any(p.requires_grad for p in encoder.parameters())


def test_adain_first_tap_is_relu1_1_of_the_file(
    files: dict[str, Path], adain_state: dict[str, torch.Tensor]
) -> None:
    """relu1_1 = relu(conv1_1(reflect_pad(conv0(x)))) with the file's tensors."""
    encoder = load_vgg19_encoder(files["adain_st"])
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    y = F.conv2d(x, adain_state["0.weight"], adain_state["0.bias"])
    y = F.conv2d(
        F.pad(y, (1, 1, 1, 1), mode="reflect"), adain_state["2.weight"], adain_state["2.bias"]
    )
    with torch.no_grad():
        taps = encoder(x)
    torch.testing.assert_close(taps[0], torch.relu(y))
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512]
    assert [t.shape[-1] for t in taps] == [16, 8, 4, 2]


def test_torchvision_file_loads_into_place_with_imagenet_input_conv(
    files: dict[str, Path], torchvision_state: dict[str, torch.Tensor]
) -> None:
    encoder = load_vgg19_encoder(files["torchvision_pth"])
    _assert_convs_from(encoder, torchvision_state, TORCHVISION_LAYOUT, "features.")
    torch.manual_seed(1)
    x = torch.rand(2, 3, 5, 5)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(encoder.conv0(x), (x - mean) / std)


def test_imagenet_input_conv_normalises() -> None:
    conv = imagenet_input_conv()
    x = torch.rand(1, 3, 2, 2)
    got = F.conv2d(x, conv["conv0.weight"], conv["conv0.bias"])
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(got, (x - mean) / std)


def test_deeper_layers_and_classifier_are_ignored(
    adain_state: dict[str, torch.Tensor], torchvision_state: dict[str, torch.Tensor]
) -> None:
    expected = set(VGG19Encoder().state_dict())
    assert set(to_encoder_state(adain_state)) == expected
    assert set(to_encoder_state(torchvision_state)) == expected


def test_dkt_layout_round_trips(files: dict[str, Path], tmp_path: Path) -> None:
    encoder = load_vgg19_encoder(files["adain_st"])
    path = tmp_path / "dkt-vgg.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(path))
    again = load_vgg19_encoder(path, trainable=True)
    for name, t in encoder.state_dict().items():
        assert torch.equal(again.state_dict()[name], t)
    assert all(p.requires_grad for p in again.parameters())


def test_nested_state_dict_is_unwrapped(
    tmp_path: Path, adain_state: dict[str, torch.Tensor]
) -> None:
    small = {k: v for k, v in adain_state.items() if not k.startswith("32.")}
    path = tmp_path / "nested.pth"
    torch.save({"state_dict": small}, path)
    assert set(read_state_dict(path)) == set(small)


# ---------------------------------------------------------------------------- bad files


def test_neither_layout_is_a_clear_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "resnet.safetensors"
    save_file({"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.weight": torch.zeros(2, 8)}, str(path))
    with pytest.raises(CheckpointError, match="not VGG-19 weights") as excinfo:
        load_vgg19_encoder(path)
    message = str(excinfo.value)
    assert "AdaIN" in message and "torchvision" in message
    assert excinfo.value.path == path


def test_missing_layer_is_named(tmp_path: Path, adain_state: dict[str, torch.Tensor]) -> None:
    state = {k: v for k, v in adain_state.items() if k != "29.weight"}
    path = tmp_path / "cut.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"29\.weight"):
        load_vgg19_encoder(path)


def _wrong_shape_file(folder: Path, adain_state: dict[str, torch.Tensor]) -> Path:
    state = {k: v for k, v in adain_state.items() if not k.startswith("32.")}
    state["29.weight"] = torch.zeros(256, 256, 3, 3)  # conv4_1 must be (512, 256, 3, 3)
    path = folder / "shape.safetensors"
    save_file(state, str(path))
    return path


def test_wrong_shape_is_a_checkpoint_error(
    tmp_path: Path, adain_state: dict[str, torch.Tensor]
) -> None:
    with pytest.raises(CheckpointError, match=r"has shape .* expected"):
        load_vgg19_encoder(_wrong_shape_file(tmp_path, adain_state))


def test_wrong_shape_error_names_the_tensor(
    tmp_path: Path, adain_state: dict[str, torch.Tensor]
) -> None:
    with pytest.raises(CheckpointError) as excinfo:
        load_vgg19_encoder(_wrong_shape_file(tmp_path, adain_state))
    assert "conv4_1" in str(excinfo.value)


def test_pickled_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran.marker"
    path = tmp_path / "evil.pth"
    write_trap(path, {"0.weight": torch.zeros(3, 3, 1, 1)}, marker)
    assert_carries_code(path)  # so the check below is meaningful
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_vgg19_encoder(path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["junk.pth", "junk.safetensors"])
def test_garbage_file_is_a_checkpoint_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00\xffnot weights" * 20)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_vgg19_encoder(path)


def test_non_tensor_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pth"
    torch.save({"0.weight": torch.zeros(3, 3, 1, 1), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        load_vgg19_encoder(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        load_vgg19_encoder(tmp_path / "absent.pth")


# ---------------------------------------------------------------------------- relu3_1 files


def _truncated(state: dict[str, torch.Tensor], prefix: str, last_index: int) -> dict:
    """Keep only the layers up to nn.Sequential index ``last_index`` (conv3_1)."""
    return {
        k: v
        for k, v in state.items()
        if k.startswith(prefix) and int(k[len(prefix) :].split(".")[0]) <= last_index
    }


@pytest.mark.parametrize("layout", ["adain", "torchvision"])
def test_a_file_that_stops_at_conv3_1_is_a_three_tap_network(
    tmp_path: Path, layout: str, request: pytest.FixtureRequest
) -> None:
    if layout == "adain":
        state = _truncated(request.getfixturevalue("adain_state"), "", ADAIN_LAYOUT["conv3_1"])
    else:
        full = request.getfixturevalue("torchvision_state")
        state = _truncated(full, "features.", TORCHVISION_LAYOUT["conv3_1"])
    path = tmp_path / "relu3.safetensors"
    save_file(state, str(path))
    encoder = load_vgg19_encoder(path)
    assert encoder.depth == "relu3_1"
    assert encoder.tap_names == ("relu1_1", "relu2_1", "relu3_1")
    assert "conv4_1" not in encoder.convs  # never a made-up relu4_1
    taps = encoder(torch.rand(1, 3, 16, 16))
    assert [t.shape[1] for t in taps] == [64, 128, 256]
    with pytest.raises(CheckpointError, match="stops at relu3_1"):
        load_vgg19_encoder(path, depth="relu4_1")


def test_a_full_file_gives_either_depth(tmp_path: Path, adain_state: dict) -> None:
    path = tmp_path / "full.safetensors"
    save_file(adain_state, str(path))
    assert load_vgg19_encoder(path).depth == "relu4_1"
    short = load_vgg19_encoder(path, depth="relu3_1")
    full = load_vgg19_encoder(path)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(short(x)[-1], full(x)[2])


def test_the_real_relu3_files_load(shared_weights: Path) -> None:
    encoder = load_vgg19_encoder(shared_weights / "vgg_normalised_conv3_1.pth")
    assert encoder.tap_names == ("relu1_1", "relu2_1", "relu3_1")
    inverter = load_inverter_state(shared_weights / "feature_invertor_conv3_1.pth")
    assert inverter["convs.conv3_1.weight"].shape == (128, 256, 3, 3)
    assert inverter["convs.conv1_1.weight"].shape == (3, 64, 3, 3)


def test_a_file_that_is_not_an_inverter_is_refused(tmp_path: Path, adain_state: dict) -> None:
    path = tmp_path / "vgg.safetensors"
    save_file(adain_state, str(path))
    with pytest.raises(CheckpointError, match="not a relu3_1 feature inverter"):
        load_inverter_state(path)
