"""What every ensemble member provides, and the helpers they share.

A member is fitted once per refit anchor on rows dated on or before the anchor, then asked for
forecasts at one or more origins (each on or after the anchor). A forecast at origin `o` may read
only rows dated on or before `o`. It is an array of shape (steps, len(LEVELS)): quantiles of the
USD/CLP level in CLP for each business day after the origin.
"""

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..horizons import HorizonParams

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
QUANTILE_COLUMNS = [f"q{level}" for level in LEVELS]
MEDIAN = LEVELS.index(0.5)
Z = norm.ppf(LEVELS)


class Fitted(ABC):
    @abstractmethod
    def forecast(
        self, frame: pd.DataFrame, origins: list[pd.Timestamp], steps: list[int]
    ) -> list[np.ndarray]:
        """Quantile paths (steps x LEVELS, CLP) for each origin, using rows <= that origin."""


class Member(ABC):
    name: str
    zero_shot = False  # True: learns nothing from history, so one fit serves every origin

    @abstractmethod
    def fit(self, frame: pd.DataFrame, params: HorizonParams) -> Fitted:
        """Fit on `frame` (every row is dated on or before the refit anchor)."""


def max_steps(days: int) -> int:
    """Most business days that can fall in `days` calendar days after an origin."""
    weeks, rest = divmod(days, 7)
    return weeks * 5 + min(rest, 5)


def closes_until(frame: pd.DataFrame, origin: pd.Timestamp) -> pd.Series:
    return frame["usdclp"].loc[:origin].dropna()


def log_returns(closes: pd.Series) -> pd.Series:
    return np.log(closes).diff().dropna()


def normal_quantiles(last: float, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Quantiles of last * exp(N(mean, sd^2)) per step: cumulative log-return moments."""
    return last * np.exp(mean[:, None] + sd[:, None] * Z[None, :])
