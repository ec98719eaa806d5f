"""The files a run writes, rendered in memory: forecast.json, forecast.csv and fan_chart.png
(fsio.write_set publishes the three as one set)."""

import io
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # batch service: no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..errors import DataError  # noqa: E402
from ..quantiles import QUANTILE_COLUMNS  # noqa: E402

HISTORY_DAYS_SHOWN = 120
AS_OF_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_not_older(service_folder: Path, as_of: pd.Timestamp) -> None:
    """Refuse a run (without --as-of) whose data ends before the newest as-of date the service
    already published: its data went back in time (a file cut, an older copy put in place, a
    cache replaced by the snapshot). Refused rather than published as degraded: a forecast from
    older data helps nobody this week, and a failed run makes monitoring look at once."""
    published = [
        p.name
        for p in (service_folder.iterdir() if service_folder.is_dir() else [])
        if AS_OF_FOLDER.match(p.name) and (p / "forecast.json").is_file()
    ]
    newest = max(published, default=None)
    if newest is not None and str(as_of.date()) < newest:
        raise DataError(
            f"the data ends {as_of.date()}, before {newest}, the as-of date this service last "
            f"published ({service_folder / newest}): the data went back in time (a file cut or "
            f"replaced by an older copy?); check DATA_DIR and the cache, or run with --as-of "
            f"{as_of.date()} to forecast that date on purpose"
        )


def steps_table(step_dates: pd.DatetimeIndex, quantiles) -> pd.DataFrame:
    table = pd.DataFrame(quantiles, columns=QUANTILE_COLUMNS)
    table.insert(0, "date", [d.strftime("%Y-%m-%d") for d in step_dates])
    return table


def fan_chart(history: pd.Series, table: pd.DataFrame, title: str) -> bytes:
    dates = pd.to_datetime(table["date"])
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=100)
    shown = history.iloc[-max(HISTORY_DAYS_SHOWN, 2 * len(table)) :]
    ax.plot(shown.index, shown.to_numpy(), color="black", lw=1.2, label="USD/CLP close")
    # Bands start at the last close so the fan visibly opens from today's rate.
    band_dates = [shown.index[-1], *dates]
    last = float(shown.iloc[-1])
    for low, high, label, alpha in (
        ("q0.025", "q0.975", "95% interval", 0.18),
        ("q0.1", "q0.9", "80% interval", 0.35),
    ):
        ax.fill_between(
            band_dates,
            [last, *table[low]],
            [last, *table[high]],
            color="tab:blue",
            alpha=alpha,
            lw=0,
            label=label,
        )
    ax.plot(band_dates, [last, *table["q0.5"]], color="tab:blue", lw=1.5, label="median")
    ax.set_title(title)
    ax.set_xlabel("date")
    ax.set_ylabel("CLP per USD")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def render(payload: dict, history: pd.Series, table: pd.DataFrame) -> dict[str, bytes]:
    title = (
        f"USD/CLP {payload['horizon_days']}-day forecast as of {payload['as_of']} "
        f"({payload['service']})"
    )
    return {
        "forecast.json": (json.dumps(payload, indent=2) + "\n").encode(),
        "forecast.csv": table.to_csv(index=False, float_format="%.4f").encode(),
        "fan_chart.png": fan_chart(history, table, title),
    }
