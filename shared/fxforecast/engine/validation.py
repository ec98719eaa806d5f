"""The validation set: weekly origins before the as-of date whose whole path is realised by it,
their actual paths, and the rules every user of them shares (score, path tail, overlap).

For a run as of date `o` and horizon H, the origins are weekly dates whose H-day path ends by
`o`, each far enough into the data for its refit anchor to have MIN_FIT_OBS closes.
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import DataError
from ..horizons import HorizonParams, refit_anchor, refit_anchors
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

    # Per-path losses computed before, by (id of the path, the actual's bytes), each with its
    # path (kept alive so that its id is not reused). A backtest block's origins share one dict
    # (FitCache.losses): the next origin scores 399 of the same 400 paths (the same objects,
    # from the FitCache) against the same actuals.
    known_losses: dict = field(default_factory=dict, compare=False, repr=False)
    _anchors: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def refit_anchors(self, weeks: int) -> list[pd.Timestamp]:
        """Each origin's refit_anchor at `weeks`: computed once per set, every member asks."""
        if weeks not in self._anchors:
            self._anchors[weeks] = list(refit_anchors(pd.DatetimeIndex(self.origins), weeks))
        return self._anchors[weeks]

    def score(self, paths: list[np.ndarray]) -> float:
        """Mean pinball loss in CLP of one member's paths over every origin: the mean over the
        origins of each path's pinball loss (over its steps and LEVELS) against its actual."""
        return float(np.mean(self.path_losses(paths)))

    def path_losses(self, paths: list[np.ndarray]) -> np.ndarray:
        """Per origin, its path's mean pinball loss over steps and LEVELS; those not known
        computed for every row at once."""
        known = self.known_losses
        keys = [(id(p), a) for p, a in zip(paths, self.actual_bytes, strict=True)]
        new = [k for k, key in enumerate(keys) if key not in known]
        if new:
            rows = np.concatenate([paths[k] for k in new])
            actual = np.concatenate([self.actuals[k] for k in new])
            losses = segment_means(pinball(rows, actual), np.array([self.steps[k] for k in new]))
            for k, loss in zip(new, losses, strict=True):
                known[keys[k]] = (loss, paths[k])
        return np.array([known[key][0] for key in keys])

    # What the combiners and calibrations compare paths with, made once per validation set (a
    # backtest origin asks for them a dozen times).
    @cached_property
    def actual_bytes(self) -> list[bytes]:
        """Each actual path's values as bytes: what a known loss is looked up by."""
        return [a.tobytes() for a in self.actuals]

    @cached_property
    def actual_tails(self) -> np.ndarray:
        """Every actual path's tail, stacked: tails(actuals)."""
        return self.tails(self.actuals)

    @cached_property
    def last_close_rows(self) -> np.ndarray:
        """Each origin's last close on each row of its tail: per_tail_row(last_closes)."""
        return self.per_tail_row(self.last_closes)

    @cached_property
    def tail_starts(self) -> list[int]:
        """Where each origin's path tail starts: its second half (from row steps // 2, so an odd
        path's middle row is in it) is where the target lies, what drift and calibration are
        judged on."""
        return [steps // 2 for steps in self.steps]

    @cached_property
    def tail_lengths(self) -> np.ndarray:
        """Rows in each origin's path tail."""
        return np.array(self.steps) - self.tail_starts

    def tails(self, paths: list[np.ndarray]) -> np.ndarray:
        """Every path's tail, stacked in origin order: what is judged on the validation set,
        row by row in one array instead of one small array per origin."""
        return np.concatenate(
            [path[start:] for path, start in zip(paths, self.tail_starts, strict=True)]
        )

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


def validation_set(
    data: MarketData, params: HorizonParams, known_losses: dict | None = None
) -> Validation:
    """Weekly origins in time order whose H-day path ends by the as-of; too few is an error.
    `known_losses`: Validation.known_losses shared with other origins' sets."""
    # Positions in the sorted index by binary search, every candidate week's at once: up to 400
    # origins per run, and a backtest builds a set for each of its origins.
    index = data.frame.index
    filled = data.filled_close().to_numpy()
    closes = data.closes()
    latest = data.as_of - pd.Timedelta(days=params.days)
    weeks = latest - pd.to_timedelta(np.arange(params.validation_origins) * 7, unit="D")
    positions = index.searchsorted(weeks, side="right") - 1
    candidates = index[np.maximum(positions, 0)]
    anchors = refit_anchors(candidates, params.refit_weeks)
    fit_rows = closes.index.searchsorted(anchors, side="right")
    starts = index.searchsorted(candidates, side="right")
    ends = index.searchsorted(candidates + pd.Timedelta(days=params.days), side="right")
    # Newest first, the candidates up to the first one without MIN_FIT_OBS closes up to its
    # refit date (every older one has fewer).
    usable = (positions >= 0) & (fit_rows >= MIN_FIT_OBS)
    count = len(usable) if usable.all() else int(np.argmin(usable))
    # A gap in the data can leave an origin without a realised path (or repeat the origin of
    # the week before, which the positions, non-increasing, show next to each other): it cannot
    # score anything.
    missing = np.concatenate([[0], np.cumsum(~np.isfinite(filled))])  # non-finite before each
    realised = (ends > starts) & (missing[ends] == missing[starts])
    repeated = np.concatenate([[False], positions[1:] == positions[:-1]])
    kept = np.flatnonzero((realised & ~repeated)[:count])[::-1]  # in time order
    skipped = count - len(kept)
    origins = list(candidates[kept])
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
    return Validation(
        params.days,
        origins,
        (ends - starts)[kept].tolist(),
        [filled[starts[k] : ends[k]] for k in kept],
        filled[positions[kept]].tolist(),
        {} if known_losses is None else known_losses,
    )
