"""Combiners: from the members' validation paths, the rule that turns their forecasts into one.

A combiner's `fit(member_paths, validation)` returns a Combination, which knows the weights and
the drift share, `apply`s them to any set of member paths (a validation origin's or the as-of
date's), and reports `info()` for the metrics line. COMBINERS names every combiner a setting can
pick.
"""

from dataclasses import dataclass

import numpy as np

from ..quantiles import LEVELS, MEDIAN
from .validation import Validation

WEIGHT_SHRINK = 0.25  # share of the weight spread evenly over all working members
WEIGHT_POWER = 10  # weights follow validation loss ** -10: members 7% apart differ ~2x
# Candidate shares of the members' combined drift kept in the median. FX is close to a random
# walk: the share is earned on the validation origins, and 0 (no change) wins ties.
DRIFT_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
# A drift is kept only if it beat no change by this many standard errors (5%, one-sided).
DRIFT_EVIDENCE_Z = 1.645


def earn_weights(scores: dict[str, float]) -> dict[str, float]:
    """Inverse validation loss to a power, shrunk toward equal weights; sums to 1."""
    inverse = {name: 1.0 / max(score, 1e-9) ** WEIGHT_POWER for name, score in scores.items()}
    total = sum(inverse.values())
    even = 1.0 / len(scores)
    return {
        name: (1 - WEIGHT_SHRINK) * value / total + WEIGHT_SHRINK * even
        for name, value in inverse.items()
    }


def monotone(rows: np.ndarray) -> np.ndarray:
    """The rows' values sorted. A weighted mean of sorted paths is already sorted (rounding
    is monotone), which a check confirms at a fraction of a sort's cost; the values are the
    same either way."""
    return rows if np.all(rows[:, 1:] >= rows[:, :-1]) else np.sort(rows, axis=1)


