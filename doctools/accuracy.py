"""The Accuracy page, written from a backtest's output folder alone (`make accuracy-docs`):
metrics.json, metrics.md, forecasts.csv and the two charts. No figure on it is typed by hand.
Beside it, summary.md: how often the intervals held, which "Reading a forecast" includes.

    python -m doctools.accuracy [BACKTEST_DIR [PAGE_DIR]]   (default output/backtest docs/accuracy)
"""

import hashlib
import json
import re
import sys
from pathlib import Path

import pandas as pd
from fxforecast.fsio import write_all

INPUTS = ("metrics.json", "metrics.md", "forecasts.csv", "coverage.png", "relative_error.png")
CHARTS = ("coverage.png", "relative_error.png")
# What good looks like (EVALUATION.md): the bands each figure is judged against.
COVERAGE_BANDS = {"80%": (0.76, 0.84), "95%": (0.92, 0.97)}
YEARLY_BANDS = {7: (0.70, 0.90), 15: (0.70, 0.90), 30: (0.65, 0.95), 90: (0.65, 0.95)}
BEST_MEMBER_MARGIN = 0.01
SUMMARY_HEADER = [
    "horizon",
    "n",
    "rel_MAE",
    "rel_WQL",
    "coverage 80%",
    "coverage 95%",
    "80% coverage by year (min–max)",
    "DM p",
    "best member (rel_WQL)",
]
TARGETS_HEADER = [
    "horizon",
    "rel_MAE ≤ 1",
    "rel_WQL < 1",
    f"within {BEST_MEMBER_MARGIN} of the best member",
    "80% coverage",
    "95% coverage",
    "every year's 80% coverage",
]


class InputError(Exception):
    """A backtest folder the page cannot be made from."""


def read_backtest(folder: Path) -> dict:
    missing = [name for name in INPUTS if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"{folder} lacks {', '.join(missing)}; run `make backtest` (it writes them into "
            "output/backtest) or name the folder that holds them"
        )
    header = (folder / "metrics.md").read_text().splitlines()[0]
    window = re.fullmatch(r"# Backtest (\S+) \.\. (\S+) \(weekly origins, every (\d+)\)", header)
    if window is None:
        raise InputError(f"{folder}/metrics.md does not start as a backtest writes it: {header!r}")
    forecasts_bytes = (folder / "forecasts.csv").read_bytes()
    return {
        "folder": folder,
        "window": window.groups(),
        "metrics": pd.DataFrame(json.loads((folder / "metrics.json").read_text())),
        "table": (folder / "metrics.md").read_text().split("\n", 1)[1].strip(),
        "forecasts": pd.read_csv(folder / "forecasts.csv"),
        "sha256": hashlib.sha256(forecasts_bytes).hexdigest(),
        "charts": {name: (folder / name).read_bytes() for name in CHARTS},
    }


def yearly_coverage(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The ensemble's 80% coverage by horizon (rows) and calendar year of the origin (columns)."""
    rows = forecasts[forecasts["model"] == "ensemble"]
    inside = (rows["actual"] >= rows["q0.1"]) & (rows["actual"] <= rows["q0.9"])
    year = pd.to_datetime(rows["origin"]).dt.year
    return inside.groupby([rows["horizon_days"], year]).mean().unstack()


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list, rows: list[list]) -> str:
    return "\n".join([_row(header), _row(["---"] * len(header)), *map(_row, rows)])


