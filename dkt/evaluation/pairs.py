"""A balanced, randomized design of pairwise comparisons for a user study.

Bradley-Terry strengths are best determined when every pair of methods is compared about
equally often, and a left/right position bias (people favour one side) cancels only when
each method is shown on each side equally often. The design below guarantees both up to one
comparison, gives each item distinct pairs where it can, and shuffles the presentation
order, all from one seed so the study can be regenerated exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

__all__ = ["Comparison", "balanced_pairs"]


@dataclass(frozen=True)
class Comparison:
    """One trial: ``item`` shown with ``method_a`` on the left and ``method_b`` on the right."""

    trial: int
    item: str
    method_a: str
    method_b: str


def balanced_pairs(
    methods: Sequence[str], items: Sequence[str], per_item: int, seed: int = 0
) -> list[Comparison]:
    """``per_item`` comparisons for every item, balanced over method pairs and sides.

    * Across the whole study every unordered pair of methods is used equally often (counts
      differ by at most 1): each item takes the pairs used least so far, ties broken at
      random. An item gets ``per_item`` distinct pairs when there are that many, and whole
      rounds of all pairs plus the least-used ones otherwise.
    * For every pair, which method is on the left alternates from a random start, so each
      side is used equally often (up to 1).
    * Trials are numbered in a random presentation order, so one item's comparisons are not
      shown back to back.
    """
    methods = list(methods)
    if len(methods) < 2:
        raise ValueError(f"a comparison needs at least 2 methods, got {len(methods)}")
    if len(set(methods)) != len(methods):
        raise ValueError("methods must be distinct")
    if not items:
        raise ValueError("no items to compare on")
    if len(set(items)) != len(items):
        raise ValueError("items must be distinct")
    if per_item < 1:
        raise ValueError(f"per_item must be at least 1, got {per_item}")
    rng = np.random.default_rng(seed)
    pairs = list(combinations(range(len(methods)), 2))
    counts = np.zeros(len(pairs), dtype=np.int64)
    chosen: list[tuple[str, int]] = []
    for item in items:
        need = per_item
        while need >= len(pairs):
            chosen += [(item, p) for p in rng.permutation(len(pairs))]
            counts += 1
            need -= len(pairs)
        if need:
            order = np.lexsort((rng.random(len(pairs)), counts))[:need]
            counts[order] += 1
            chosen += [(item, int(p)) for p in order]
    presentation = rng.permutation(len(chosen))
    flip = rng.random(len(pairs)) < 0.5  # each pair's first orientation
    shown = np.zeros(len(pairs), dtype=np.int64)
    out = []
    for trial, index in enumerate(presentation, start=1):
        item, p = chosen[index]
        i, j = pairs[p]
        if (shown[p] % 2 == 1) != flip[p]:
            i, j = j, i
        shown[p] += 1
        out.append(Comparison(trial, item, methods[i], methods[j]))
    return out
