"""The last gate before a forecast is written or stored: only a sane forecast is published."""

import numpy as np
import pandas as pd

from ..horizons import future_step_dates
from ..quantiles import LEVELS


def problems(quantiles: np.ndarray) -> list[str]:
    """What is wrong with a (steps, LEVELS) quantile array; empty when it may be published."""
    quantiles = np.asarray(quantiles, dtype=float)
    if quantiles.ndim != 2 or quantiles.shape[1] != len(LEVELS) or quantiles.shape[0] == 0:
        return [f"quantiles have shape {quantiles.shape}, expected (steps, {len(LEVELS)})"]
    if not np.all(np.isfinite(quantiles)):
        return ["a quantile is not finite"]
    found = []
    if np.any(quantiles <= 0):
        found.append("a quantile is not positive")
    if np.any(np.diff(quantiles, axis=1) < 0):
        found.append("quantiles are not in increasing order")
    # 95% interval strictly wider than the 80% one on both sides.
    if np.any(quantiles[:, 0] >= quantiles[:, 1]) or np.any(quantiles[:, 4] <= quantiles[:, 3]):
        found.append("the 95% interval is not wider than the 80% one")
    return found


def check(quantiles: np.ndarray, step_dates: pd.DatetimeIndex, as_of, days: int) -> list[str]:
    """`problems`, plus the steps being the business days after `as_of` up to its target."""
    found = problems(quantiles)
    expected = future_step_dates(pd.Timestamp(as_of), days)
    if len(step_dates) != len(expected) or not (step_dates == expected).all():
        found.append(
            f"the steps are not the business days after {pd.Timestamp(as_of).date()} up to "
            f"its {days}-day target"
        )
    elif np.asarray(quantiles).shape[0] != len(step_dates):
        found.append(f"{np.asarray(quantiles).shape[0]} quantile rows for {len(step_dates)} steps")
    return found
