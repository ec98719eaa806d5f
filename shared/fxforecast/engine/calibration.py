"""Interval calibration, applied to the combined forecast: `fit(paths, validation, closes)` gives
something that `apply`s to a path and reports `info()` for the metrics line. CALIBRATIONS names
every method a setting can pick: the volatility regime's widths, measured on the horizon's
yardstick, corrected by their recent coverage (default); the same on daily returns; the daily
regime's widths alone; or split-conformal factors on the log-distance from the median, earned on
the combined validation paths."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..horizons import HorizonParams
from ..quantiles import MEDIAN
from .validation import Validation

# Interval pairs calibrated separately, by index into LEVELS: (lower, upper, coverage).
INTERVALS = ((1, 3, 0.80), (0, 4, 0.95))
CALIBRATION_LIMITS = (0.5, 3.0)
# Prior strength, in independent paths, that holds calibration factors toward 1.
CALIBRATION_PRIOR_PATHS = 10


def interval_ratios(tails: np.ndarray, actual: np.ndarray, lower: int, upper: int) -> np.ndarray:
    """Per row of the stacked path tails (where the targets lie): the error's log-distance from
    the median over the interval's half-width on its side; above 1 the interval missed."""
    log_median = np.log(tails[:, MEDIAN])
    error = np.log(actual) - log_median
    half_width = np.where(
        error >= 0, np.log(tails[:, upper]) - log_median, log_median - np.log(tails[:, lower])
    )
    return np.abs(error) / np.maximum(half_width, 1e-12)


def shrunk_factor(raw: float, independent: float) -> float:
    """`raw` shrunk toward 1 (in log terms) by how few independent paths it rests on, clipped
    to CALIBRATION_LIMITS."""
    weight = independent / (independent + CALIBRATION_PRIOR_PATHS)
    return float(np.clip(np.exp(weight * np.log(max(raw, 1e-6))), *CALIBRATION_LIMITS))


def calibration_factors(tails: np.ndarray, validation: Validation) -> dict[str, float]:
    """Per interval, the factor on log-distance from the median that makes past errors in the
    tail of each validation path (where the target lies) fall inside as often as nominal.

    The factor is shrunk toward 1 (in log terms) by how few independent paths it rests on, so
    one shock in a short window does not swing the width for years."""
    independent = validation.independent_paths()
    actual = validation.actual_tails
    factors = {}
    for lower, upper, coverage in INTERVALS:
        ratios = interval_ratios(tails, actual, lower, upper)
        # Split-conformal level: (1 + 1/n) x nominal, n the number of validation paths.
        level = min(1.0, coverage * (1 + 1 / len(validation.origins)))
        raw = float(np.quantile(ratios, level))
        factors[f"{int(coverage * 100)}"] = shrunk_factor(raw, independent)
    return factors


def calibrate(path: np.ndarray, factors: dict) -> np.ndarray:
    """Stretch each interval's log-distance from the median by its factor (one for every row,
    or one per row)."""
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
    """Split-conformal factors shrunk toward 1, clipped to the limits (the oldest method)."""

    def fit(self, paths: list[np.ndarray], validation: Validation, closes: pd.Series):
        return Calibration(calibration_factors(validation.tails(paths), validation))


# Volatility regime: a fast EWMA of the yardstick's moves (RiskMetrics-style decay) against their
# standard deviation over a long window. Widths follow the square root of the ratio: half way
# between ignoring the regime and letting a short window set the width alone (which made
# intervals jumpy and too narrow in calm spells).
REGIME_ELASTICITY = 0.5


@dataclass(frozen=True)
class Yardstick:
    """How far the rate moves, per close, measured on overlapping moves over `days` closes: their
    EWMA (`decay`) against their standard deviation over the last `window` moves. On daily moves
    (days=1) it is the classic daily volatility; over a week or a month it sees that daily closes
    partly reverse within days, which daily volatility times the square root of the steps does
    not."""

    days: int
    decay: float
    window: int

    @classmethod
    def of(cls, params: HorizonParams) -> "Yardstick":
        return cls(params.yardstick_days, params.yardstick_decay, params.yardstick_window)

    def volatility(self, closes: pd.Series) -> tuple[pd.Series, pd.Series]:
        """The fast (EWMA) and long volatility per close as of each close: each value reads the
        closes up to its own date only."""
        log_closes = np.log(closes)
        moves = (log_closes - log_closes.shift(self.days)).dropna() / np.sqrt(self.days)
        fast = np.sqrt((moves**2).ewm(alpha=1 - self.decay, adjust=False).mean())
        return fast, moves.rolling(self.window, min_periods=2).std()

    def ratio(self, closes: pd.Series) -> tuple[float, float, float]:
        """(fast volatility, long volatility, their ratio) at the last close."""
        fast, long = (float(series.iloc[-1]) for series in self.volatility(closes))
        return fast, long, fast / long

    def factors(self, closes: pd.Series, dates: list[pd.Timestamp]) -> np.ndarray:
        """The regime's width factor as it stood at each date (the last close on or before it)."""
        fast, long = self.volatility(closes)
        at = fast.index.searchsorted(dates, side="right") - 1
        return (fast.to_numpy()[at] / long.to_numpy()[at]) ** REGIME_ELASTICITY

    def label(self) -> str:
        return "daily moves" if self.days == 1 else f"{self.days}-day moves"


