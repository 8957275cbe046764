"""Tests for ``dkt.evaluation.bradley_terry``: recovery of known strengths, ties, bad rows."""

from __future__ import annotations

import numpy as np
import pytest

from dkt.errors import JudgmentError
from dkt.evaluation.bradley_terry import fit, fit_log_strengths, parse_judgments, win_matrix

TRUE = {"composite": -0.9, "reinhard": -0.3, "phdnet": 0.3, "dktnet": 0.9}  # centred


def simulate(n_items: int, per_item: int, seed: int) -> list[dict[str, str]]:
    """Judgments drawn from the Bradley-Terry model with strengths ``TRUE``."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    rows = []
    for item in range(n_items):
        for _ in range(per_item):
            i, j = rng.choice(len(names), 2, replace=False)
            a, b = names[i], names[j]
            p = 1.0 / (1.0 + np.exp(-(TRUE[a] - TRUE[b])))
            rows.append(
                {"item": f"c{item}", "method_a": a, "method_b": b,
                 "winner": a if rng.random() < p else b}
            )  # fmt: skip
    return rows


def test_fit_recovers_known_strengths_and_intervals_cover_them() -> None:
    judgments = parse_judgments(simulate(n_items=300, per_item=10, seed=7))
    assert len(judgments) == 3000
    result = fit(judgments, bootstrap_samples=300, seed=1, order=list(TRUE))
    assert result.methods == tuple(TRUE)
    truth = np.array(list(TRUE.values()))
    np.testing.assert_allclose(result.log_strength, truth, atol=0.15)
    assert abs(result.log_strength.sum()) < 1e-9
    assert ((result.ci_low <= truth) & (truth <= result.ci_high)).all()
    assert (result.ci_high - result.ci_low < 0.5).all()
    assert [result.methods[i] for i in result.ranking()] == ["dktnet", "phdnet", "reinhard",
                                                            "composite"]  # fmt: skip


def test_a_method_that_always_wins_stays_finite() -> None:
    wins = np.array([[0.0, 20.0], [0.0, 0.0]])
    theta = fit_log_strengths(wins)
    assert np.isfinite(theta).all() and theta[0] > 1.5
    assert theta.sum() == pytest.approx(0.0, abs=1e-12)


def test_unjudged_method_sits_at_the_centre() -> None:
    wins = np.zeros((3, 3))
    wins[0, 1], wins[1, 0] = 30, 10
    theta = fit_log_strengths(wins)
    assert theta[0] > theta[2] > theta[1]


def test_ties_count_half_and_empty_winners_are_skipped() -> None:
    rows = [
        {"item": "x", "method_a": "a", "method_b": "b", "winner": "tie"},
        {"item": "x", "method_a": "a", "method_b": "b", "winner": "a"},
        {"item": "y", "method_a": "b", "method_b": "a", "winner": " "},
    ]
    judgments = parse_judgments(rows)
    assert len(judgments) == 2 and judgments.ties == 1 and judgments.skipped == 1
    np.testing.assert_allclose(win_matrix(judgments), [[0, 1.5], [0.5, 0]])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"item": "x", "method_a": "a", "method_b": "b", "winner": "c"}, "row 2: winner 'c'"),
        ({"item": "x", "method_a": "a", "method_b": "a", "winner": "a"}, "row 2: .* both 'a'"),
        ({"item": "x", "method_a": "", "method_b": "b", "winner": "b"}, "row 2: method_a"),
    ],
)
def test_bad_rows_are_named(row: dict[str, str], message: str) -> None:
    with pytest.raises(JudgmentError, match=message):
        parse_judgments([row])


def test_no_judged_rows_is_an_error() -> None:
    with pytest.raises(JudgmentError, match="no judged rows"):
        parse_judgments([{"item": "x", "method_a": "a", "method_b": "b", "winner": ""}])


def test_bootstrap_by_judgments_and_to_dict() -> None:
    judgments = parse_judgments(simulate(n_items=3, per_item=40, seed=2))
    result = fit(judgments, bootstrap_samples=50, by="judgments", seed=0)
    data = result.to_dict()
    assert data["judgments"] == 120 and data["bootstrap"]["by"] == "judgments"
    first = data["methods"][0]
    assert first["ci_low"] <= first["log_strength"] <= first["ci_high"]
    with pytest.raises(ValueError, match="bootstrap by"):
        fit(judgments, bootstrap_samples=5, by="nonsense")


def test_no_bootstrap_gives_no_intervals() -> None:
    result = fit(parse_judgments(simulate(5, 4, seed=3)), bootstrap_samples=0)
    assert np.isnan(result.ci_low).all()
    assert result.to_dict()["methods"][0]["ci_low"] is None
