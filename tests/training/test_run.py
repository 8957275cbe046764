"""``training.run.train``, the verb behind ``dkt train``, as a script calls it.

A tiny run of a few steps gives a usable model and says what it trained on; a resumed run
reaches its new length; whatever is wrong with a request is refused, as one
:class:`~dkt.errors.DktError`, before a run directory exists.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from dkt.dktnet.checkpoint import read_checkpoint_info
from dkt.errors import ConfigError, DktError
from tests.conftest import TINY_TRAIN_SETS
from training.run import SKIPPED_FILES, Callbacks, TrainRequest, resolve_config, train

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclasses.dataclass
class Heard:
    """What the run reported, note by note and warning by warning."""

    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def callbacks(self) -> Callbacks:
        return Callbacks(note=self.notes.append, warn=self.warnings.append)


def tiny(data: Path, run_dir: Path, **fields: object) -> TrainRequest:
    """A request for the tiny model on the ``train_data`` fixture, on the CPU."""
    base: dict[str, object] = {
        "sets": TINY_TRAIN_SETS, "paintings": data / "paintings", "photos": data / "photos",
        "masks": data / "masks", "steps": 2, "run_dir": run_dir, "device": "cpu",
    }  # fmt: skip
    return TrainRequest(**{**base, **fields})  # type: ignore[arg-type]


def test_a_tiny_run_writes_a_usable_model_and_says_what_it_trained(
    train_data: Path, tmp_path: Path
) -> None:
    listing = train_data / "paintings.csv"
    listing.write_text("".join(f"paintings/p{i}.png\n" for i in range(6)) + "paintings/gone.png\n")
    heard, run = Heard(), tmp_path / "run"
    request = tiny(train_data, run, paintings=None, paintings_csv=listing)

    result = train(request, heard.callbacks())

    assert (result.steps, result.interrupted, result.is_main) == (2, False, True)
    assert result.model == run / "model.safetensors"
    info = read_checkpoint_info(result.model)
    assert info.config.working_size == 32
    assert info.provenance["data"] == {"paintings": 6, "foregrounds": 3}
    assert any("gone.png" in w for w in heard.warnings)  # the library's warning, passed on
    assert any("random-weight loss network" in w for w in heard.warnings)
    assert heard.notes[:3] == [
        "6 paintings, 3 foregrounds; 2 steps, batch 2 per process x 1 process at 32 px on cpu",
        f"run directory: {run}",
        "checked 12 image files: 0 fail to open",  # 6 paintings, 3 photos, 3 masks
    ]


def test_a_resumed_run_reaches_its_new_length(train_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny(train_data, run, steps=1))
    result = train(TrainRequest(resume=run, steps=2, device="cpu"))
    assert result.steps == 2
    assert read_checkpoint_info(result.model).provenance["steps"] == 2


def test_skip_bad_leaves_out_an_unreadable_photo_and_lists_it(
    train_data: Path, tmp_path: Path
) -> None:
    bad = train_data / "photos" / "ph0.jpg"
    bad.write_bytes(b"not a jpeg")
    heard, run = Heard(), tmp_path / "run"
    result = train(tiny(train_data, run, steps=1, skip_bad=True), heard.callbacks())
    assert read_checkpoint_info(result.model).provenance["data"]["foregrounds"] == 2
    assert str(bad) in (run / SKIPPED_FILES).read_text()
    assert any(n.startswith("skipped 1 unreadable file(s)") and str(bad) in n for n in heard.notes)


def test_a_named_shortcut_wins_over_the_same_set_key() -> None:
    config = resolve_config(TrainRequest(sets=["run.steps=5", "optim.lr=1e-5"], steps=7))
    assert config.run.steps == 7
    assert config.optim.lr == pytest.approx(1e-5)


def _resume_with_paintings(data: Path, run: Path) -> TrainRequest:
    return TrainRequest(resume=run, paintings=data / "paintings")


def _no_paintings(data: Path, run: Path) -> TrainRequest:
    return tiny(data, run, paintings=None)


def _missing_folder(data: Path, run: Path) -> TrainRequest:
    return tiny(data, run, paintings=data / "nope")


def _fp16_on_the_cpu(data: Path, run: Path) -> TrainRequest:
    return tiny(data, run, sets=[*TINY_TRAIN_SETS, "run.precision=fp16"])


def _size_not_a_multiple_of_8(data: Path, run: Path) -> TrainRequest:
    return tiny(data, run, size=36)


REFUSED = [
    (_resume_with_paintings, "--resume keeps the run's config; only --steps and --set run.* "
                             "may change, not --paintings"),
    (_no_paintings, "no paintings: pass --paintings DIR or --paintings-csv FILE"),
    (_missing_folder, "paintings folder not found"),
    (_fp16_on_the_cpu, "run.precision fp16 needs CUDA; use bf16 or fp32 on the CPU"),
    (_size_not_a_multiple_of_8, "data.size must be a multiple of 8"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), REFUSED, ids=[m.__name__ for m, _ in REFUSED])
def test_a_bad_request_is_refused_before_a_run_directory_exists(
    make, message: str, train_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    heard = Heard()
    with pytest.raises(DktError) as caught:
        train(make(train_data, run), heard.callbacks())
    assert message in str(caught.value)
    assert not run.exists()
    assert not any(n.startswith("run directory") for n in heard.notes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_config_error(train_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        train(tiny(train_data, tmp_path / "run", device="cuda"))
    assert not (tmp_path / "run").exists()
