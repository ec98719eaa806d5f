"""No-change forecast with normal log-price quantiles: sigma of the last 250 daily log returns
times sqrt(steps). Exactly the benchmark of EVALUATION.md, so it is also the fallback."""

import numpy as np

from .base import Fitted, Member, closes_until, log_returns, normal_quantiles

SIGMA_WINDOW = 250


class _RandomWalkFitted(Fitted):
    def forecast(self, frame, origins, steps):
        out = []
        for origin, n in zip(origins, steps, strict=True):
            closes = closes_until(frame, origin)
            sigma = float(log_returns(closes).iloc[-SIGMA_WINDOW:].std())
            horizon = np.arange(1, n + 1)
            out.append(
                normal_quantiles(float(closes.iloc[-1]), np.zeros(n), sigma * np.sqrt(horizon))
            )
        return out


class RandomWalk(Member):
    name = "random_walk"

    def fit(self, frame, params):
        return _RandomWalkFitted()
