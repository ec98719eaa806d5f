"""`fxforecast status --accuracy`: the stored forecasts against the actual closes in the data the
services read, per service over the last 3, 6 and 12 months of target dates."""

import json
from dataclasses import replace

import pandas as pd

from ..marketdata import load_for_run
from ..marketdata.clean import clean
from ..quantiles import QUANTILE_COLUMNS
from ..settings import Settings
from .runlog import configure_logging
from .store import load_forecasts

ACCURACY_WINDOWS_MONTHS = (3, 6, 12)


def scored_forecasts(forecasts: list[dict], closes: pd.Series) -> pd.DataFrame:
    """One row per stored forecast whose target date has an actual close in the data."""
    rows = []
    for forecast in forecasts:
        target = pd.Timestamp(forecast["target_date"])
        if target > closes.index[-1]:
            continue
        last_step = forecast["steps"][-1]
        rows.append(
            {
                "service": forecast["service"],
                "target": target,
                "actual": float(closes.asof(target)),
                "last_close": forecast["last_close"],
                **{q: last_step[q] for q in QUANTILE_COLUMNS},
            }
        )
    return pd.DataFrame(rows)


def _window_scores(rows: pd.DataFrame) -> dict:
    error = rows["q0.5"] - rows["actual"]
    no_change_mae = (rows["last_close"] - rows["actual"]).abs().mean()
    mae = error.abs().mean()
    return {
        "n": len(rows),
        "mae": round(mae, 3),
        "rmse": round(float((error**2).mean() ** 0.5), 3),
        "bias": round(error.mean(), 3),
        "rel_mae": round(mae / no_change_mae, 4) if no_change_mae > 0 else None,
        "coverage_80": round(rows["actual"].between(rows["q0.1"], rows["q0.9"]).mean(), 3),
        "coverage_95": round(rows["actual"].between(rows["q0.025"], rows["q0.975"]).mean(), 3),
    }


def accuracy_report(forecasts: list[dict], closes: pd.Series, source: str) -> dict:
    """Per service: errors of the median at the target date, rel_MAE vs no-change and interval
    coverage, over the last 3, 6 and 12 months back from its newest scored target date."""
    scored = scored_forecasts(forecasts, closes)
    services = {}
    for name in sorted({f["service"] for f in forecasts}):
        rows = scored[scored["service"] == name] if len(scored) else scored
        stored = sum(f["service"] == name for f in forecasts)
        entry = {"stored": stored, "pending": stored - len(rows), "windows": {}}
        if len(rows):
            newest = rows["target"].max()
            entry["newest_target"] = str(newest.date())
            for months in ACCURACY_WINDOWS_MONTHS:
                window = rows[rows["target"] > newest - pd.DateOffset(months=months)]
                entry["windows"][f"{months}m"] = _window_scores(window)
        services[name] = entry
    return {"actuals": source, "actuals_until": str(closes.index[-1].date()), "services": services}


def _format_accuracy(report: dict) -> str:
    lines = [
        f"realized accuracy of the median at each target date; actuals from "
        f"{report['actuals']} (until {report['actuals_until']})",
        f"{'service':<16}{'window':>7}{'n':>5}{'MAE':>9}{'RMSE':>9}{'bias':>9}"
        f"{'rel_MAE':>9}{'cov80':>7}{'cov95':>7}",
    ]
    for name, entry in report["services"].items():
        for window, w in entry["windows"].items():
            rel = "-" if w["rel_mae"] is None else f"{w['rel_mae']:.3f}"
            lines.append(
                f"{name:<16}{window:>7}{w['n']:>5}{w['mae']:>9.2f}{w['rmse']:>9.2f}"
                f"{w['bias']:>9.2f}{rel:>9}{w['coverage_80']:>7.2f}"
                f"{w['coverage_95']:>7.2f}"
            )
        lines.append(
            f"{name:<16}  {entry['stored']} stored, {entry['pending']} awaiting their actual"
        )
    return "\n".join(lines)


def actual_closes(settings: Settings, log, raw=None) -> tuple[pd.Series, str]:
    """The actual closes and where they came from: the same data the services read (the cache
    when it is newer than the snapshot), without refreshing it; `raw` when already loaded."""
    if raw is None:
        raw = load_for_run(replace(settings, data_refresh=False), log).raw
    data = clean(raw)
    return data.filled_close(), data.source


def show_accuracy(settings: Settings, as_json: bool) -> int:
    forecasts = load_forecasts(settings.forecast_db)
    closes, source = actual_closes(settings, configure_logging("status", settings.log_dir))
    report = accuracy_report(forecasts, closes, source)
    print(json.dumps(report, indent=2) if as_json else _format_accuracy(report))
    return 0
