"""The validation set: weekly origins before the as-of date whose whole path is realised by it,
their actual paths, and the rules every user of them shares (score, path tail, overlap).

For a run as of date `o` and horizon H, the origins are weekly dates whose H-day path ends by
`o`, each far enough into the data for its refit anchor to have MIN_FIT_OBS closes.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import DataError
from ..horizons import HorizonParams, refit_anchor
from ..marketdata.clean import MarketData
from ..quantiles import pinball

MIN_FIT_OBS = 250  # a validation origin needs this many closes before its refit anchor
MIN_VALIDATION_ORIGINS = 8


@dataclass(frozen=True)
class Validation:
    days: int
    origins: list[pd.Timestamp]
    steps: list[int]
    actuals: list[np.ndarray]
    last_closes: list[float]

    def score(self, paths: list[np.ndarray]) -> float:
        """Mean pinball loss in CLP of one member's paths over every origin: the mean over the
        origins of pinball_loss(path, actual), computed for every row at once."""
        rows = np.concatenate([p for p, _ in zip(paths, self.actuals, strict=True)])
        losses = pinball(rows, self.actual_rows)
        return float(np.mean(segment_means(losses, np.array(self.steps))))

    # What the combiners and calibrations compare paths with, stacked once per validation set
    # (a backtest origin asks for them a dozen times).
    @cached_property
    def actual_rows(self) -> np.ndarray:
        """Every actual path, stacked in origin order."""
        return np.concatenate(self.actuals)

    @cached_property
    def actual_tails(self) -> np.ndarray:
        """Every actual path's tail, stacked: tails(actuals)."""
        return self.tails(self.actuals)

    @cached_property
    def last_close_rows(self) -> np.ndarray:
        """Each origin's last close on each row of its tail: per_tail_row(last_closes)."""
        return self.per_tail_row(self.last_closes)

    @cached_property
    def tail_lengths(self) -> np.ndarray:
        """Rows in each origin's path tail."""
        return np.array([len(a) - len(a) // 2 for a in self.actuals])

    def tails(self, paths: list[np.ndarray]) -> np.ndarray:
        """Every path's tail, stacked in origin order: what is judged on the validation set,
        row by row in one array instead of one small array per origin."""
        return np.concatenate([tail(p) for p, _ in zip(paths, self.actuals, strict=True)])

    def tail_means(self, values: np.ndarray) -> np.ndarray:
        """Per origin, the mean of `values` (one per row of the stacked tails) over its tail."""
        return segment_means(values, self.tail_lengths)

    def per_tail_row(self, values) -> np.ndarray:
        """One value per origin, repeated on each row of its path's tail."""
        return np.repeat(np.asarray(values), self.tail_lengths)

    def independent_paths(self, origins: float | None = None) -> float:
        """Weekly origins of H-day paths overlap: about n * 7 / H of them are independent, n the
        number of origins (or `origins`, an effective count when they are weighted)."""
        n = len(self.origins) if origins is None else origins
        return max(2.0, n * 7 / max(self.days, 7))


def pinball_loss(quantiles: np.ndarray, actual: np.ndarray) -> float:
    """Mean pinball loss over steps and LEVELS, in CLP."""
    return float(np.mean(pinball(quantiles, actual)))


def segment_means(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The mean of each segment of `values` (consecutive rows, `lengths` of them each, every
    element of those rows), equal to np.mean of each segment alone: the segments of one length
    are averaged together along the last axis of one contiguous array, which sums each the same
    way."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    means = np.empty(len(lengths))
    for length in np.unique(lengths):
        which = np.flatnonzero(lengths == length)
        block = values[starts[which][:, None] + np.arange(length)]  # (segments, length, ...)
        means[which] = block.reshape(len(which), -1).mean(axis=1)
    return means


def tail(path: np.ndarray) -> np.ndarray:
    """The second half of a path (its rows): where the target lies, what drift and calibration
    are judged on."""
    return path[len(path) // 2 :]


def validation_set(data: MarketData, params: HorizonParams) -> Validation:
    """Weekly origins in time order whose H-day path ends by the as-of; too few is an error."""
    # Positions in the sorted index by binary search, every candidate week's at once: up to 400
    # origins per run, and a backtest builds a set for each of its origins.
    index = data.frame.index
    filled = data.filled_close().to_numpy()
    closes = data.closes()
    latest = data.as_of - pd.Timedelta(days=params.days)
    weeks = latest - pd.to_timedelta(np.arange(params.validation_origins) * 7, unit="D")
    positions = index.searchsorted(weeks, side="right") - 1
    candidates = index[np.maximum(positions, 0)]
    anchors = pd.DatetimeIndex([refit_anchor(o, params.refit_weeks) for o in candidates])
    fit_rows = closes.index.searchsorted(anchors, side="right")
    starts = index.searchsorted(candidates, side="right")
    ends = index.searchsorted(candidates + pd.Timedelta(days=params.days), side="right")
    origins, steps, actuals, last_closes = [], [], [], []
    seen = set()
    skipped = 0
    # As Timestamps once: indexing the DatetimeIndex one element at a time costs more than the
    # loop's own work.
    for k, (at, origin) in enumerate(zip(positions, list(candidates), strict=True)):
        if at < 0 or fit_rows[k] < MIN_FIT_OBS:
            break
        actual = filled[starts[k] : ends[k]]
        # A gap in the data can leave an origin without a realised path (or repeat the origin
        # of the week before): it cannot score anything.
        if origin in seen or actual.size == 0 or not np.all(np.isfinite(actual)):
            skipped += 1
            continue
        seen.add(origin)
        origins.append(origin)
        steps.append(len(actual))
        actuals.append(actual)
        last_closes.append(float(filled[at]))
    if len(origins) < MIN_VALIDATION_ORIGINS and skipped:
        raise DataError(
            f"only {len(origins)} validation origins up to {data.as_of.date()} have a realised "
            f"{params.days}-day path ({skipped} fall in gaps of the data), need "
            f"{MIN_VALIDATION_ORIGINS}; fill the missing rows or use a later --as-of"
        )
    if len(origins) < MIN_VALIDATION_ORIGINS:
        # The oldest origin needed, its refit date, and MIN_FIT_OBS closes up to that date.
        oldest = latest - pd.Timedelta(weeks=MIN_VALIDATION_ORIGINS - 1)
        at = index.searchsorted(oldest, side="right") - 1
        anchor = refit_anchor(index[at] if at >= 0 else oldest, params.refit_weeks)
        after = int((closes.index > anchor).sum())
        raise DataError(
            f"history too short for the {params.days}-day horizon: {closes.size} closes up to "
            f"{data.as_of.date()}, need {MIN_FIT_OBS + after} ({MIN_FIT_OBS} up to "
            f"{anchor.date()}, the refit date of the oldest of {MIN_VALIDATION_ORIGINS} "
            f"validation origins, and the {after} after it); use data that starts earlier"
        )
    return Validation(params.days, origins[::-1], steps[::-1], actuals[::-1], last_closes[::-1])
