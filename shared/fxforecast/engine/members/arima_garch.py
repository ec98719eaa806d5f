"""ARIMA on daily log returns (order by BIC over a small grid, no drift) for the mean path, and
GARCH(1,1) with Student-t innovations (arch) on its residuals for the volatility path."""

import warnings
from dataclasses import dataclass

import numpy as np
from arch import arch_model
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.arima_process import arma2ma

from .base import Fitted, Member, closes_until, log_returns, normal_quantiles

SCALE = 100.0  # fit on percent returns: both libraries converge better at that scale
# Returns run through the fitted filters before a forecast: enough for the ARMA state and the
# GARCH variance (half-life of a few weeks) to forget their start, a quarter of a fit's cost.
FILTER_WINDOW = 250


class _ArimaGarchFitted(Fitted):
    def __init__(self, arima_result, garch_params):
        self.arima_result = arima_result
        self.garch_params = garch_params
        p, _, q = arima_result.model.order
        self.order = (p, q)

    def _forecast(self, frame, origins, steps):
        out = []
        for origin, n in zip(origins, steps, strict=True):
            closes = closes_until(frame, origin)
            returns = SCALE * log_returns(closes).iloc[-FILTER_WINDOW:].to_numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = self.arima_result.apply(returns)
                mean = np.asarray(state.get_forecast(n).predicted_mean)
                garch = arch_model(state.resid, mean="Zero", vol="GARCH", p=1, q=1, dist="t")
                variance = garch.fix(self.garch_params).forecast(horizon=n, reindex=False)
            step_var = variance.variance.to_numpy()[-1]
            ar = np.r_[1, -self.arima_result.arparams] if self.order[0] else np.array([1.0])
            ma = np.r_[1, self.arima_result.maparams] if self.order[1] else np.array([1.0])
            psi_cum = np.cumsum(arma2ma(ar, ma, lags=n))
            # variance of the h-step sum: sum_k (sum_{i<=h-k} psi_i)^2 * sigma^2_{t+k}
            cum_var = np.array(
                [np.sum(psi_cum[:h][::-1] ** 2 * step_var[:h]) for h in range(1, n + 1)]
            )
            out.append(
                normal_quantiles(
                    float(closes.iloc[-1]), np.cumsum(mean) / SCALE, np.sqrt(cum_var) / SCALE
                )
            )
        return out


@dataclass(frozen=True)
class ArimaGarch(Member):
    name = "arima_garch"
    lookback: int  # daily returns fitted on
    max_p: int  # ARMA orders searched by BIC: 0..max_p x 0..max_q
    max_q: int

    def fit(self, frame):
        returns = SCALE * log_returns(frame["usdclp"].dropna()).iloc[-self.lookback :].to_numpy()
        best = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for p in range(self.max_p + 1):
                for q in range(self.max_q + 1):
                    result = ARIMA(returns, order=(p, 0, q), trend="n").fit()
                    if best is None or result.bic < best.bic:
                        best = result
            garch = arch_model(best.resid, mean="Zero", vol="GARCH", p=1, q=1, dist="t")
            garch_result = garch.fit(disp="off")
        if garch_result.convergence_flag != 0:
            raise RuntimeError("GARCH(1,1) did not converge")
        return _ArimaGarchFitted(best, garch_result.params)
