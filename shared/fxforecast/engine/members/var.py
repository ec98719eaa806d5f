"""VAR on daily log returns of USD/CLP, copper and the dollar index and on changes of the
Chile-US rate differential; lag order by AIC. Intervals come from the VAR's own error
covariance propagated through its moving-average form to the cumulative USD/CLP return."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.api import VAR

from .base import Fitted, Member, normal_quantiles

COLUMNS = ["usdclp", "copper", "dxy"]


def var_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Returns on days with a genuine USD/CLP close; exogenous values are already past-aligned."""
    rows = frame[frame["usdclp"].notna()]
    out = np.log(rows[COLUMNS]).diff()
    out["rate_differential"] = rows["rate_differential"].diff()
    return out.dropna()


class _VarFitted(Fitted):
    def __init__(self, result):
        self.result = result

    def _forecast(self, frame, origins, steps):
        k_ar = self.result.k_ar
        sigma_u = np.asarray(self.result.sigma_u)
        inputs = var_inputs(frame.loc[: max(origins)])  # returns are causal: one pass serves all
        closes = frame["usdclp"].dropna()
        out = []
        for origin, n in zip(origins, steps, strict=True):
            mean = self.result.forecast(inputs.loc[:origin].to_numpy()[-k_ar:], n)[:, 0]
            psi = np.cumsum(self.result.ma_rep(n - 1), axis=0)  # (n, k, k): sums of MA matrices
            # variance of the h-step sum: sum_{m<h} (Psi_m Sigma_u Psi_m')[0, 0]
            cum_var = np.cumsum([(p @ sigma_u @ p.T)[0, 0] for p in psi])
            last = float(closes.loc[:origin].iloc[-1])
            out.append(normal_quantiles(last, np.cumsum(mean), np.sqrt(cum_var)))
        return out


@dataclass(frozen=True)
class VectorAutoregression(Member):
    name = "var"
    lookback: int  # daily return rows fitted on
    max_lags: int  # lag orders searched by AIC: 1..max_lags

    def fit(self, frame):
        inputs = var_inputs(frame).iloc[-self.lookback :]
        model = VAR(inputs.to_numpy())
        order = model.select_order(maxlags=self.max_lags).aic
        return _VarFitted(model.fit(max(1, int(order)), trend="n"))
