"""The `fxforecast backtest` command: its arguments, their checks and what it prints (the
date and count argument types serve the other commands too)."""

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..horizons import HORIZONS
from ..settings import CHOICES, load_settings

# The most weeks between refits: ten years, longer than any backtest the data allows.
MAX_REFIT_WEEKS = 520


def date_arg(text: str) -> pd.Timestamp:
    try:
        value = pd.to_datetime(text, format="%Y-%m-%d")
    except ValueError:
        value = pd.NaT
    if pd.isna(value):  # an empty text gives no date, not an error, from pandas
        raise argparse.ArgumentTypeError(f"{text!r} is not a yyyy-mm-dd date")
    return pd.Timestamp(value)


def horizons_arg(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of days"
        ) from None
    unknown = [v for v in values if v not in HORIZONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unsupported horizon(s) {unknown}; choose from {sorted(HORIZONS)}"
        )
    return values


def positive_arg(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def refit_weeks_arg(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_REFIT_WEEKS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of weeks from 0 to {MAX_REFIT_WEEKS}"
        )
    return int(text)


def usable_jobs(jobs: int) -> int:
    """--jobs, at most one process per core this process may use (more only compete for them);
    a lower number than asked is said on stderr."""
    cores = len(os.sched_getaffinity(0))
    if jobs > cores:
        print(
            f"warning: --jobs {jobs} is more than the {cores} cores here; running {cores}",
            file=sys.stderr,
        )
    return min(jobs, cores)


def add_backtest(sub):
    bt = sub.add_parser("backtest", help="rolling-origin backtest against the random walk")
    bt.add_argument(
        "--horizons",
        type=horizons_arg,
        default=(7, 15, 30, 90),
        help="comma-separated horizons in days (default 7,15,30,90)",
    )
    bt.add_argument("--start", type=date_arg, required=True, help="first origin week (yyyy-mm-dd)")
    bt.add_argument("--end", type=date_arg, required=True, help="last origin week (yyyy-mm-dd)")
    bt.add_argument("--data-dir", type=Path, help="folder with market_daily.csv, rates_daily.csv")
    bt.add_argument("--env-file", type=Path, help=".env whose ENABLE_* settings to use")
    bt.add_argument(
        "--jobs",
        type=positive_arg,
        default=1,
        help="origins run in parallel (at most one process per core)",
    )
    bt.add_argument(
        "--scheduler",
        default=os.environ.get("DASK_SCHEDULER") or None,
        metavar="ADDRESS",
        help="run the blocks on this Dask scheduler's workers instead of --jobs local "
        "processes (default: DASK_SCHEDULER)",
    )
    bt.add_argument("--every", type=positive_arg, default=1, help="keep every K-th weekly origin")
    bt.add_argument(
        "--refit-weeks",
        type=refit_weeks_arg,
        default=4,
        help=f"refit each member's final model every R weeks (0: at every origin; at most "
        f"{MAX_REFIT_WEEKS})",
    )
    bt.add_argument("--out", type=Path, required=True, help="folder for the results")
    bt.add_argument(
        "--combiner",
        choices=CHOICES["COMBINER"],
        help="how members' forecasts become one (default: COMBINER, else greedy)",
    )
    bt.add_argument(
        "--calibration",
        choices=CHOICES["CALIBRATION"],
        help="how the intervals are set (default: CALIBRATION, else regime_conformal)",
    )


def backtest(args) -> int:
    from ..marketdata.schema import load_raw
    from .backtest import BacktestSpec, run_backtest

    if args.start > args.end:
        raise ConfigError(f"--start {args.start.date()} is after --end {args.end.date()}")
    settings = load_settings(
        args.env_file,
        data_dir=args.data_dir,
        combiner=args.combiner,
        calibration=args.calibration,
    )
    spec = BacktestSpec(
        args.horizons, str(args.start.date()), str(args.end.date()), args.every, args.refit_weeks
    )
    raw = load_raw(settings.data_dir)
    jobs = args.jobs if args.scheduler else usable_jobs(args.jobs)
    metrics = run_backtest(raw, settings, spec, args.out, jobs, scheduler=args.scheduler)
    shown = metrics[metrics["model"].isin(["ensemble", "random_walk"])]
    columns = ["model", "horizon_days", "n", "rel_mae", "rel_wql", "coverage80", "coverage95"]
    print(shown[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"results: {args.out}/metrics.md, forecasts.csv, coverage.png, relative_error.png")
    return 0
