"""Tests for ``dkt.evaluation.catch``: scoring catch trials and screening raters by them."""

from __future__ import annotations

import pytest

from dkt.evaluation.catch import repeat_id, repeated_trial, score_catches, screen_raters


def row(rater: str, trial: str, winner: str, catch: str = "", a: str = "dkt",
        b: str = "reinhard", item: str = "k1") -> dict[str, str]:  # fmt: skip
    return {"item": item, "method_a": a, "method_b": b, "winner": winner, "rater": rater,
            "trial": trial, "left": a, "ms": "900", "catch": catch}  # fmt: skip


def composite(rater: str, trial: str, winner: str) -> dict[str, str]:
    return row(rater, trial, winner, "composite", a="composite", b="dkt")


def test_composite_catch_passes_only_when_the_method_is_picked() -> None:
    scores = score_catches(
        [composite("r1", "c1", "dkt"), composite("r1", "c2", "composite"),
         composite("r1", "c3", "tie"), composite("r2", "c1", "dkt")]
    )  # fmt: skip
    assert (scores["r1"].composite_passed, scores["r1"].composite_total) == (1, 3)
    assert scores["r1"].accuracy == pytest.approx(1 / 3)
    assert scores["r2"].accuracy == 1.0


def test_repeat_catch_passes_on_the_same_answer_as_the_first_showing() -> None:
    assert repeated_trial(repeat_id("7")) == "7" and repeated_trial("7") is None
    scores = score_catches(
        [row("r1", "7", "dkt"), row("r1", "8", "tie"), row("r1", "9", "reinhard"),
         row("r1", "r7", "dkt", "repeat"),       # consistent
         row("r1", "r8", "Tie", "repeat"),       # consistent: can't tell both times
         row("r1", "r9", "dkt", "repeat"),       # changed its mind
         row("r1", "r42", "dkt", "repeat"),      # first showing missing: unscored
         row("r2", "r7", "dkt", "repeat")]       # r2 never saw trial 7: unscored
    )  # fmt: skip
    r1 = scores["r1"]
    assert (r1.repeat_passed, r1.repeat_total, r1.unscored, r1.judgments) == (2, 3, 1, 3)
    assert scores["r2"].accuracy is None and scores["r2"].unscored == 1


def test_screen_drops_raters_below_min_catch_and_keeps_unchecked_ones() -> None:
    rows = [
        row("good", "1", "dkt"), composite("good", "c1", "dkt"),
        row("bad", "1", "reinhard"), composite("bad", "c1", "composite"),
        row("bad", "2", "reinhard"),
        row("new", "1", "dkt"),
    ]  # fmt: skip
    everyone = screen_raters(rows)
    assert everyone.dropped == () and everyone.unchecked == ("new",)
    assert everyone.catch_rows == 2
    assert [r["trial"] for r in everyone.kept_rows] == ["1", "1", "2", "1"]
    assert everyone.kept_lines == [2, 4, 6, 7]  # catch rows out, line numbers kept

    strict = screen_raters(rows, 0.8)
    assert strict.dropped == ("bad",)
    assert [(r["rater"], r["trial"]) for r in strict.kept_rows] == [("good", "1"), ("new", "1")]
    assert strict.kept_lines == [2, 7]
    report = strict.to_dict()
    assert report["dropped_raters"] == ["bad"] and report["min_catch"] == 0.8
    bad = next(r for r in report["raters"] if r["rater"] == "bad")
    assert bad["catch_accuracy"] == 0.0 and bad["dropped"] is True and bad["judgments"] == 2


def test_a_design_file_without_catch_columns_has_one_unchecked_rater() -> None:
    rows = [{"item": "k1", "method_a": "a", "method_b": "b", "winner": "a"},
            {"item": "k2", "method_a": "a", "method_b": "b", "winner": ""}]  # fmt: skip
    screen = screen_raters(rows, 0.9)
    assert not screen.has_catches and screen.dropped == ()
    assert len(screen.kept_rows) == 2
    with pytest.raises(ValueError, match="between 0 and 1"):
        screen_raters(rows, 1.5)
