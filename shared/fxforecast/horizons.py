"""Per-horizon parameters (one table) and the calendar rules for steps and targets."""

from dataclasses import dataclass

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


# The one table: engine.members.configured_members gives each member its fields from it.
HORIZONS: dict[int, HorizonParams] = {
    7: HorizonParams(
        days=7,
        lookback=750,
        arima_max_p=2,
        arima_max_q=2,
        var_max_lags=5,
        rf_trees=100,
        validation_origins=78,
        refit_weeks=13,
        chronos_context=180,
    ),
    15: HorizonParams(
        days=15,
        lookback=750,
        arima_max_p=2,
        arima_max_q=2,
        var_max_lags=5,
        rf_trees=100,
        validation_origins=78,
        refit_weeks=13,
        chronos_context=180,
    ),
    30: HorizonParams(
        days=30,
        lookback=1000,
        arima_max_p=2,
        arima_max_q=2,
        var_max_lags=5,
        rf_trees=100,
        validation_origins=130,
        refit_weeks=26,
        chronos_context=90,
    ),
    90: HorizonParams(
        days=90,
        lookback=1000,
        arima_max_p=1,
        arima_max_q=1,
        var_max_lags=3,
        rf_trees=100,
        validation_origins=156,
        refit_weeks=26,
        chronos_context=365,
    ),
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
    end = origin + pd.Timedelta(days=days)
    return index[(index > origin) & (index <= end)]


def refit_anchor(origin: pd.Timestamp, weeks: int) -> pd.Timestamp:
    """The latest grid date on or before `origin`; weeks=0 means refit at the origin itself."""
    if weeks <= 0:
        return origin
    period = pd.Timedelta(weeks=weeks)
    return GRID_EPOCH + ((origin - GRID_EPOCH) // period) * period
