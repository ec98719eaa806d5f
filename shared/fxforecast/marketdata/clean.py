"""Clean the daily market data for one run: cut at the as-of date, drop bad ticks and stale
closes, check the signals (signals.py: a level shift, a stopped close), align exogenous series
on past values only; and the one plausibility rule that both cleaning and the live refresh
apply to a new value.

Cleaning always happens after the frame is cut at the as-of date, so nothing dated later can
change what a run sees.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from . import defects, signals
from .schema import MARKET_FILE, RawData, load_raw

# A close further than this (in log terms) from the median of the previous five valid closes
# is a bad tick. USD/CLP's largest genuine day since 2010 is -11.7% (2022-07-21); the known
# bad ticks are ~100x. ln(1.25) leaves a wide margin on both sides.
BAD_TICK_LOG_JUMP = float(np.log(1.25))
TICK_CHECKED = {"USDCLP": "usdclp", "Copper": "copper", "DXY": "dxy"}


@dataclass
class CleaningReport:
    bad_ticks: list[dict] = field(default_factory=list)
    stale_closes: int = 0
    missing_closes: int = 0
    gaps: list[dict] = field(default_factory=list)  # rows further apart than a long weekend
    warnings: list[str] = field(default_factory=list)  # signals that degrade the run

    def as_dict(self) -> dict:
        return {
            "bad_ticks": self.bad_ticks,
            "stale_closes": self.stale_closes,
            "missing_closes": self.missing_closes,
            "gaps": self.gaps,
        }


@dataclass
class MarketData:
    """The cleaned frame: one row per business day up to the as-of date.

    Columns: usdclp (NaN where there was no genuine new close), copper, dxy, oil, sp500, vix,
    rate_differential (forward-filled, past values only).
    """

    frame: pd.DataFrame
    report: CleaningReport
    source: str

    @property
    def as_of(self) -> pd.Timestamp:
        return self.frame.index[-1]

    def closes(self) -> pd.Series:
        """Genuine USD/CLP closes (holidays, stale repeats and bad ticks removed)."""
        return self.frame["usdclp"].dropna()

    def filled_close(self) -> pd.Series:
        """USD/CLP on every business day: the last genuine close on or before it."""
        return self.frame["usdclp"].ffill()


def implausible(values: pd.Series, max_step: float, additive: bool = False) -> pd.Series:
    """Mask of values further than `max_step` from the median of the five plausible values
    before each: in log terms for prices (a non-positive price is never plausible), in points
    when `additive` (rates). The first value has nothing before it and stands, unless it is a
    non-positive price.

    Each value's verdict depends only on earlier verdicts, so the loop reaches the one
    consistent mask, vectorised, in two rounds on clean data (one more per nearby bad value)."""
    valid = values.dropna()
    bad = pd.Series(False, index=valid.index)
    while True:
        kept = valid[~bad]
        # The median of the last five kept values strictly before each position.
        reference = kept.rolling(5, min_periods=1).median().reindex(valid.index).shift(1).ffill()
        if additive:
            flagged = (valid - reference).abs() > max_step
        else:
            with np.errstate(invalid="ignore", divide="ignore"):  # a value <= 0 is flagged anyway
                flagged = (valid <= 0) | (np.abs(np.log(valid / reference)) > max_step)
        if flagged.equals(bad):
            return bad.reindex(values.index, fill_value=False)
        bad = flagged


def bad_ticks(market: pd.DataFrame) -> dict[str, pd.Series]:
    """The implausible() mask of each TICK_CHECKED column. A verdict reads only earlier values,
    so the masks of the data cut at any date are these masks cut there: a backtest computes them
    once for all its origins (clean's `ticks`)."""
    return {column: implausible(market[column], BAD_TICK_LOG_JUMP) for column in TICK_CHECKED}


def clean(
    raw: RawData, as_of: pd.Timestamp | str | None = None, ticks: dict | None = None
) -> MarketData:
    """Cut at `as_of` (default: the newest row), then clean and align. `ticks`: bad_ticks() of
    the whole raw market, to cut instead of computing them on the cut data."""
    market = raw.market
    if as_of is not None:
        as_of = pd.Timestamp(as_of)
        if as_of < market.index[0]:
            raise DataError(
                f"--as-of {as_of.date()} is before the first row of the data "
                f"({market.index[0].date()}); choose a later date"
            )
        if as_of > market.index[-1]:
            raise ConfigError(
                f"--as-of {as_of.date()} is after the newest row of the data "
                f"({market.index[-1].date()}); choose that date or an earlier one"
            )
        market = market.loc[:as_of]
    market = market.copy()
    end = market.index[-1]
    report = CleaningReport(gaps=defects.gaps(market.index))
    path = str(Path(raw.source) / MARKET_FILE)

    ticks = bad_ticks(market) if ticks is None else ticks
    for column in TICK_CHECKED:
        bad = ticks[column].loc[:end]
        if column == "USDCLP":
            shift = signals.level_shift(market, bad, path)
        for date in market.index[bad]:
            if column == "USDCLP":
                report.bad_ticks.append(
                    {
                        "date": str(date.date()),
                        "column": column,
                        "value": float(market.at[date, column]),
                    }
                )
        market.loc[bad, column] = np.nan

    close = market["USDCLP"]
    # A close identical to the previous valid one is a holiday or a stale feed, not a price.
    previous = close.ffill().shift(1)
    stale = close.notna() & (close == previous)
    report.stale_closes = int(stale.sum())
    report.missing_closes = int(close.isna().sum())
    close = close.mask(stale)
    if close.notna().sum() == 0:
        raise DataError(f"no valid USDCLP close on or before {end.date()}")
    stopped = signals.stopped_close(market, close, path)
    report.warnings = [warning for warning in (shift, stopped) if warning]

    rates = raw.rates.loc[:end, "rate_differential"]
    rate_diff = rates.reindex(rates.index.union(market.index)).ffill().reindex(market.index)

    frame = pd.DataFrame(
        {
            "usdclp": close,
            "copper": market["Copper"].ffill(),
            "dxy": market["DXY"].ffill(),
            "oil": market["Oil"].ffill(),
            "sp500": market["SP500"].ffill(),
            "vix": market["VIX"].ffill(),
            "rate_differential": rate_diff,
        },
        index=market.index,
    )
    return MarketData(frame=frame, report=report, source=raw.source)


def load(data_dir: Path | None = None, as_of=None) -> MarketData:
    return clean(load_raw(data_dir), as_of)
