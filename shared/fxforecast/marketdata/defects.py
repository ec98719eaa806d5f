"""Data defects that are refused or recorded, never absorbed silently.

Refused (one line naming file, row and column): a date that appears twice, a date after
today, a value that is not finite or beyond any plausible level. Recorded (the metrics line's
`data` block and the forecast's warnings): gaps between rows longer than a long weekend.
"""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

# No series here comes near this (SP500 ~6,000, USD/CLP ~1,000, rates ~10); a value beyond it
# is a typo or an overflow, and it would turn every return that touches it into inf.
MAX_ABS_VALUE = 1e9
# Consecutive rows further apart than this many calendar days leave business days out
# (Friday to Tuesday is a long weekend; the snapshot's rows are never more than 3 days apart).
MAX_GAP_DAYS = 4
# A server ahead of UTC may legitimately hold tomorrow's UTC date.
FUTURE_MARGIN = pd.Timedelta(days=1)


def check_dates(path: Path, dates: pd.Series, column: str) -> None:
    """Refuse a date that appears twice or lies after today (row numbers as in the file)."""
    repeated = dates.duplicated(keep=False).to_numpy()
    if repeated.any():
        rows = np.flatnonzero(dates.to_numpy() == dates.to_numpy()[repeated][0]) + 2
        raise DataError(
            f"{path} rows {', '.join(map(str, rows))}: {column} "
            f"{dates.iloc[rows[0] - 2].date()} appears {len(rows)} times; keep one row per date"
        )
    today = pd.Timestamp(datetime.now(UTC).date())
    future = (dates > today + FUTURE_MARGIN).to_numpy()
    if future.any():
        row = int(np.flatnonzero(future)[0])
        raise DataError(
            f"{path} row {row + 2}: {column} {dates.iloc[row].date()} is after today "
            f"({today.date()}); fix the date or remove that row"
        )


def check_values(path: Path, dates: pd.Series, column: str, values: np.ndarray) -> None:
    """Refuse an infinite or implausibly large value (blank values are allowed)."""
    bad = ~np.isnan(values) & ~(np.abs(values) <= MAX_ABS_VALUE)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path} row {row + 2} ({dates.iloc[row].date()}): {column} value {values[row]:g} is "
            f"not a finite number below {MAX_ABS_VALUE:g}; fix or blank that value"
        )


def gaps(index: pd.DatetimeIndex) -> list[dict]:
    """Consecutive rows more than MAX_GAP_DAYS calendar days apart, oldest first."""
    days = np.diff(index.to_numpy()).astype("timedelta64[D]").astype(int)
    return [
        {"after": str(index[i].date()), "before": str(index[i + 1].date()), "days": int(days[i])}
        for i in np.flatnonzero(days > MAX_GAP_DAYS)
    ]
