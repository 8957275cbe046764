"""Bradley-Terry strengths from pairwise user-study judgments.

A user study shows a composite harmonized by two methods and asks which looks better. The
Bradley-Terry model says method ``i`` beats ``j`` with probability
``sigmoid(theta_i - theta_j)``; the fitted log-strengths ``theta`` put every method on one
scale even though each judgment compares only two. Papers report them as BT scores.

Fitting is maximum a posteriori with a weak Gaussian prior on ``theta``: without it a
method that won every comparison would have an infinite strength, and a method never
compared would be undefined; with it both stay finite and, with enough judgments, the
prior's pull is negligible. Log-strengths are centred (mean 0), the scale's only free
choice. Uncertainty comes from a bootstrap over study items (composites), because
judgments about one image are not independent of each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import expit, log_expit

from dkt.errors import JudgmentError

__all__ = [
    "REQUIRED_COLUMNS",
    "BTResult",
    "JudgmentError",
    "Judgments",
    "bootstrap",
    "fit",
    "fit_log_strengths",
    "parse_judgments",
    "win_matrix",
]

REQUIRED_COLUMNS = ("item", "method_a", "method_b", "winner")
TIE_WORDS = frozenset({"tie", "draw", "="})
#: Prior variance of each log-strength: wide (a method 3 sd out wins 99.99% of the time) so
#: it only matters where the data say nothing or say "always".
PRIOR_VARIANCE = 10.0


@dataclass(frozen=True)
class Judgments:
    """Parsed judgments: who met whom on which item, and ``score_a`` (1 win, 0.5 tie, 0 loss).

    Indices point into ``methods`` and ``items``; ``skipped`` counts rows with an empty
    winner (not judged yet), which are left out rather than guessed.
    """

    methods: tuple[str, ...]
    items: tuple[str, ...]
    item: np.ndarray
    a: np.ndarray
    b: np.ndarray
    score_a: np.ndarray
    skipped: int = 0

    @property
    def ties(self) -> int:
        return int(np.sum(self.score_a == 0.5))

    def __len__(self) -> int:
        return len(self.a)


def parse_judgments(
    rows: Iterable[Mapping[str, str | None]],
    *,
    first_line: int = 2,
    lines: Sequence[int] | None = None,
) -> Judgments:
    """Validate rows with ``item, method_a, method_b, winner``.

    ``winner`` is ``method_a``'s or ``method_b``'s name, ``tie`` (also ``draw`` or ``=``),
    which scores half a win to each (the usual Bradley-Terry treatment of ties), or empty
    for a pair not judged yet (skipped and counted). Anything else is an error naming the
    row; ``first_line`` is the line number of the first row (2 after a CSV header), and
    ``lines`` gives each row's own line instead, for rows picked out of a file (catch trials
    and dropped raters left out) whose errors must still point at the right line.
    """
    methods: dict[str, int] = {}
    items: dict[str, int] = {}
    item_idx, a_idx, b_idx, score = [], [], [], []
    skipped = 0
    for offset, row in enumerate(rows):
        line = lines[offset] if lines is not None else first_line + offset
        item, ma, mb, winner = ((row.get(c) or "").strip() for c in REQUIRED_COLUMNS)
        if not ma or not mb:
            raise JudgmentError(f"row {line}: method_a and method_b must both be given")
        if ma == mb:
            raise JudgmentError(f"row {line}: method_a and method_b are both {ma!r}")
        if not winner:
            skipped += 1
            continue
        if winner == ma:
            s = 1.0
        elif winner == mb:
            s = 0.0
        elif winner.lower() in TIE_WORDS:
            s = 0.5
        else:
            raise JudgmentError(
                f"row {line}: winner {winner!r} is neither {ma!r} nor {mb!r} (nor 'tie')"
            )
        item_idx.append(items.setdefault(item, len(items)))
        a_idx.append(methods.setdefault(ma, len(methods)))
        b_idx.append(methods.setdefault(mb, len(methods)))
        score.append(s)
    if not score:
        raise JudgmentError("no judged rows (every winner is empty)" if skipped else "no rows")
    return Judgments(
        methods=tuple(methods),
        items=tuple(items),
        item=np.array(item_idx, dtype=np.int64),
        a=np.array(a_idx, dtype=np.int64),
        b=np.array(b_idx, dtype=np.int64),
        score_a=np.array(score, dtype=np.float64),
        skipped=skipped,
    )


def win_matrix(judgments: Judgments, weights: np.ndarray | None = None) -> np.ndarray:
    """(k, k) matrix: ``W[i, j]`` = wins (ties count half) of method i over method j.

    ``weights`` (one per judgment) lets a bootstrap count a resampled judgment several times.
    """
    k = len(judgments.methods)
    w = np.ones(len(judgments)) if weights is None else np.asarray(weights, dtype=np.float64)
    wins = np.zeros((k, k))
    np.add.at(wins, (judgments.a, judgments.b), w * judgments.score_a)
    np.add.at(wins, (judgments.b, judgments.a), w * (1.0 - judgments.score_a))
    return wins


def fit_log_strengths(wins: np.ndarray, prior_variance: float = PRIOR_VARIANCE) -> np.ndarray:
    """MAP log-strengths (centred) for a win matrix, by Newton's method with exact Hessian.

    The negative log-posterior is strictly convex (the prior adds ``I / variance`` to the
    Hessian), so the trust-region Newton solve converges to the unique optimum in a few
    steps regardless of the starting point.
    """
    wins = np.asarray(wins, dtype=np.float64)
    k = len(wins)
    games = wins + wins.T
    inv_var = 1.0 / prior_variance

    def objective(theta: np.ndarray) -> float:
        diff = theta[:, None] - theta[None, :]
        return float(-(wins * log_expit(diff)).sum() + 0.5 * inv_var * theta @ theta)

    def gradient(theta: np.ndarray) -> np.ndarray:
        p = expit(theta[:, None] - theta[None, :])
        return -(wins.sum(axis=1) - (games * p).sum(axis=1)) + inv_var * theta

    def hessian(theta: np.ndarray) -> np.ndarray:
        p = expit(theta[:, None] - theta[None, :])
        c = games * p * (1.0 - p)
        h = -c
        np.fill_diagonal(h, c.sum(axis=1) - np.diag(c))
        return h + inv_var * np.eye(k)

    result = optimize.minimize(
        objective,
        np.zeros(k),
        jac=gradient,
        hess=hessian,
        method="trust-exact",
        options={"gtol": 1e-9},
    )
    theta = result.x
    return theta - theta.mean()


def bootstrap(
    judgments: Judgments,
    *,
    samples: int = 1000,
    seed: int = 0,
    by: str = "items",
    prior_variance: float = PRIOR_VARIANCE,
) -> np.ndarray:
    """(samples, k) centred log-strengths refitted on resampled data.

    ``by="items"`` resamples whole study items with replacement (all judgments of an item
    go together), ``by="judgments"`` resamples single judgments: use it when every item
    was judged only once or twice, where an item bootstrap has too few units.
    """
    if by not in ("items", "judgments"):
        raise ValueError(f"bootstrap by 'items' or 'judgments', not {by!r}")
    rng = np.random.default_rng(seed)
    units = judgments.item if by == "items" else np.arange(len(judgments))
    n_units = len(judgments.items) if by == "items" else len(judgments)
    out = np.empty((samples, len(judgments.methods)))
    for s in range(samples):
        counts = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
        weights = counts[units].astype(np.float64)
        out[s] = fit_log_strengths(win_matrix(judgments, weights), prior_variance)
    return out


@dataclass(frozen=True)
class BTResult:
    """Everything ``dkt study fit`` reports, by method (same order everywhere)."""

    methods: tuple[str, ...]
    log_strength: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    wins: np.ndarray
    comparisons: np.ndarray
    pairwise_wins: np.ndarray
    judgments: int
    ties: int
    skipped: int
    items: int
    bootstrap_samples: int
    bootstrap_by: str
    confidence: float
    prior_variance: float
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def win_rate(self) -> np.ndarray:
        return np.divide(
            self.wins,
            self.comparisons,
            out=np.full(len(self.wins), np.nan),
            where=self.comparisons > 0,
        )

    def ranking(self) -> list[int]:
        """Method indices from strongest to weakest."""
        return [int(i) for i in np.argsort(-self.log_strength, kind="stable")]

    def to_dict(self) -> dict[str, object]:
        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 4)

        return {
            "scale": "centred natural-log Bradley-Terry strengths: "
            "P(i beats j) = 1 / (1 + exp(-(s_i - s_j)))",
            "judgments": self.judgments,
            "ties": self.ties,
            "skipped_unjudged": self.skipped,
            "items": self.items,
            "bootstrap": {
                "samples": self.bootstrap_samples,
                "by": self.bootstrap_by,
                "confidence": self.confidence,
            },
            "prior_variance": self.prior_variance,
            "methods": [
                {
                    "method": self.methods[i],
                    "log_strength": num(self.log_strength[i]),
                    "ci_low": num(self.ci_low[i]),
                    "ci_high": num(self.ci_high[i]),
                    "wins": num(self.wins[i]),
                    "comparisons": int(self.comparisons[i]),
                    "win_rate": num(self.win_rate[i]),
                }
                for i in self.ranking()
            ],
            "pairwise_wins": {
                self.methods[i]: {
                    self.methods[j]: num(self.pairwise_wins[i, j])
                    for j in range(len(self.methods))
                    if j != i
                }
                for i in range(len(self.methods))
            },
        }


def fit(
    judgments: Judgments,
    *,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    by: str = "items",
    confidence: float = 0.95,
    prior_variance: float = PRIOR_VARIANCE,
    order: Sequence[str] | None = None,
) -> BTResult:
    """Fit log-strengths, percentile bootstrap intervals and win rates.

    ``order`` puts known methods first (e.g. the order they were listed in the study).
    """
    if order:
        known = [m for m in order if m in judgments.methods]
        perm = [judgments.methods.index(m) for m in known]
        perm += [i for i in range(len(judgments.methods)) if i not in perm]
    else:
        perm = list(range(len(judgments.methods)))
    wins = win_matrix(judgments)[np.ix_(perm, perm)]
    theta = fit_log_strengths(wins, prior_variance)
    if bootstrap_samples > 0:
        boots = bootstrap(
            judgments, samples=bootstrap_samples, seed=seed, by=by, prior_variance=prior_variance
        )[:, perm]
        alpha = (1.0 - confidence) / 2.0
        low, high = np.quantile(boots, [alpha, 1.0 - alpha], axis=0)
    else:
        low = high = np.full(len(theta), np.nan)
    games = wins + wins.T
    return BTResult(
        methods=tuple(judgments.methods[i] for i in perm),
        log_strength=theta,
        ci_low=low,
        ci_high=high,
        wins=wins.sum(axis=1),
        comparisons=games.sum(axis=1).round().astype(np.int64),
        pairwise_wins=wins,
        judgments=len(judgments),
        ties=judgments.ties,
        skipped=judgments.skipped,
        items=len(judgments.items),
        bootstrap_samples=bootstrap_samples,
        bootstrap_by=by,
        confidence=confidence,
        prior_variance=prior_variance,
    )
