"""What the report draws, computed from the metrics log's records: run statuses and times, each
member's fields per run, runs per month, rolling realized accuracy, the last failures."""

from datetime import UTC

import numpy as np
import pandas as pd

from ..status import SUCCESS, run_timestamp

RUN_STATUSES = ("ok", "degraded", "failed")  # anything else in a line counts as failed
ROLLING_FORECASTS = 26  # each accuracy point: the last half-year of weekly forecasts
FAILURES_TABLED = 10
ERROR_CHARS = 300
# One colour per member on every chart and table; members not listed get the spare ones.
MEMBER_COLOURS = {
    "random_walk": "#7f7f7f",
    "arima_garch": "#1f77b4",
    "var": "#ff7f0e",
    "random_forest": "#2ca02c",
    "chronos": "#9467bd",
}
SPARE_COLOURS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728")


def number(value) -> float:
    """A metrics field as a float; missing, non-numeric or non-finite values are NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value) if np.isfinite(value) else np.nan


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def one_line(text) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def run_status(record: dict) -> str:
    status = record.get("status")
    return status if status in RUN_STATUSES else "failed"


def run_times(runs: list[dict]) -> pd.DatetimeIndex:
    """Each run's start in UTC, without a time zone (as matplotlib's dates want them)."""
    return pd.to_datetime([run_timestamp(r) for r in runs], utc=True).tz_convert(None)


def when(timestamp: str) -> str:
    """A metrics line's timestamp for a table: UTC, to the minute."""
    return f"{run_timestamp({'timestamp': timestamp}).astimezone(UTC):%Y-%m-%d %H:%M}"


def member_colours(runs: list[dict]) -> dict[str, str]:
    """Known members keep their colour; others get a spare one in order of first appearance."""
    colours = dict(MEMBER_COLOURS)
    for record in runs:
        for name in as_dict(record.get("members")):
            if name not in colours:
                spare = len(colours) - len(MEMBER_COLOURS)
                colours[name] = SPARE_COLOURS[spare % len(SPARE_COLOURS)]
    return colours


def member_table(runs: list[dict], field: str) -> pd.DataFrame:
    """One row per run, one column per member that ever appeared: its `field` (NaN where a run
    did not have the member or the value)."""
    rows = [
        {name: number(as_dict(m).get(field)) for name, m in as_dict(r.get("members")).items()}
        for r in runs
    ]
    return pd.DataFrame(rows, index=run_times(runs), dtype=float)


def monthly_runs(runs: list[dict]) -> pd.DataFrame:
    """Runs per calendar month (UTC) by status, every month from the first run to the last
    (a month without a run shows as zero runs), and the share that succeeded."""
    months = run_times(runs).to_period("M")
    statuses = pd.Categorical([run_status(r) for r in runs], categories=RUN_STATUSES)
    counts = pd.crosstab(months, statuses, dropna=False).reindex(
        pd.period_range(months.min(), months.max(), freq="M"), fill_value=0
    )
    counts = counts.reindex(columns=list(RUN_STATUSES), fill_value=0)
    counts["runs"] = counts[list(RUN_STATUSES)].sum(axis=1)
    succeeded = counts[[s for s in RUN_STATUSES if s in SUCCESS]].sum(axis=1)
    counts["success_rate"] = succeeded / counts["runs"].where(counts["runs"] > 0)
    return counts


def rolling_accuracy(rows: pd.DataFrame) -> pd.DataFrame:
    """Per scored forecast (by target date): the share of the last ROLLING_FORECASTS actuals
    inside the 80% and 95% intervals, and the mean absolute error of the median and of no
    change (the last close at the as-of date), in CLP per USD."""
    rows = rows.sort_values("target")
    actual = rows["actual"]
    series = {
        "coverage_80": actual.between(rows["q0.1"], rows["q0.9"]).astype(float),
        "coverage_95": actual.between(rows["q0.025"], rows["q0.975"]).astype(float),
        "abs_error": (rows["q0.5"] - actual).abs(),
        "no_change_abs_error": (rows["last_close"] - actual).abs(),
    }
    frame = pd.DataFrame(series).rolling(ROLLING_FORECASTS, min_periods=1).mean()
    frame.index = pd.DatetimeIndex(rows["target"])
    return frame


def last_failures(runs: list[dict]) -> list[dict]:
    """The newest failed runs and failed members, newest first, each with its one-line error."""
    failures = []
    for record in runs:
        if run_status(record) == "failed":
            error = record.get("error") or f"status {record.get('status')!r}"
            failures.append({"time": record["timestamp"], "what": "run", "error": error})
        for name, member in as_dict(record.get("members")).items():
            if as_dict(member).get("status") == "failed":
                failures.append(
                    {
                        "time": record["timestamp"],
                        "what": f"member {name}",
                        "error": member.get("reason") or "no reason recorded",
                    }
                )
    newest = failures[::-1][:FAILURES_TABLED]
    return [{**f, "error": one_line(f["error"])} for f in newest]
