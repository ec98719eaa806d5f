"""No-change forecasts. The normal random walk (sigma of the last 250 daily log returns times
sqrt(steps)) is exactly the benchmark of EVALUATION.md, so it is also the fallback; the empirical
one takes its spread from the past's own h-day moves."""

from dataclasses import dataclass

import numpy as np

from ...quantiles import LEVELS, MEDIAN
from .base import Fitted, Member, closes_until, log_returns, normal_quantiles


class _RandomWalkFitted(Fitted):
    def __init__(self, sigma_window: int):
        self.sigma_window = sigma_window

    def _forecast(self, frame, origins, steps):
        out = []
        for origin, n in zip(origins, steps, strict=True):
            closes = closes_until(frame, origin)
            sigma = float(log_returns(closes).iloc[-self.sigma_window :].std())
            horizon = np.arange(1, n + 1)
            out.append(
                normal_quantiles(float(closes.iloc[-1]), np.zeros(n), sigma * np.sqrt(horizon))
            )
        return out


@dataclass(frozen=True)
class RandomWalk(Member):
    name = "random_walk"
    sigma_window: int = 250  # daily log returns behind sigma

    def fit(self, frame):
        return _RandomWalkFitted(self.sigma_window)


class _EmpiricalRandomWalkFitted(Fitted):
    def __init__(self, window: int):
        self.window = window

    def _forecast(self, frame, origins, steps):
        out = []
        for origin, n in zip(origins, steps, strict=True):
            log_closes = np.log(closes_until(frame, origin).to_numpy()[-(self.window + 1) :])
            # Row k: quantiles of every past (k+1)-close log move in the window, overlapping.
            moves = [log_closes[k:] - log_closes[:-k] for k in range(1, n + 1)]
            quantiles = np.array([np.quantile(m, LEVELS) for m in moves])
            quantiles -= quantiles[:, [MEDIAN]]  # centred on no change: no trend is kept
            out.append(np.exp(log_closes[-1] + quantiles))
        return out


@dataclass(frozen=True)
class EmpiricalRandomWalk(Member):
    """No change, with the spread of the last `window` closes' own h-day log moves
    (EVALUATION.md's strongest peer in calm years): fat tails and skew come from the data."""

    name = "random_walk_empirical"
    window: int = 750  # closes whose overlapping h-day moves give the quantiles

    def fit(self, frame):
        return _EmpiricalRandomWalkFitted(self.window)
