"""Interval calibration, applied to the combined forecast: `fit(paths, validation, closes)` gives
something that `apply`s to a path and reports `info()` for the metrics line. CALIBRATIONS names
every method a setting can pick: the volatility regime's widths (default) or split-conformal
factors on the log-distance from the median, earned on the combined validation paths."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..quantiles import MEDIAN
from .validation import Validation, tail

# Interval pairs calibrated separately, by index into LEVELS: (lower, upper, coverage).
INTERVALS = ((1, 3, 0.80), (0, 4, 0.95))
CALIBRATION_LIMITS = (0.5, 3.0)
# Prior strength, in independent paths, that holds calibration factors toward 1.
CALIBRATION_PRIOR_PATHS = 10


def calibration_factors(paths: list[np.ndarray], validation: Validation) -> dict[str, float]:
    """Per interval, the factor on log-distance from the median that makes past errors in the
    tail of each path (where the target lies) fall inside as often as nominal.

    The factor is shrunk toward 1 (in log terms) by how few independent paths it rests on, so
    one shock in a short window does not swing the width for years."""
    weight = validation.independent_paths()
    weight /= weight + CALIBRATION_PRIOR_PATHS
    factors = {}
    for lower, upper, coverage in INTERVALS:
        ratios = []
        for path, actual in zip(paths, validation.actuals, strict=True):
            path, actual = tail(path), tail(actual)
            log_median = np.log(path[:, MEDIAN])
            error = np.log(actual) - log_median
            half_width = np.where(
                error >= 0,
                np.log(path[:, upper]) - log_median,
                log_median - np.log(path[:, lower]),
            )
            ratios.append(np.abs(error) / np.maximum(half_width, 1e-12))
        # Split-conformal level: (1 + 1/n) x nominal, n the number of validation paths.
        level = min(1.0, coverage * (1 + 1 / len(paths)))
        raw = float(np.quantile(np.concatenate(ratios), level))
        factor = np.exp(weight * np.log(max(raw, 1e-6)))
        factors[f"{int(coverage * 100)}"] = float(np.clip(factor, *CALIBRATION_LIMITS))
    return factors


def calibrate(path: np.ndarray, factors: dict[str, float]) -> np.ndarray:
    """Stretch each interval's log-distance from the median by its factor."""
    log_path = np.log(path)
    out = log_path.copy()
    for lower, upper, coverage in INTERVALS:
        factor = factors[f"{int(coverage * 100)}"]
        for level in (lower, upper):
            out[:, level] = log_path[:, MEDIAN] + factor * (
                log_path[:, level] - log_path[:, MEDIAN]
            )
    return np.sort(np.exp(out), axis=1)


@dataclass(frozen=True)
class Calibration:
    factors: dict[str, float]  # by interval: "80", "95"

    def apply(self, path: np.ndarray) -> np.ndarray:
        return calibrate(path, self.factors)

    def info(self) -> dict:
        return {"method": "split_conformal", **self.factors}


class SplitConformal:
    """Today's calibration: split-conformal factors shrunk toward 1, clipped to the limits."""

    def fit(self, paths: list[np.ndarray], validation: Validation, closes: pd.Series):
        return Calibration(calibration_factors(paths, validation))


# Volatility regime: a fast EWMA of daily log returns (RiskMetrics-style decay, ~23-day
# half-life) against the last 250 days' standard deviation, the members' typical yardstick.
EWMA_DECAY = 0.97
LONG_WINDOW = 250
# Widths follow the square root of the ratio: half way between ignoring the regime and letting
# a short window set the width alone (which made intervals jumpy and too narrow in calm spells).
REGIME_ELASTICITY = 0.5


def volatility_ratio(closes: pd.Series) -> tuple[float, float, float]:
    """(EWMA volatility, LONG_WINDOW volatility, their ratio) of daily log returns up to the
    last close; both known at the as-of date."""
    returns = np.log(closes).diff().dropna()
    ewma = float(np.sqrt((returns**2).ewm(alpha=1 - EWMA_DECAY, adjust=False).mean().iloc[-1]))
    long = float(returns.iloc[-LONG_WINDOW:].std())
    return ewma, long, ewma / long


@dataclass(frozen=True)
class RegimeWidths:
    ewma_vol: float
    long_vol: float
    factor: float  # on every level's log-distance from the median

    def apply(self, path: np.ndarray) -> np.ndarray:
        return calibrate(path, {"80": self.factor, "95": self.factor})

    def info(self) -> dict:
        return {
            "method": "regime",
            "ewma_vol": round(self.ewma_vol, 6),
            "long_vol": round(self.long_vol, 6),
            "factor": round(self.factor, 4),
        }


class VolatilityRegime:
    """Widths that follow the volatility regime: every quantile's log-distance from the median
    scaled by (EWMA vol / 250-day vol) ** REGIME_ELASTICITY. Wider as a turbulent spell
    starts, narrower as it calms, without waiting for validation errors to accumulate."""

    def fit(self, paths: list[np.ndarray], validation: Validation, closes: pd.Series):
        ewma, long, ratio = volatility_ratio(closes)
        return RegimeWidths(ewma, long, ratio**REGIME_ELASTICITY)


CALIBRATIONS = {"regime": VolatilityRegime, "split_conformal": SplitConformal}
