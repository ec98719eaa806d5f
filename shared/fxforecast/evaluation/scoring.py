"""Scores for forecast files in the contract of EVALUATION.md (one row per model, origin and
horizon; quantile columns q0.025..q0.975), against the no-change forecast."""

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..quantiles import LEVELS, QUANTILE_COLUMNS, pinball

BENCHMARK = "random_walk"


def wql(quantiles: np.ndarray, actual: np.ndarray) -> float:
    """Weighted quantile loss as AutoGluon reports it: 2/|Q| * sum pinball / sum |actual|."""
    total = float(np.sum(pinball(quantiles, actual)))
    return 2.0 / len(LEVELS) * total / float(np.sum(np.abs(actual)))


def diebold_mariano(errors: np.ndarray, benchmark_errors: np.ndarray, lag: int) -> float:
    """Two-sided p-value of the DM test on squared errors (of the median)."""
    return loss_diebold_mariano(errors**2, benchmark_errors**2, lag)


def loss_diebold_mariano(loss: np.ndarray, benchmark_loss: np.ndarray, lag: int) -> float:
    """Two-sided p-value of the DM test on a per-forecast loss (squared error, or the pinball
    loss of a whole set of quantiles), with the Harvey-Leybourne-Newbold small-sample correction
    and a rectangular HAC window of `lag` autocovariances."""
    d = loss - benchmark_loss
    n = len(d)
    if n < 3 or np.allclose(d, 0):
        return float("nan")
    centred = d - d.mean()
    variance = np.dot(centred, centred) / n
    for k in range(1, lag + 1):
        variance += 2 * np.dot(centred[k:], centred[:-k]) / n
    if variance <= 0:
        return float("nan")
    dm = d.mean() / math.sqrt(variance / n)
    h = lag + 1
    hln = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(2 * stats.t.sf(abs(hln), df=n - 1))


def score_group(rows: pd.DataFrame, benchmark: pd.DataFrame, horizon_days: int) -> dict:
    """Metrics of one model at one horizon; `benchmark` holds the random-walk rows of the same
    origins (for rel_WQL). Needs columns actual and last_close beside the quantiles."""
    actual = rows["actual"].to_numpy(float)
    last = rows["last_close"].to_numpy(float)
    median = rows["q0.5"].to_numpy(float)
    error = median - actual
    no_change_error = last - actual
    moved, predicted = np.sign(actual - last), np.sign(median - last)
    decided = (moved != 0) & (predicted != 0)
    quantiles = rows[QUANTILE_COLUMNS].to_numpy(float)
    model_wql = wql(quantiles, actual)
    bench_wql = wql(
        benchmark[QUANTILE_COLUMNS].to_numpy(float), benchmark["actual"].to_numpy(float)
    )
    mae = float(np.mean(np.abs(error)))
    return {
        "n": int(len(rows)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": mae,
        "mape": float(np.mean(np.abs(error / actual)) * 100),
        "rel_mae": mae / float(np.mean(np.abs(no_change_error))),
        "directional_accuracy": (
            float(np.mean(moved[decided] == predicted[decided])) if decided.any() else float("nan")
        ),
        "wql": model_wql,
        "rel_wql": model_wql / bench_wql,
        "coverage80": float(np.mean((actual >= rows["q0.1"]) & (actual <= rows["q0.9"]))),
        "coverage95": float(np.mean((actual >= rows["q0.025"]) & (actual <= rows["q0.975"]))),
        "width80": float(np.mean(rows["q0.9"] - rows["q0.1"])),
        "width95": float(np.mean(rows["q0.975"] - rows["q0.025"])),
        "dm_pvalue": diebold_mariano(error, no_change_error, math.ceil(horizon_days / 7) - 1),
    }


def score(forecasts: pd.DataFrame) -> pd.DataFrame:
    """One row of metrics per (model, horizon_days), scored on the origins every model shares."""
    out = []
    for horizon, at_horizon in forecasts.groupby("horizon_days"):
        benchmark = at_horizon[at_horizon["model"] == BENCHMARK].set_index("origin")
        for model, rows in at_horizon.groupby("model"):
            rows = rows.set_index("origin").sort_index()
            common = rows.index.intersection(benchmark.index)
            metrics = score_group(rows.loc[common], benchmark.loc[common], int(horizon))
            out.append({"model": model, "horizon_days": int(horizon), **metrics})
    return pd.DataFrame(out).sort_values(["horizon_days", "model"]).reset_index(drop=True)
