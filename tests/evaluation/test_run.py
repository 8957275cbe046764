"""``evaluate``, the verb behind ``dkt evaluate``, called directly: what it writes, what it
reports, and the inputs it refuses before running anything."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dkt.errors import EmptySheetError, EvaluationError, MethodError
from dkt.evaluation.run import NO_INCEPTION, NO_VGG, Callbacks, EvaluateRequest, evaluate
from dkt.evaluation.summary import failure_rows, notes, table_rows
from dkt.imaging.imageio import read_image
from tests.dkt_cli.eval_data import EvalSet, make_eval_set


@pytest.fixture(scope="module")
def evalset(tmp_path_factory: pytest.TempPathFactory) -> EvalSet:
    return make_eval_set(tmp_path_factory.mktemp("evalset"))


def _request(evalset: EvalSet, methods: str, **options: object) -> EvaluateRequest:
    return EvaluateRequest(
        evalset.composites,
        evalset.masks,
        methods,
        device="cpu",
        **options,  # type: ignore[arg-type]
    )


def test_scores_every_method_and_writes_the_table_and_sheet(
    evalset: EvalSet, tmp_path: Path
) -> None:
    table, sheet = tmp_path / "t.csv", tmp_path / "sheet.png"
    result = evaluate(
        _request(evalset, "composite,reinhard", references=evalset.composites,
                 csv_path=table, sheet=sheet)
    )  # fmt: skip
    report = result.report
    assert [m.name for m in report.methods] == ["composite", "reinhard"]
    assert report.items_evaluated == 3 and not result.failed
    assert report.unavailable["fid"] == NO_INCEPTION and report.unavailable["vgg_style"] == NO_VGG
    with open(table, newline="") as fh:
        assert [row["method"] for row in csv.DictReader(fh)] == ["composite", "reinhard"]
    assert read_image(sheet).shape[0] > 3 * 100
    document = result.to_dict()
    assert document["composites"] == str(evalset.composites)
    assert document["references_folder"] == str(evalset.composites)
    assert [row[0] for row in table_rows(report)] == ["composite", "reinhard"]
    assert f"FID, KID: {NO_INCEPTION}" in notes(report, evalset.composites)


def test_a_missing_result_fails_that_item_and_the_run(evalset: EvalSet) -> None:
    result = evaluate(_request(evalset, f"composite,{evalset.results}"))
    assert result.failed
    rows = failure_rows(result.report)
    assert [(method, item) for method, item, _ in rows] == [("results", "c")]
    assert "no output for this composite" in rows[0][2]


def test_progress_goes_through_the_callbacks(evalset: EvalSet) -> None:
    stages: list[tuple[str, int | None]] = []
    advanced: list[str] = []

    @contextlib.contextmanager
    def stage(what: str, total: int | None) -> Iterator[Callable[[], None]]:
        stages.append((what, total))
        yield lambda: advanced.append(what)

    evaluate(_request(evalset, "composite", limit=2), Callbacks(stage=stage))
    assert stages == [("evaluating", 2)] and advanced == ["evaluating", "evaluating"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"composite_pattern": "{key}_comp"}, EvaluationError, "no composites found matching"),
        ({"references": Path("/no/such/dir")}, EvaluationError, "--references /no/such/dir: no"),
        ({"vgg_deep_weights": Path("d.pth")}, EvaluationError, "pass --vgg-weights too"),
        ({"vgg_weights": Path("random:0")}, EvaluationError, "not measurements"),
        ({"methods": "nonsense"}, MethodError, "not one of composite, reinhard"),
    ],
)
def test_unusable_inputs_are_refused_before_anything_is_written(
    evalset: EvalSet, tmp_path: Path, options: dict[str, object], error: type, message: str
) -> None:
    options = {"methods": "composite", **options}
    methods = str(options.pop("methods"))
    with pytest.raises(error, match=message):
        evaluate(_request(evalset, methods, csv_path=tmp_path / "t.csv", **options))
    assert not (tmp_path / "t.csv").exists()


def test_too_few_references_for_fid(evalset: EvalSet, tmp_path: Path) -> None:
    (tmp_path / "one.png").write_bytes((evalset.composites / "a.png").read_bytes())
    with pytest.raises(EvaluationError, match="FID/KID need at least 2 images, found 1"):
        evaluate(_request(evalset, "composite", references=tmp_path))


def test_a_sheet_of_nothing_is_an_error_after_the_table_is_written(
    evalset: EvalSet, tmp_path: Path
) -> None:
    broken = tmp_path / "comps"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    table = tmp_path / "t.csv"
    request = EvaluateRequest(
        broken, evalset.masks, "composite", device="cpu", csv_path=table, sheet=tmp_path / "s.png"
    )
    with pytest.raises(EmptySheetError, match="--sheet: no composite could be read"):
        evaluate(request)
    assert table.is_file() and not (tmp_path / "s.png").exists()
