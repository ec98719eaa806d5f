"""`make bench-report`: time to render the report from five years of weekly runs of the four
services, every chart drawn (CACHE_DIR empty) and with the charts kept by a previous page (what a
refresh finds for the services that did not run), against the import floor (`python -c "import
fxforecast"`), each in a fresh process, side by side. Prints numbers; asserts nothing.

The synthetic history: one metrics line per service per Monday (mostly ok, some degraded,
failed and Chronos-skipped runs, Chronos on for 7d in the last two years, two corrupt lines),
every forecast in the store with targets whose actual closes are in the embedded snapshot, and
each service's latest fan chart."""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from fxforecast.engine.members.base import Z, max_steps
from fxforecast.horizons import HORIZONS
from fxforecast.marketdata.clean import clean
from fxforecast.marketdata.schema import default_data_dir, load_raw
from fxforecast.ops.outputs import fan_chart, steps_table
from fxforecast.ops.store import save_forecast
from fxforecast.quantiles import QUANTILE_COLUMNS

YEARS = 5
REPEATS = 3
MEMBERS = ("random_walk", "arima_garch", "var", "random_forest", "chronos")


def _record(rng, service, days, as_of, chronos_on, quantiles, target, scores) -> dict:
    roll = rng.random()
    status = "failed" if roll < 0.02 else "degraded" if roll < 0.06 else "ok"
    chronos = {"status": "disabled", "reason": "switched off in settings", "enabled": False}
    if chronos_on:
        skipped = rng.random() < 0.05
        chronos = {
            "enabled": True,
            "status": "skipped" if skipped else "ok",
            "reason": "available memory 812 MB < 1000; Chronos skipped" if skipped else None,
            "load_s": None if skipped else round(rng.uniform(1.2, 2.5), 3),
            "predict_s": None if skipped else round(rng.uniform(0.5, 1.5), 3),
            "rss_before_mb": None if skipped else round(rng.uniform(280, 320), 1),
            "rss_after_mb": None if skipped else round(rng.uniform(600, 700), 1),
            "rss_released_mb": None if skipped else round(rng.uniform(330, 380), 1),
        }
    used = [m for m in MEMBERS if m != "chronos" or chronos["status"] == "ok"]
    # The ensemble's rule: weights proportional to score^-10, a quarter spread evenly.
    inverse = np.array([scores[m] ** -10 for m in used])
    weights = 0.75 * inverse / inverse.sum() + 0.25 / len(used)
    members = {
        name: {
            "status": "ok",
            "reason": None,
            "score": round(float(scores[name]), 4),
            "weight": round(float(weights[i]), 4),
            "seconds": round(rng.uniform(0.2, 12), 3),
        }
        for i, name in enumerate(used)
    }
    if status == "degraded":
        members["var"].update(status="failed", reason="LinAlgError: singular matrix", weight=0.0)
    record = {
        "timestamp": f"{(as_of + pd.Timedelta(days=3)).date()}T09:{days % 60:02d}:00+00:00",
        "service": service,
        "horizon_days": days,
        "as_of": str(as_of.date()),
        "status": status,
        "error": "data file not found: market_daily.csv" if status == "failed" else None,
        "runtime_s": round(rng.uniform(15, 40) + (8 if chronos["status"] == "ok" else 0), 3),
        "peak_rss_mb": round(rng.uniform(250, 300) + (400 if chronos["status"] == "ok" else 0), 1),
    }
    if status != "failed":
        record.update(
            data={"data_source": "cache", "age_days": 3},
            warnings=[],
            target_date=target,
            members=members,
            forecast=dict(zip(QUANTILE_COLUMNS, quantiles[-1].round(4).tolist(), strict=True)),
            chronos=chronos,
        )
    return record


