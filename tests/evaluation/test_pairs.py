"""Tests for ``dkt.evaluation.pairs``: the study design is balanced and reproducible."""

from __future__ import annotations

from collections import Counter

import pytest

from dkt.evaluation.pairs import balanced_pairs

METHODS = ["composite", "reinhard", "phdnet", "dktnet"]


def _counts(design):
    pairs = Counter(frozenset((c.method_a, c.method_b)) for c in design)
    sides = Counter((c.method_a, c.method_b) for c in design)
    return pairs, sides


@pytest.mark.parametrize(("n_items", "per_item"), [(7, 4), (10, 6), (5, 9), (3, 1)])
def test_pairs_and_sides_are_balanced(n_items: int, per_item: int) -> None:
    items = [f"c{i}" for i in range(n_items)]
    design = balanced_pairs(METHODS, items, per_item, seed=3)
    assert len(design) == n_items * per_item
    pairs, sides = _counts(design)
    if n_items * per_item >= 6:
        assert len(pairs) == 6
    assert max(pairs.values()) - min(pairs.values()) <= 1
    for a, b in (tuple(p) for p in pairs):
        assert abs(sides[(a, b)] - sides[(b, a)]) <= 1
    per_item_count = Counter(c.item for c in design)
    assert set(per_item_count.values()) == {per_item}
    assert sorted(c.trial for c in design) == list(range(1, len(design) + 1))


def test_items_get_distinct_pairs_when_possible() -> None:
    design = balanced_pairs(METHODS, ["a", "b", "c"], 6, seed=0)
    for item in "abc":
        shown = [frozenset((c.method_a, c.method_b)) for c in design if c.item == item]
        assert len(set(shown)) == 6


def test_same_seed_same_design_other_seed_other_design() -> None:
    items = [f"c{i}" for i in range(12)]
    assert balanced_pairs(METHODS, items, 3, seed=5) == balanced_pairs(METHODS, items, 3, seed=5)
    assert balanced_pairs(METHODS, items, 3, seed=5) != balanced_pairs(METHODS, items, 3, seed=6)


def test_presentation_order_is_shuffled() -> None:
    items = [f"c{i}" for i in range(20)]
    design = balanced_pairs(METHODS, items, 3, seed=1)
    order = [c.item for c in design]
    assert order != sorted(order, key=items.index)


@pytest.mark.parametrize(
    ("methods", "items", "per_item", "message"),
    [
        (["a"], ["x"], 1, "at least 2 methods"),
        (["a", "a"], ["x"], 1, "distinct"),
        (["a", "b"], [], 1, "no items"),
        (["a", "b"], ["x", "x"], 1, "items must be distinct"),
        (["a", "b"], ["x"], 0, "per_item"),
    ],
)
def test_invalid_designs(methods, items, per_item, message) -> None:
    with pytest.raises(ValueError, match=message):
        balanced_pairs(methods, items, per_item)
