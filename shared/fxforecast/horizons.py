"""Per-horizon parameters (one table) and the calendar rules for steps and targets."""

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd


@dataclass(frozen=True)
class HorizonParams:
    days: int  # calendar days ahead; the target is the last business day on or before
    lookback: int  # valid daily observations each member is fitted on
    arima_max_p: int
    arima_max_q: int
    var_max_lags: int
    rf_trees: int
    validation_origins: int  # weekly rolling origins used to earn weights and calibrate
    refit_weeks: int  # members are refitted on a fixed grid this many weeks apart
    chronos_context: int  # business days of history given to Chronos-Bolt
    # The width yardstick (engine/calibration.py): overlapping moves over this many closes, their
    # EWMA at this decay against their standard deviation over this many moves.
    yardstick_days: int
    yardstick_decay: float
    yardstick_window: int


# From 15 days on, weekly H-day paths overlap so much that 1.5-3 years of origins hold only
# 8-20 independent ones: too few to tell the members apart, and the combination followed the
# noise. Up to ~7.7 years of origins (as the data allows) let it follow the member that is
# better over the long run. At 7 days the short window did as well and keeps the run fast.
VALIDATION_ORIGINS_LONG = 400

# Daily closes partly reverse within days, so daily volatility overstates how far the rate moves
# over weeks and months: the widths' yardstick is measured on moves of about the horizon's scale,
# weekly at 7-15 days, monthly at 30-90, its EWMA's half-life a few such moves (23 and 69 days)
# and its reference a year of them (three at 90 days: 12 independent monthly moves make a noisy
# reference). Chosen on the 2017-2024 backtest (docs/decisions/width-yardstick.md).
WEEKLY = (5, 0.97, 250)
MONTHLY = (21, 0.99, 250)

# The one table (docs/model-card.md, Horizons): configured_members gives each member its named
# fields from a row.
HORIZONS: dict[int, HorizonParams] = {
    row[0]: HorizonParams(*row)
    for row in (
        # days lookback arima_max_p,_q var_max_lags rf_trees validation_origins refit_weeks
        # chronos_context yardstick_days,_decay,_window
        (7, 750, 2, 2, 5, 100, 78, 13, 180, *WEEKLY),
        (15, 750, 2, 2, 5, 100, VALIDATION_ORIGINS_LONG, 13, 180, *WEEKLY),
        (30, 1000, 2, 2, 5, 100, VALIDATION_ORIGINS_LONG, 26, 90, *MONTHLY),
        (90, 1000, 1, 1, 3, 100, VALIDATION_ORIGINS_LONG, 26, 365, MONTHLY[0], MONTHLY[1], 750),
    )
}

# Fixed anchor for the refit grid, so every run (and every backtest origin) that falls in the
# same grid cell refits on the same date: a Friday far before the data starts.
GRID_EPOCH = pd.Timestamp("2000-01-07")


def horizon_params(days: int) -> HorizonParams:
    try:
        return HORIZONS[days]
    except KeyError:
        raise ValueError(f"unsupported horizon {days}; choose one of {sorted(HORIZONS)}") from None


def future_step_dates(origin: pd.Timestamp, days: int) -> pd.DatetimeIndex:
    """Business days strictly after `origin` up to and including origin + days (Mon-Fri)."""
    return pd.bdate_range(origin + pd.Timedelta(days=1), origin + pd.Timedelta(days=days))


def history_step_dates(
    index: pd.DatetimeIndex, origin: pd.Timestamp, days: int
) -> pd.DatetimeIndex:
    """Rows of `index` strictly after `origin` up to the last row on or before origin + days."""
    return index[history_step_slice(index, origin, days)]


def history_step_slice(index: pd.DatetimeIndex, origin: pd.Timestamp, days: int) -> slice:
    """The positions of history_step_dates in the sorted `index`: two binary searches, not a
    scan of every row (a validation set takes up to 400 of them per run)."""
    end = origin + pd.Timedelta(days=days)
    return slice(index.searchsorted(origin, side="right"), index.searchsorted(end, side="right"))


def refit_anchors(origins: pd.DatetimeIndex, weeks: int) -> pd.DatetimeIndex:
    """Each origin's latest grid date on or before it, computed at once (a validation set's up
    to 400); weeks=0 means refit at the origin itself."""
    if weeks <= 0:
        return origins
    period = pd.Timedelta(weeks=weeks)
    return GRID_EPOCH + ((origins - GRID_EPOCH) // period) * period


@lru_cache(maxsize=65536)
def refit_anchor(origin: pd.Timestamp, weeks: int) -> pd.Timestamp:
    """refit_anchors of one origin."""
    return refit_anchors(pd.DatetimeIndex([origin]), weeks)[0]
