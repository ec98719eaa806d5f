"""No-change forecast with normal log-price quantiles: sigma of the last 250 daily log returns
times sqrt(steps). Exactly the benchmark of EVALUATION.md, so it is also the fallback."""

from dataclasses import dataclass

import numpy as np

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