def write_history(folder: Path) -> int:
    """The metrics log, the store and the fan charts under `folder`; returns the line count."""
    rng = np.random.default_rng(12)
    closes = clean(load_raw(default_data_dir())).filled_close()
    fridays = pd.date_range(end=closes.index[-1], periods=52 * YEARS, freq="W-FRI")
    lines = []
    for days in sorted(HORIZONS):
        service = f"forecaster_{days}d"
        steps = max_steps(days)
        scores = {m: 2.3 * (days / 7) ** 0.5 * rng.uniform(0.95, 1.05) for m in MEMBERS}
        for week, as_of in enumerate(fridays):
            last = float(closes.asof(as_of))
            dates = pd.bdate_range(as_of + pd.Timedelta(days=1), periods=steps)
            sd = 0.006 * np.sqrt(np.arange(1, steps + 1))
            quantiles = last * np.exp(rng.normal(0, 0.002) + sd[:, None] * Z[None, :])
            chronos_on = days == 7 and week >= len(fridays) - 104
            target = str(dates[-1].date())
            # Validation scores drift slowly from week to week, as real ones do.
            scores = {m: scores[m] * np.exp(rng.normal(0, 0.01)) for m in MEMBERS}
            record = _record(rng, service, days, as_of, chronos_on, quantiles, target, scores)
            lines.append(json.dumps(record))
            if record["status"] == "failed":
                continue
            table, latest = steps_table(dates, quantiles), as_of
            save_forecast(
                folder / "forecasts.sqlite",
                {
                    "service": service,
                    "as_of": str(as_of.date()),
                    "horizon_days": days,
                    "target_date": target,
                    "last_close": last,
                    "status": record["status"],
                    "steps": table.round(4).to_dict("records"),
                },
            )
        # The latest successful run's fan chart, as the service writes it.
        chart = folder / "output" / service / str(latest.date()) / "fan_chart.png"
        chart.parent.mkdir(parents=True, exist_ok=True)
        chart.write_bytes(fan_chart(closes.loc[:latest], table, f"USD/CLP {days}-day forecast"))
    lines[100] = lines[100][: len(lines[100]) // 2]  # a line cut short by a full disk
    lines.insert(500, "\x00\x00 not json")
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return len(lines)


def _seconds(command: list[str], cache_dir: str = "") -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `command` in a fresh process."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(
        command, check=True, capture_output=True, env={**os.environ, "CACHE_DIR": cache_dir}
    )
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_history(folder)
        out = folder / "report" / "index.html"
        report = [sys.executable, "-m", "fxforecast", "report", "--out", str(out)]
        report += ["--metrics", str(folder / "metrics.jsonl"), "--db"]
        report += [str(folder / "forecasts.sqlite"), "--output-dir", str(folder / "output")]
        report += ["--data-dir", str(default_data_dir())]
        kept = str(folder / "cache")
        _seconds(report, kept)  # draws and keeps every chart
        # Side by side: the three alternate, so all see the same machine load.
        runs = {"floor": [], "drawn": [], "kept": []}
        for _ in range(REPEATS):
            runs["floor"].append(_seconds([sys.executable, "-c", "import fxforecast"]))
            runs["drawn"].append(_seconds(report))
            runs["kept"].append(_seconds(report, kept))
        floor, drawn, kept = (
            [statistics.median(t) for t in zip(*runs[what], strict=True)]
            for what in ("floor", "drawn", "kept")
        )
        size_mb = out.stat().st_size / 2**20
    print(f"history: {YEARS} years x {len(HORIZONS)} services, {lines} metrics lines")
    print(f"medians of {REPEATS} runs, each in a fresh process, alternating")
    print(f"{'what':<38}{'wall s':>8}{'ratio':>8}{'CPU s':>8}{'ratio':>8}")
    for what, (wall, cpu) in (
        ("import floor (import fxforecast)", floor),
        ("fxforecast report, every chart drawn", drawn),
        ("the same, the charts kept", kept),
    ):
        print(f"{what:<38}{wall:>8.2f}{wall / floor[0]:>8.1f}{cpu:>8.2f}{cpu / floor[1]:>8.1f}")
    print(f"page: {size_mb:.1f} MB")


if __name__ == "__main__":
    main()