def page(backtest: dict, command: str) -> str:
    metrics, yearly = backtest["metrics"], yearly_coverage(backtest["forecasts"])
    start, end, every = backtest["window"]
    ensemble = metrics[metrics["model"] == "ensemble"].set_index("horizon_days").sort_index()
    members = metrics[~metrics["model"].isin(["ensemble", "random_walk"])]
    best = members.loc[members.groupby("horizon_days")["rel_wql"].idxmin()].set_index(
        "horizon_days"
    )
    summary = [
        [
            f"{days}d",
            int(row["n"]),
            f"{row['rel_mae']:.3f}",
            f"{row['rel_wql']:.3f}",
            f"{row['coverage80']:.1%}",
            f"{row['coverage95']:.1%}",
            f"{yearly.loc[days].min():.2f}–{yearly.loc[days].max():.2f}",
            "–" if pd.isna(row["dm_pvalue"]) else f"{row['dm_pvalue']:.2f}",
            f"{best.loc[days, 'model']} {best.loc[days, 'rel_wql']:.3f}",
        ]
        for days, row in ensemble.iterrows()
    ]
    years = [
        [f"{days}d", *[f"{value:.2f}" if pd.notna(value) else "–" for value in row]]
        for days, row in yearly.iterrows()
    ]
    targets = []
    for days, row in ensemble.iterrows():
        low, high = YEARLY_BANDS[days]
        targets.append(
            [
                f"{days}d",
                _met(row["rel_mae"] <= 1.0),
                _met(row["rel_wql"] < 1.0),
                _met(row["rel_wql"] <= best.loc[days, "rel_wql"] + BEST_MEMBER_MARGIN),
                _met(COVERAGE_BANDS["80%"][0] <= row["coverage80"] <= COVERAGE_BANDS["80%"][1]),
                _met(COVERAGE_BANDS["95%"][0] <= row["coverage95"] <= COVERAGE_BANDS["95%"][1]),
                _met(low <= yearly.loc[days].min() and yearly.loc[days].max() <= high)
                + f" ({low:.2f}–{high:.2f})",
            ]
        )
    every = "every weekly origin" if every == "1" else f"one weekly origin in {every}"
    band80, band95 = (f"{low:.2f}–{high:.2f}" for low, high in COVERAGE_BANDS.values())
    return f"""# Accuracy

<!-- Written by `{command}`: do not edit by hand; run it again after a backtest. -->

Every figure on this page comes from one rolling-origin backtest (the protocol is below), read
from its own output files by `{command}`; none is typed by hand. That backtest: origins from
{start} to {end}, {every}, in `{backtest["folder"]}` (`forecasts.csv` sha256
`{backtest["sha256"][:16]}…`).

## The ensemble against the random walk

rel_MAE: the median's mean absolute error over that of no change (below 1 is better).
rel_WQL: the weighted quantile loss of all five quantiles over that of a random walk with normal
intervals (below 1 is better). Coverage: the share of outcomes inside the interval. DM p: the
Diebold–Mariano test of the median against no change (a small value: the difference is not
chance). The last column is the member with the lowest rel_WQL on its own.

{_table(SUMMARY_HEADER, summary)}

## How often the 80% interval held, year by year

The share of outcomes inside the ensemble's 80% interval, by calendar year of the forecast's
origin, from `forecasts.csv`:

{_table(["horizon", *[str(y) for y in yearly.columns]], years)}

## Against what good looks like

The bands of the project's evaluation protocol (`EVALUATION.md`): rel_MAE at most 1.00;
rel_WQL below 1.00; over the whole window, 80% coverage in {band80} and 95% coverage in
{band95}; every year's 80% coverage in the band shown. And the ensemble's own target: its
rel_WQL within {BEST_MEMBER_MARGIN} of its best member's.

{_table(TARGETS_HEADER, targets)}

![Coverage of the 80% and 95% intervals by horizon, ensemble and random walk](coverage.png)

![Error relative to the random walk by horizon](relative_error.png)

## Every model and horizon

From `metrics.md`: RMSE, MAE and MAPE of the median (CLP per USD, %), rel_MAE, directional
accuracy, WQL and rel_WQL, coverage and mean width (CLP) of both intervals, and the DM p-value
against no change, for the ensemble, the random walk and every member.

{backtest["table"]}

## The protocol

Every Friday close in the window is an origin. Each origin runs the same code as a service run
as of that date (the same cleaning, members, validation, weights and calibration), reading
nothing dated after it; the target is the last business day on or before origin + H calendar
days; origins whose target lies beyond the data are left out (hence fewer forecasts at longer
horizons). The random walk is the benchmark every exchange-rate model has to beat (see the
[model card](../model-card.md) for what was tuned on this same window).

To make this page again:

    make backtest        # about 10-25 minutes on 2 cores; writes output/backtest/
    make accuracy-docs   # writes docs/accuracy/ from those files
"""


def summary(backtest: dict) -> str:
    """How often the ensemble's intervals held, for readers of a forecast."""
    metrics, yearly = backtest["metrics"], yearly_coverage(backtest["forecasts"])
    ensemble = metrics[metrics["model"] == "ensemble"].set_index("horizon_days").sort_index()
    start, end, _ = backtest["window"]
    rows = [
        [
            f"{days} days",
            int(row["n"]),
            f"{row['coverage80']:.0%}",
            f"{row['coverage95']:.0%}",
            f"{yearly.loc[days].min():.0%} to {yearly.loc[days].max():.0%}",
        ]
        for days, row in ensemble.iterrows()
    ]
    header = [
        "horizon",
        f"weekly forecasts {start[:4]}–{end[:4]}",
        "ended inside the 80% interval",
        "inside the 95% interval",
        "80% interval, the worst and best year",
    ]
    return _table(header, rows) + "\n"


def write_page(backtest_dir: Path, page_dir: Path, command: str) -> dict[str, str]:
    backtest = read_backtest(backtest_dir)
    files = {
        "index.md": page(backtest, command).encode(),
        "summary.md": summary(backtest).encode(),
        **backtest["charts"],
    }
    return write_all(page_dir, files)


def main(argv: list[str]) -> int:
    backtest_dir = Path(argv[0]) if argv else Path("output/backtest")
    page_dir = Path(argv[1]) if len(argv) > 1 else Path("docs/accuracy")
    command = " ".join(["python -m doctools.accuracy", *argv])
    try:
        written = write_page(backtest_dir, page_dir, command)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"accuracy page: {written['index.md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
