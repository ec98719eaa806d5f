"""What a run must not forecast through silently: a new USD/CLP level taken for a run of bad
ticks, and a close that stopped (stuck, or missing) while the as-of date moved on.

clean() checks both on the frame cut at the as-of date, so a service run and every backtest
origin see the same verdicts. Each limit comes from the shipped snapshot (2010-11-26 ..
2024-11-29), where none of them fires at any weekly origin from 2012 to 2024.
"""

import numpy as np
import pandas as pd

from ..errors import DataError

# The snapshot's two bad ticks (2014-04-10, 2016-12-22) are single closes between genuine ones,
# and its largest genuine one-day move (-11.7%, 2022-07-21) stays inside the bad-tick bound. So
# closes beyond the bound two or more in a row are a new level, not ticks: a unit slip in the
# feed or a genuine move too large to take on trust. Either way the run must not forecast from
# the old level.
MAX_BAD_TICKS_IN_A_ROW = 1
# The snapshot's longest stretch without a new close is 7 business days (563.5 from 2014-05-01
# to 05-12). Beyond 10 the run is degraded with a named warning; beyond 20 (four weeks, over
# which genuine closes have moved up to 18%, more than a 7-day forecast's 95% interval) the
# forecast would start from a level that no longer holds: refused.
STOPPED_WARN_BDAYS = 10
STOPPED_REFUSE_BDAYS = 20
OTHER_SERIES = ("Copper", "DXY", "Oil", "SP500", "VIX")


def level_shift(market: pd.DataFrame, bad: pd.Series, path: str) -> str | None:
    """DataError when USD/CLP closes flagged as bad ticks come two or more in a row; a warning
    when the newest close alone is flagged (a tick, or the first close of a new level)."""
    close = market["USDCLP"].dropna()
    flagged = bad.reindex(close.index, fill_value=False)
    if not flagged.any():
        return None
    runs = (flagged & ~flagged.shift(fill_value=False)).cumsum().where(flagged)
    sizes = runs.value_counts()
    long = sizes[sizes > MAX_BAD_TICKS_IN_A_ROW]
    newest = runs.iloc[-1]  # the run that ends at the as-of date, if any
    if long.empty and np.isnan(newest):
        return None
    shifted = close[runs == (long.index.max() if not long.empty else newest)]
    before = close[~flagged & (close.index < shifted.index[0])].iloc[-5:]
    level = float(before.median())
    # The jump itself (the level may drift after it), to two significant digits: 10x, 0.0099x.
    ratio = float(shifted.iloc[0]) / level
    factor = np.format_float_positional(ratio, 2, unique=False, fractional=False, trim="-") + "x"
    since = f"({level:.6g}, the median of the {len(before)} closes to {before.index[-1].date()})"
    first, last = shifted.index[0].date(), shifted.index[-1].date()
    if long.empty:
        return (
            f"the newest USDCLP close ({first}: {shifted.iloc[0]:.6g}) is {factor} the "
            f"level before it {since}: dropped as a bad tick, the forecast starts from the "
            "close before it; if the level is genuine the next runs refuse it"
        )
    raise DataError(
        f"{path}: the USDCLP closes from {first} to {last} ({len(shifted)} in a row) are "
        f"{factor} the level before them {since}: a level shift, not bad ticks (a unit "
        "slip in the feed, or a move too large to take on trust); fix or remove those closes"
    )


def stopped_close(market: pd.DataFrame, close: pd.Series, path: str) -> str | None:
    """A warning when the newest genuine close lies more than STOPPED_WARN_BDAYS business days
    before the as-of date (a feed stuck on one value while the other series move, or closes
    missing); DataError beyond STOPPED_REFUSE_BDAYS."""
    newest, end = close.last_valid_index(), market.index[-1]
    behind = len(pd.bdate_range(newest, end)) - 1
    if behind <= STOPPED_WARN_BDAYS:
        return None
    after = market.loc[market.index > newest]
    value = market.at[newest, "USDCLP"]
    repeated = after["USDCLP"].dropna()
    moved = [c for c in OTHER_SERIES if market.loc[newest:, c].dropna().nunique() > 1]
    if len(repeated) * 2 > len(after) and (repeated == value).all() and moved:
        problem = (
            f"USDCLP stuck at {value:.6g} since {newest.date()}: unchanged for {behind} business "
            f"days to {end.date()} while {', '.join(moved)} moved (a stuck feed)"
        )
    else:
        problem = (
            f"the newest genuine USDCLP close ({newest.date()}) is {behind} business days "
            f"before the as-of date {end.date()}"
        )
    if behind > STOPPED_REFUSE_BDAYS:
        raise DataError(
            f"{path}: {problem}; more than {STOPPED_REFUSE_BDAYS} is too old to forecast from: "
            f"fix the feed or the file, or run with --as-of {newest.date()}"
        )
    return f"{problem}; the forecast starts from that close"