def quantile_average(paths: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted mean of each level, re-sorted to stay monotone."""
    return monotone(sum(weights[name] * path for name, path in paths.items()))


def keep_drift(path: np.ndarray, last: float, share: float) -> np.ndarray:
    """Shift the whole distribution in log space so the median keeps `share` of its drift
    away from the last close; the shape of the quantiles is unchanged."""
    shift = (1 - share) * (np.log(path[:, MEDIAN]) - np.log(last))
    return path * np.exp(-shift)[:, None]


def _tail_errors(tails: np.ndarray, validation: Validation, share: float) -> np.ndarray:
    """Per validation path, the median's mean absolute error over its tail (the tails stacked)
    with `share` of its drift kept."""
    kept = keep_drift(tails, validation.last_close_rows, share)
    return validation.tail_means(np.abs(kept[:, MEDIAN] - validation.actual_tails))


def choose_drift_share(tails: np.ndarray, validation: Validation) -> float:
    """The share of drift kept in the median: the one with the lowest absolute error over the
    tail of the validation paths, among those that beat no change (share 0) significantly
    (one-sided 5%, overlap-adjusted standard error); otherwise no change."""

    no_change = _tail_errors(tails, validation, 0.0)
    n_eff = validation.independent_paths()
    best_share, best_gain = 0.0, 0.0
    for share in DRIFT_SHARES[1:]:
        diff = _tail_errors(tails, validation, share) - no_change
        gain = -diff.mean()
        if gain > DRIFT_EVIDENCE_Z * diff.std(ddof=1) / np.sqrt(n_eff) and gain > best_gain:
            best_share, best_gain = share, gain
    return best_share


@dataclass(frozen=True)
class Combination:
    weights: dict[str, float]  # by member name, summing to 1
    drift_share: float

    def apply(self, paths: dict[str, np.ndarray], last_close) -> np.ndarray:
        """One path from the members' paths at one origin whose last close is `last_close` (or
        rows of several origins, with a last close per row)."""
        return keep_drift(quantile_average(paths, self.weights), last_close, self.drift_share)

    def info(self) -> dict:
        return {"drift_share": self.drift_share}


class InverseLossCombiner:
    """Weights from inverse pinball loss ** WEIGHT_POWER shrunk toward equal, quantile
    averaging, and a drift share kept only on significant evidence."""

    def fit(self, member_paths: dict[str, list[np.ndarray]], validation: Validation) -> Combination:
        weights = earn_weights(
            {name: validation.score(paths) for name, paths in member_paths.items()}
        )
        tails = {name: validation.tails(paths) for name, paths in member_paths.items()}
        return Combination(
            weights, choose_drift_share(quantile_average(tails, weights), validation)
        )


# Ensemble selection: rounds of greedy picks (with replacement); a weight moves in 1/25 steps.
SELECTION_ROUNDS = 25
# Up to this horizon the selected members' drift is kept whole (on 2017-2024 it lowered the
# median's error at 7, 15 and 30 days); beyond it, the drift is shrunk by its own evidence.
FULL_DRIFT_MAX_DAYS = 30


def select_members(stacked: dict[str, np.ndarray], validation: Validation) -> dict:
    """Caruana et al. (2004) ensemble selection, as AutoGluon-TimeSeries builds its ensembles:
    SELECTION_ROUNDS times, add the member (with replacement) whose inclusion most lowers the
    pinball loss of the quantile average over the validation tails (`stacked`: each member's,
    Validation.tails); the weights are how often each member was picked. A clearly better
    member ends with most of the weight."""
    names = list(stacked)
    loss = _PinballOfAverage(validation.actual_tails, stacked[names[0]].shape)
    picks = dict.fromkeys(names, 0)
    total = np.zeros_like(stacked[names[0]])
    for k in range(SELECTION_ROUNDS):
        losses = {n: loss(total, stacked[n], k + 1) for n in names}
        best = min(names, key=lambda n: losses[n])  # the first listed wins a tie
        picks[best] += 1
        total = total + stacked[best]
    return {n: count / SELECTION_ROUNDS for n, count in picks.items()}


class _PinballOfAverage:
    """The mean pinball loss of monotone((total + candidate) / count) against `actual`: the same
    operations as pinball(), in buffers allocated once (the selection evaluates 125 candidates on
    up to 13,000 rows per fit, which spent most of its time allocating)."""

    def __init__(self, actual: np.ndarray, shape: tuple):
        self.actual = actual[:, None]
        self.levels = np.asarray(LEVELS)[None, :]
        self.below = self.levels - 1
        self.average, self.diff, self.other = (np.empty(shape) for _ in range(3))

    def __call__(self, total: np.ndarray, candidate: np.ndarray, count: int) -> float:
        average = np.divide(np.add(total, candidate, out=self.average), count, out=self.average)
        average = monotone(average)
        diff = np.subtract(self.actual, average, out=self.diff)
        other = np.multiply(self.below, diff, out=self.other)
        return float(np.mean(np.maximum(np.multiply(self.levels, diff, out=diff), other, out=diff)))


def evidence_share(tails: np.ndarray, validation: Validation) -> float:
    """Positive-part James-Stein shrinkage of the drift toward no change: 1 - 1/z**2, z the
    drift's gain in tail absolute error over no change in (overlap-adjusted) standard errors.
    Continuous: weak evidence keeps little drift, strong evidence nearly all."""
    diff = _tail_errors(tails, validation, 1.0) - _tail_errors(tails, validation, 0.0)
    gain = -diff.mean()
    spread = diff.std(ddof=1) / np.sqrt(validation.independent_paths())
    if gain <= 0 or spread <= 0:
        return 0.0
    return float(max(0.0, 1.0 - (spread / gain) ** 2))


class GreedyCombiner:
    """Ensemble selection on pinball loss; the selected members' drift kept whole up to
    FULL_DRIFT_MAX_DAYS, shrunk by its evidence beyond."""

    def fit(self, member_paths: dict[str, list[np.ndarray]], validation: Validation) -> Combination:
        tails = {name: validation.tails(paths) for name, paths in member_paths.items()}
        weights = select_members(tails, validation)
        if validation.days <= FULL_DRIFT_MAX_DAYS:
            return Combination(weights, 1.0)
        return Combination(weights, evidence_share(quantile_average(tails, weights), validation))


COMBINERS = {"greedy": GreedyCombiner, "inverse_loss": InverseLossCombiner}
