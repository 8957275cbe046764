"""Catch trials: checks mixed into a user study that tell attentive raters from the rest.

A rater clicking at random, or always on the same side, still produces judgments that look
like data and pull every Bradley-Terry score towards zero. Two kinds of check have an
answer known in advance:

* ``composite``: the unharmonized composite (``method_a``, named :data:`COMPOSITE`) against
  a method's result. The object pasted as-is is the obvious failure, so picking it -- or
  "can't tell" -- fails the check.
* ``repeat``: a trial shown again later with the sides swapped; giving the same answer as
  the first time (the same method, or "can't tell" both times) passes. Its trial id is
  :func:`repeat_id` of the original's, so the pair is found without guessing.

Catch rows never enter the fit; each rater's catch accuracy decides whether their other
judgments do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dkt.evaluation.bradley_terry import TIE_WORDS

__all__ = [
    "CATCH_COMPOSITE",
    "CATCH_REPEAT",
    "COMPOSITE",
    "CatchScreen",
    "RaterCatches",
    "is_catch",
    "repeat_id",
    "repeated_trial",
    "score_catches",
    "screen_raters",
]

CATCH_COMPOSITE = "composite"
CATCH_REPEAT = "repeat"
#: The name a composite catch gives the unharmonized image (its folder is ``composite/``).
COMPOSITE = "composite"
_REPEAT_PREFIX = "r"


def repeat_id(trial: str) -> str:
    """The trial id of the repeat of ``trial``."""
    return f"{_REPEAT_PREFIX}{trial}"


def repeated_trial(trial: str) -> str | None:
    """The original trial a repeat's id points to (``None`` for an id that is no repeat's)."""
    return trial[len(_REPEAT_PREFIX) :] if trial.startswith(_REPEAT_PREFIX) else None


def _get(row: Mapping[str, str | None], column: str) -> str:
    return (row.get(column) or "").strip()


def is_catch(row: Mapping[str, str | None]) -> bool:
    """Whether a judgments row is a catch trial (a design file has no catch column: never)."""
    return bool(_get(row, "catch"))


def _answer(winner: str) -> str:
    return "tie" if winner.lower() in TIE_WORDS else winner


@dataclass
class RaterCatches:
    """One rater's catch results; ``unscored`` counts checks with nothing to compare to
    (a repeat whose first showing is not in the file, an unknown kind of check)."""

    rater: str
    judgments: int = 0
    composite_passed: int = 0
    composite_total: int = 0
    repeat_passed: int = 0
    repeat_total: int = 0
    unscored: int = 0

    @property
    def passed(self) -> int:
        return self.composite_passed + self.repeat_passed

    @property
    def total(self) -> int:
        return self.composite_total + self.repeat_total

    @property
    def accuracy(self) -> float | None:
        """Share of scored catch trials passed; ``None`` when none could be scored."""
        return self.passed / self.total if self.total else None

    def to_dict(self) -> dict[str, object]:
        accuracy = self.accuracy
        return {
            "rater": self.rater,
            "judgments": self.judgments,
            "catch_trials": self.total,
            "catch_passed": self.passed,
            "catch_accuracy": None if accuracy is None else round(accuracy, 4),
            "composite": {"passed": self.composite_passed, "total": self.composite_total},
            "repeat": {"passed": self.repeat_passed, "total": self.repeat_total},
            "unscored": self.unscored,
        }


def score_catches(rows: Iterable[Mapping[str, str | None]]) -> dict[str, RaterCatches]:
    """Each rater's catch results, raters in the order they first appear.

    Rows without a ``rater`` column belong to one anonymous rater ``""``; rows with an empty
    winner (not judged) are not counted at all.
    """
    rows = [r for r in rows if _get(r, "winner")]
    raters: dict[str, RaterCatches] = {}
    firsts: dict[tuple[str, str], str] = {}
    for row in rows:
        rater = _get(row, "rater")
        raters.setdefault(rater, RaterCatches(rater))
        if not is_catch(row):
            raters[rater].judgments += 1
            firsts.setdefault((rater, _get(row, "trial")), _answer(_get(row, "winner")))
    for row in rows:
        if not is_catch(row):
            continue
        score = raters[_get(row, "rater")]
        kind, winner = _get(row, "catch"), _answer(_get(row, "winner"))
        if kind == CATCH_COMPOSITE:
            shown = {_get(row, "method_a"), _get(row, "method_b")}
            method = next(iter(shown - {COMPOSITE}), "")
            score.composite_total += 1
            score.composite_passed += winner == method
        elif kind == CATCH_REPEAT:
            original = repeated_trial(_get(row, "trial"))
            first = firsts.get((score.rater, original)) if original is not None else None
            if first is None:
                score.unscored += 1
                continue
            score.repeat_total += 1
            score.repeat_passed += winner == first
        else:
            score.unscored += 1
    return raters


@dataclass
class CatchScreen:
    """Which raters' judgments go into the fit, and why the others do not.

    ``kept_rows`` are the non-catch rows of the kept raters (the fit's input) and
    ``kept_lines`` their line numbers in the file. ``unchecked`` raters had no scorable catch
    trial: they are kept, since nothing speaks against them.
    """

    raters: list[RaterCatches]
    min_catch: float | None
    dropped: tuple[str, ...]
    unchecked: tuple[str, ...]
    catch_rows: int
    kept_rows: list[dict[str, str | None]] = field(repr=False)
    kept_lines: list[int] = field(repr=False, default_factory=list)

    @property
    def has_catches(self) -> bool:
        return self.catch_rows > 0

    def to_dict(self) -> dict[str, object]:
        return {
            "catch_trials": self.catch_rows,
            "min_catch": self.min_catch,
            "dropped_raters": list(self.dropped),
            "unchecked_raters": list(self.unchecked),
            "raters": [{**r.to_dict(), "dropped": r.rater in self.dropped} for r in self.raters],
        }


def screen_raters(
    rows: Iterable[Mapping[str, str | None]],
    min_catch: float | None = None,
    *,
    first_line: int = 2,
) -> CatchScreen:
    """Score catch trials and keep the raters whose catch accuracy is at least ``min_catch``.

    With ``min_catch=None`` every rater is kept; catch rows are left out of ``kept_rows``
    either way, because their pairs (the composite, a repeated trial) are not part of the
    design the fit assumes.
    """
    if min_catch is not None and not 0.0 <= min_catch <= 1.0:
        raise ValueError(f"min_catch must be between 0 and 1, got {min_catch}")
    # a list: it is read three times, and ``rows`` may be a one-pass reader
    copied: list[dict[str, str | None]] = [dict(r) for r in rows]
    scores = score_catches(copied)
    unchecked = tuple(r.rater for r in scores.values() if r.accuracy is None)
    dropped = tuple(
        r.rater
        for r in scores.values()
        if min_catch is not None and r.accuracy is not None and r.accuracy < min_catch
    )
    kept = [
        (first_line + i, r)
        for i, r in enumerate(copied)
        if not is_catch(r) and _get(r, "rater") not in dropped
    ]
    return CatchScreen(
        raters=list(scores.values()),
        min_catch=min_catch,
        dropped=dropped,
        unchecked=unchecked,
        catch_rows=sum(is_catch(r) for r in copied),
        kept_rows=[r for _, r in kept],
        kept_lines=[line for line, _ in kept],
    )
