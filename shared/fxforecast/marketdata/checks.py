"""The checks a live answer passes before it is stored: the series each source feeds and how far
it may move (cleaning's plausibility rule), no future dates, and the level cross-checks against
the official series (dólar observado for USD/CLP, LME copper for COMEX copper).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .clean import BAD_TICK_LOG_JUMP, implausible
from .providers import SourceError

ORDER_OF_MAGNITUDE = float(np.log(10))
# COMEX copper (Yahoo) traded up to ~30% above LME copper (mindicador) in 2025; a wrong unit
# (cents, tonnes) is 100x or more.
COPPER_VENUE_GAP = float(np.log(2))
RATE_STEP_PP = 2.0  # no policy rate here has moved 2 points in one step since 2010


@dataclass(frozen=True)
class Feed:
    column: str  # where it is stored: market_daily, rates_daily or crosscheck_daily
    source: str  # a key of providers.FETCHERS
    code: str  # the source's name for the series
    max_step: float  # largest believable move: log ratio for prices, points for rates

    @property
    def is_rate(self) -> bool:
        return self.column in ("fed_rate", "chile_rate")


FEEDS = (
    Feed("USDCLP", "yahoo", "CLP=X", BAD_TICK_LOG_JUMP),
    Feed("Copper", "yahoo", "HG=F", BAD_TICK_LOG_JUMP),
    Feed("Oil", "yahoo", "CL=F", ORDER_OF_MAGNITUDE),
    Feed("DXY", "yahoo", "DX-Y.NYB", BAD_TICK_LOG_JUMP),
    Feed("SP500", "yahoo", "^GSPC", ORDER_OF_MAGNITUDE),
    Feed("VIX", "yahoo", "^VIX", ORDER_OF_MAGNITUDE),  # VIX can double in a day
    Feed("fed_rate", "fred", "DFF", RATE_STEP_PP),
    Feed("chile_rate", "mindicador", "tpm", RATE_STEP_PP),
    Feed("dolar_observado", "mindicador", "dolar", BAD_TICK_LOG_JUMP),
    Feed("libra_cobre", "mindicador", "libra_cobre", BAD_TICK_LOG_JUMP),
)
# market column -> (the official series it must match in level, the largest log gap allowed)
CROSS_CHECKS = {
    "USDCLP": ("dolar_observado", BAD_TICK_LOG_JUMP),
    "Copper": ("libra_cobre", COPPER_VENUE_GAP),
}


def _implausible(new: pd.Series, history: pd.Series, feed: Feed) -> pd.Series:
    """Mask of new values too far from the five plausible values before each (cleaning's rule),
    the last five stored values before the answer leading."""
    before = history[history.index < new.index[0]].dropna().iloc[-5:]
    return implausible(pd.concat([before, new]), feed.max_step, feed.is_rate).loc[new.index]


def check(feed: Feed, new: pd.Series, history: pd.Series, today: pd.Timestamp, log) -> pd.Series:
    """The values of an answer fit to store; SourceError when the whole answer is unusable."""
    if not new.index.is_unique:
        twice = new.index[new.index.duplicated()][0]
        raise SourceError(f"more than one value for {twice.date()}: not one value per day")
    new = new.dropna()
    if new.empty:
        raise SourceError("empty answer: no values in the period asked for")
    if new.index.max() > today:
        raise SourceError(
            f"dates in the future: {new.index.max().date()} is after today ({today.date()})"
        )
    bad = _implausible(new, history, feed)
    if bad.iloc[-1] or 2 * bad.sum() > len(bad):
        first = bad.idxmax()
        stored = history.dropna().iloc[-5:].median()
        raise SourceError(
            f"implausible level: {new[first]:.6g} on {first.date()} against "
            f"{stored:.6g} stored (a jump, wrong unit or wrong currency)"
        )
    if bad.any():
        log.warning(
            "dropped implausible values",
            column=feed.column,
            dates=[str(d.date()) for d in bad.index[bad]],
        )
    return new[~bad]


def cross_check(column: str, new: pd.Series, official: pd.Series) -> None:
    name, limit = CROSS_CHECKS[column]
    both = pd.concat([new, official], axis=1, join="inner").dropna()
    if both.empty:
        return  # nothing to compare with: the jump check against stored values stands alone
    gap = np.log(both.iloc[:, 0] / both.iloc[:, 1])
    if abs(float(gap.median())) > limit:
        raise SourceError(
            f"wrong level: {both.iloc[-1, 0]:.6g} against the official {name} "
            f"{both.iloc[-1, 1]:.6g} on {both.index[-1].date()}"
        )
