"""Random Forest on lagged return features of USD/CLP, copper, the dollar index and the rate
differential. One multi-output forest predicts the volatility-scaled cumulative return for every
step; quantiles come from its out-of-bag residuals, rescaled by the volatility at the origin.

No target leakage: a training row's target ends on or before the fit date, and every feature is
computed from rows on or before the row's own date."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

from ...quantiles import LEVELS
from .base import Fitted, Member

VOL_WINDOW = 60


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """Features per genuine-close day, each from that day and earlier only."""
    rows = frame[frame["usdclp"].notna()]
    log_fx = np.log(rows["usdclp"])
    ret = log_fx.diff()
    vol = ret.rolling(VOL_WINDOW, min_periods=20).std()
    out = pd.DataFrame(index=rows.index)
    for lag in (1, 5, 10, 20):
        out[f"fx_{lag}"] = log_fx.diff(lag) / (vol * np.sqrt(lag))
    for name in ("copper", "dxy"):
        log_x = np.log(rows[name])
        for lag in (1, 5, 20):
            out[f"{name}_{lag}"] = log_x.diff(lag)
    out["rate_diff_20"] = rows["rate_differential"].diff(20)
    out["vol_ratio"] = vol / ret.rolling(250, min_periods=60).std()
    out["vol"] = vol
    return out.dropna()


class _ForestFitted(Fitted):
    def __init__(self, forest, residual_quantiles):
        self.forest = forest
        self.residual_quantiles = residual_quantiles  # (len(LEVELS), max_steps), scaled units

    def _forecast(self, frame, origins, steps):
        # Features are causal (each row from itself and earlier rows), so one pass over the
        # frame serves every origin; the row at an origin never reads past it.
        table = features(frame.loc[: max(origins)])
        closes = frame["usdclp"].dropna()
        positions = table.index.get_indexer(origins, method="pad")  # last row on or before
        if (positions < 0).any():
            raise ValueError("an origin precedes the first row with complete features")
        rows = table.iloc[positions]
        predicted = self.forest.predict(rows.drop(columns="vol").to_numpy())  # one batched call
        out = []
        for origin, n, scaled, vol in zip(origins, steps, predicted, rows["vol"], strict=True):
            scale = vol * np.sqrt(np.arange(1, n + 1))
            paths = (scaled[:n, None] + self.residual_quantiles[:, :n].T) * scale[:, None]
            out.append(float(closes.loc[:origin].iloc[-1]) * np.exp(paths))
        return out


@dataclass(frozen=True)
class RandomForest(Member):
    name = "random_forest"
    lookback: int  # training rows
    trees: int
    steps: int  # outputs: the most business days the horizon can hold

    def fit(self, frame):
        x = features(frame)
        log_fx = np.log(frame["usdclp"].dropna())
        position = log_fx.index.get_indexer(x.index)
        values = log_fx.to_numpy()
        usable = position + self.steps < len(values)  # target fully realised by the fit date
        x, position = x[usable].iloc[-self.lookback :], position[usable][-self.lookback :]
        scale = x["vol"].to_numpy()[:, None] * np.sqrt(np.arange(1, self.steps + 1))[None, :]
        future = values[position[:, None] + np.arange(1, self.steps + 1)[None, :]]
        y = (future - values[position][:, None]) / scale
        forest = RandomForestRegressor(
            n_estimators=self.trees,
            min_samples_leaf=20,
            max_features=0.5,
            max_samples=0.5,  # half the rows per tree: twice as fast, more diverse trees
            oob_score=True,
            random_state=0,
            n_jobs=1,
        )
        forest.fit(x.drop(columns="vol").to_numpy(), y)
        residuals = y - forest.oob_prediction_
        return _ForestFitted(forest, np.quantile(residuals, LEVELS, axis=0))