# The yardstick of the older calibrations: daily log returns, ~23-day half-life, 250 days.
DAILY = Yardstick(days=1, decay=0.97, window=250)


@dataclass(frozen=True)
class RegimeWidths:
    yardstick: Yardstick
    fast_vol: float
    long_vol: float
    factor: float  # on every level's log-distance from the median

    def apply(self, path: np.ndarray) -> np.ndarray:
        return calibrate(path, {"80": self.factor, "95": self.factor})

    def info(self) -> dict:
        return {
            "method": "regime",
            "yardstick": self.yardstick.label(),
            "fast_vol": round(self.fast_vol, 6),
            "long_vol": round(self.long_vol, 6),
            "factor": round(self.factor, 4),
        }


class VolatilityRegime:
    """Widths that follow the volatility regime: every quantile's log-distance from the median
    scaled by (fast vol / long vol) ** REGIME_ELASTICITY of the yardstick. Wider as a turbulent
    spell starts, narrower as it calms, without waiting for validation errors to accumulate."""

    def __init__(self, yardstick: Yardstick = DAILY):
        self.yardstick = yardstick

    def fit(self, paths: list[np.ndarray], validation: Validation, closes: pd.Series):
        fast, long, ratio = self.yardstick.ratio(closes)
        return RegimeWidths(self.yardstick, fast, long, ratio**REGIME_ELASTICITY)


# Recent coverage: the regime's widths alone still miss for long stretches (2024: large daily
# swings, modest weekly moves, so 80% intervals held 94% of 7-day outcomes). Each validation path
# is widened by the regime as of its own origin, and how they covered corrects the widths, a
# path's weight halving every RECENT_HALF_LIFE_WEEKS (26: chosen over 13 and 52 on 2017-2024,
# for its coverage margin at 7 days; 13 had a slightly lower loss).
RECENT_HALF_LIFE_WEEKS = 26


def weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The level-quantile of values with weights (each point at the middle of its weight)."""
    order = np.argsort(values)
    values, weights = values[order], weights[order] / weights.sum()
    return float(np.interp(level, np.cumsum(weights) - weights / 2, values))


def recent_corrections(tails: np.ndarray, validation: Validation) -> dict[str, float]:
    """Per interval, the factor that would have made the validation paths (their tails, stacked)
    cover as often as nominal, recent ones weighing most, shrunk toward 1 by how few independent
    paths it rests on."""
    last = validation.origins[-1]
    ages = np.array([(last - origin).days / 7 for origin in validation.origins])
    weights = 0.5 ** (ages / RECENT_HALF_LIFE_WEEKS)
    # Kish's effective number of weighted origins, then the overlap of their paths.
    independent = validation.independent_paths(weights.sum() ** 2 / (weights**2).sum())
    actual = validation.actual_tails
    # A path's weight shared evenly by the rows of its tail.
    point_weights = validation.per_tail_row(weights / validation.tail_lengths)
    corrections = {}
    for lower, upper, coverage in INTERVALS:
        ratios = interval_ratios(tails, actual, lower, upper)
        raw = weighted_quantile(ratios, point_weights, coverage)
        corrections[f"{int(coverage * 100)}"] = shrunk_factor(raw, independent)
    return corrections


@dataclass(frozen=True)
class CorrectedRegimeWidths:
    regime: RegimeWidths
    corrections: dict[str, float]  # by interval: "80", "95"

    def apply(self, path: np.ndarray) -> np.ndarray:
        return calibrate(
            path, {key: self.regime.factor * value for key, value in self.corrections.items()}
        )

    def info(self) -> dict:
        return {
            **self.regime.info(),
            "method": "regime_conformal",
            **{f"correction{key}": round(value, 4) for key, value in self.corrections.items()},
        }


class RegimeConformal:
    """The regime's widths (VolatilityRegime) times a correction for how such widths covered
    the recent validation paths: the regime answers at once, the correction over months."""

    def __init__(self, yardstick: Yardstick = DAILY):
        self.yardstick = yardstick

    def fit(self, paths: list[np.ndarray], validation: Validation, closes: pd.Series):
        regime = VolatilityRegime(self.yardstick).fit(paths, validation, closes)
        # Each path's tail widened by the regime as of its origin, all rows at once.
        factors = validation.per_tail_row(self.yardstick.factors(closes, validation.origins))
        widened = calibrate(validation.tails(paths), {"80": factors, "95": factors})
        return CorrectedRegimeWidths(regime, recent_corrections(widened, validation))


# Each method built for a horizon's parameters: the default measures the regime on the horizon's
# yardstick; the `_daily` one and the older methods on daily returns, as they always did.
CALIBRATIONS: dict[str, Callable[[HorizonParams], object]] = {
    "regime_conformal": lambda params: RegimeConformal(Yardstick.of(params)),
    "regime_conformal_daily": lambda params: RegimeConformal(DAILY),
    "regime": lambda params: VolatilityRegime(DAILY),
    "split_conformal": lambda params: SplitConformal(),
}
