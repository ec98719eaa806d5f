"""The member contract every ensemble member follows, and the helpers members share.

A member is a dataclass whose init fields are its hyper-parameters (filled per horizon by
`configured_members`). It is fitted once per refit anchor on rows dated on or before the anchor,
then asked for forecasts at one or more origins (each on or after the anchor). A forecast at
origin `o` may read only rows dated on or before `o`. It is an array of shape
(steps, len(LEVELS)): quantiles of the USD/CLP level in CLP for each business day after the
origin. `Fitted.forecast` checks that contract around each member's own `_forecast`.
"""

from abc import ABC, abstractmethod
from dataclasses import fields

import numpy as np
import pandas as pd
from scipy.stats import norm

from ...quantiles import LEVELS

Z = norm.ppf(LEVELS)


class InvalidForecast(ValueError):
    """A member returned paths that break the contract (shape, non-finite or non-positive)."""


class Fitted(ABC):
    def forecast(
        self, frame: pd.DataFrame, origins: list[pd.Timestamp], steps: list[int]
    ) -> list[np.ndarray]:
        """Quantile paths (steps x LEVELS, CLP, sorted per step) for each origin, checked."""
        checked = []
        for path, n in zip(self._forecast(frame, origins, steps), steps, strict=True):
            path = np.asarray(path, dtype=float)
            if path.shape != (n, len(LEVELS)):
                raise InvalidForecast(
                    f"forecast has shape {path.shape}, expected {(n, len(LEVELS))}"
                )
            if not np.all(np.isfinite(path)) or np.any(path <= 0):
                raise InvalidForecast("forecast has non-finite or non-positive values")
            checked.append(np.sort(path, axis=1))
        return checked

    @abstractmethod
    def _forecast(
        self, frame: pd.DataFrame, origins: list[pd.Timestamp], steps: list[int]
    ) -> list[np.ndarray]:
        """The member's own paths for each origin, using rows <= that origin."""


class Member(ABC):
    name: str
    zero_shot = False  # True: learns nothing from history, so one fit serves every origin
    # True: in a service run, fitted in a child process killed at the timeout (engine.runner).
    own_process = True
    # True: its paths and fits may be kept in the member cache on disk (engine.member_cache).
    storable = True

    @abstractmethod
    def fit(self, frame: pd.DataFrame) -> Fitted:
        """Fit on `frame` (every row is dated on or before the refit anchor)."""

    def hyperparameters(self) -> dict:
        """The init fields: what makes two members of the same name forecast differently."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def release(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Free what the member holds (a model, memory) once the ensemble is done."""

    def info(self, outcome) -> dict:
        """Figures for the run's metrics line under the member's name; empty: nothing."""
        return {}


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
