"""`fxforecast report` on a synthetic history whose figures are worked out by hand: a metrics log
with ok, degraded, failed, Chronos-skipped and corrupt lines, members added and removed, services
that never ran, and a forecast store whose targets have real actual closes in the snapshot."""

import base64
import html
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import structlog
from browser import CHROMIUM, NO_CHROMIUM, Browser
from fxforecast.cli import main
from fxforecast.marketdata.clean import clean
from fxforecast.marketdata.schema import default_data_dir, load_raw
from fxforecast.ops.accuracy import scored_forecasts
from fxforecast.ops.outputs import fan_chart, steps_table
from fxforecast.ops.report.charts import UNUSED_KEPT_S
from fxforecast.ops.report.history import (
    MEMBER_COLOURS,
    SPARE_COLOURS,
    member_colours,
    monthly_runs,
    rolling_accuracy,
)
from fxforecast.ops.report.page import build_page
from fxforecast.ops.report.sections import REPORT_RUNS
from fxforecast.ops.store import load_forecasts, save_forecast
from fxforecast.quantiles import QUANTILE_COLUMNS
from fxforecast.settings import Settings
from helpers import FAST_MEMBERS, file_size_limit, metrics_lines, run_service, service_env
from matplotlib.figure import Figure

NOW = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)
CLOSES = clean(load_raw(default_data_dir())).filled_close()
# Four scored 7d forecasts (target: actual + median offset, no-change offset, where the actual
# lies) and one whose target is past the data. By hand: 80% coverage 2/4, 95% coverage 3/4,
# MAE of the median (1 + 6 + 10 + 3) / 4 = 5.0, of no change (5 + 5 + 20 + 10) / 4 = 10.0.
SCORED = [
    ("2024-10-04", 1.0, 5.0, "inside 80%"),
    ("2024-10-11", -6.0, -5.0, "inside 95% only"),
    ("2024-10-18", 10.0, -20.0, "outside 95%"),
    ("2024-10-25", 3.0, 10.0, "inside 80%"),
]
PENDING_TARGET = "2024-12-06"


def members(var=True, new=False, chronos=None):
    entries = {
        "random_walk": {
            "status": "ok",
            "reason": None,
            "score": 2.4,
            "weight": 0.2,
            "seconds": 0.3,
        },
        "arima_garch": {"status": "ok", "reason": None, "score": 2.2, "weight": 0.3, "seconds": 9},
        "random_forest": {
            "status": "ok",
            "reason": None,
            "score": 2.3,
            "weight": 0.25,
            "seconds": 3,
        },
    }
    if var:
        entries["var"] = {"status": "ok", "reason": None, "score": 2.25, "weight": 0.25}
    if new:
        entries["new_member"] = {"status": "ok", "reason": None, "score": 2.1, "weight": 0.25}
    if chronos:
        entries["chronos"] = chronos
    return entries


def chronos_block(status, reason=None, load=None, predict=None):
    return {
        "enabled": status != "disabled",
        "status": status,
        "reason": reason,
        "load_s": load,
        "predict_s": predict,
        "rss_before_mb": 300.0 if load else None,
        "rss_after_mb": 520.0 if load else None,
        "rss_released_mb": 330.0 if load else None,
    }


def run(service, day, status="ok", error=None, member_map=None, chronos=None, runtime=20.0):
    return {
        "timestamp": f"{day}T09:00:00+00:00",
        "service": service,
        "horizon_days": 7,
        "as_of": "2024-11-29",
        "status": status,
        "error": error,
        "data": {"data_source": "snapshot", "age_days": 3},
        "warnings": ["newest data row is 9 days old (limit STALE_DATA_DAYS=7)"],
        "target_date": "2024-12-06",
        "members": member_map if member_map is not None else members(),
        "forecast": dict(zip(QUANTILE_COLUMNS, (940.0, 951.5, 970.25, 990.0, 1001.0), strict=True)),
        "chronos": chronos or chronos_block("disabled", "switched off in settings"),
        "runtime_s": runtime,
        "peak_rss_mb": 310.0,
    }


RUNS_7D = [
    run("forecaster_7d", "2026-01-05"),
    run(
        "forecaster_7d",
        "2026-01-12",
        member_map=members(chronos={"status": "ok", "score": 2.0, "weight": 0.2}),
        chronos=chronos_block("ok", load=1.5, predict=0.8),
    ),
    run(
        "forecaster_7d",
        "2026-01-19",
        status="degraded",
        member_map={
            **members(),
            "var": {"status": "failed", "reason": "LinAlgError: singular matrix", "weight": 0},
        },
        chronos=chronos_block("skipped", "available memory 800 MB < 1000; Chronos skipped"),
    ),
    run("forecaster_7d", "2026-01-26", status="failed", error="data file not found: x.csv"),
    run("forecaster_7d", "2026-02-02", member_map=members(var=False, new=True)),
    run("forecaster_7d", "2026-02-09", status="failed", error="ValueError: boom\nsecond line"),
    run(
        "forecaster_7d",
        "2026-02-16",
        member_map=members(chronos={"status": "failed", "reason": "out of memory", "weight": 0}),
        chronos=chronos_block("failed", "RuntimeError: out of memory", load=1.6, predict=None),
        runtime=31.5,
    ),
]
CORRUPT = [
    '{"timestamp": "2026-01-06T06:00:00+00:00", "serv',
    "\x00\x00garbage",
    '["not", "a", "run"]',
]


def write_history(folder: Path) -> Settings:
    """The metrics log, the store and the latest 7d fan chart; settings that point at them."""
    lines = [json.dumps(r) for r in RUNS_7D]
    for index, text in zip((1, 3, 5), CORRUPT, strict=True):
        lines.insert(index, text)
    lines.append(json.dumps(run("forecaster_15d", "2026-02-03")))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    db = folder / "forecasts.sqlite"
    for target, median_offset, no_change_offset, _ in SCORED:
        actual = float(CLOSES[target])
        median, last = actual + median_offset, actual + no_change_offset
        # Half-widths: 80% 4 CLP, 95% 8 CLP around the median.
        save_forecast(db, forecast(target, last, median, 4.0, 8.0))
    save_forecast(db, forecast(PENDING_TARGET, 950.0, 951.0, 4.0, 8.0))
    settings = Settings(
        metrics_log_path=folder / "metrics.jsonl",
        forecast_db=db,
        output_dir=folder / "output",
        log_dir=folder / "logs",
        data_dir=default_data_dir(),
        cache_dir=folder / "cache",
    )
    latest = steps_table(pd.DatetimeIndex(["2024-12-06"]), [[940.0, 951.5, 970.25, 990.0, 1001.0]])
    chart = settings.output_dir / "forecaster_7d" / "2024-11-29" / "fan_chart.png"
    chart.parent.mkdir(parents=True)
    chart.write_bytes(fan_chart(CLOSES, latest, "USD/CLP 7-day forecast"))
    return settings


def forecast(target, last_close, median, half80, half95):
    as_of = str((pd.Timestamp(target) - pd.Timedelta(days=7)).date())
    quantiles = (median - half95, median - half80, median, median + half80, median + half95)
    return {
        "service": "forecaster_7d",
        "as_of": as_of,
        "horizon_days": 7,
        "target_date": target,
        "last_close": last_close,
        "status": "ok",
        "steps": [{"date": target, **dict(zip(QUANTILE_COLUMNS, quantiles, strict=True))}],
    }


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path_factory, monkeypatch):
    """`fxforecast report` keeps its charts under CACHE_DIR: here, never the repository's."""
    monkeypatch.setenv("CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    settings = write_history(folder)
    return settings, build_page(settings, NOW, structlog.get_logger())


def section(page: str, service: str) -> str:
    return page.split(f'<section id="{service}">')[1].split("</section>")[0]


def test_month_success_rates_by_hand():
    monthly = monthly_runs(RUNS_7D)
    january, february = monthly.loc["2026-01"], monthly.loc["2026-02"]
    assert (january["ok"], january["degraded"], january["failed"]) == (2, 1, 1)
    assert january["success_rate"] == 0.75
    assert (february["ok"], february["degraded"], february["failed"]) == (2, 0, 1)
    assert february["success_rate"] == pytest.approx(2 / 3)


def test_coverage_and_errors_by_hand(history):
    settings, _ = history
    scored = scored_forecasts(load_forecasts(settings.forecast_db), CLOSES)
    assert len(scored) == 4  # the pending one has no actual yet
    last = rolling_accuracy(scored).iloc[-1]
    assert last["coverage_80"] == 0.5
    assert last["coverage_95"] == 0.75
    assert last["abs_error"] == pytest.approx(5.0)
    assert last["no_change_abs_error"] == pytest.approx(10.0)


def test_page_shows_the_hand_computed_figures(history):
    _, page = history
    seven = section(page, "forecaster_7d")
    month_row = "<tr><td class=text>2026-01</td><td>2</td><td>1</td><td>1</td><td>4</td><td>75.0%"
    assert month_row in seven
    assert (
        "<tr><td class=text>2026-02</td><td>2</td><td>0</td><td>1</td><td>3</td><td>66.7%" in seven
    )
    # The 3-month window of realized accuracy: n = 4, MAE 5.00, coverage 50% and 75%.
    assert re.search(r"last 3m</td><td>4</td><td>5.00</td>.*?<td>50.0%</td><td>75.0%</td>", seven)
    assert "1 awaiting their actual" in seven
    # The latest forecast is the last successful run's, with its fan chart and quantiles.
    assert "<td>970.25</td>" in seven and 'alt="fan chart of the latest forecast"' in seven


def test_every_chart_of_a_service_that_ran(history):
    _, page = history
    charts = re.findall(r'<img class="chart" alt="([^"]+)"', section(page, "forecaster_7d"))
    assert charts == [
        "fan chart of the latest forecast",
        "rolling interval coverage and absolute error against no change",
        "member weights per run, stacked",
        "validation score of each member per run",
        "Chronos status, weight, load and predict seconds, RSS per run",
        "run time and peak memory per run",
        "runs per month by status, and the success rate",
    ]
    # Self-contained: every image inline, nothing to fetch.
    assert not re.search(r"<script|<link|(src|href)=\"(?!data:|#)", page)


def test_a_refreshed_page_draws_again_only_the_charts_whose_inputs_changed(tmp_path, monkeypatch):
    """Charts are kept under CACHE_DIR by what they draw: a page built again draws nothing, a
    run of one service redraws that service's charts only, a damaged kept chart is drawn again,
    and every page is the same bytes as one drawn with nothing kept."""
    settings = write_history(tmp_path)
    drawn = []
    savefig = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda fig, *a, **k: drawn.append(1) or savefig(fig, *a, **k)
    )

    def page(kept=True):
        drawn.clear()
        chosen = settings if kept else replace(settings, cache_dir=None)
        return build_page(chosen, NOW, structlog.get_logger()), len(drawn)

    fresh, all_charts = page(kept=False)
    kept_dir = settings.cache_dir / "charts"
    assert page() == (fresh, all_charts) and len(list(kept_dir.iterdir())) == all_charts
    assert page() == (fresh, 0)
    # A new run of the 15-day service: its four charts change, the 7-day ones do not.
    with settings.metrics_log_path.open("a") as log:
        log.write(json.dumps(run("forecaster_15d", "2026-02-10")) + "\n")
    fresh, _ = page(kept=False)
    assert page() == (fresh, 4)
    damaged = next(kept for kept in kept_dir.iterdir() if kept.read_text() in fresh)
    damaged.write_text(damaged.read_text()[:-10])  # cut short
    assert page() == (fresh, 1)
    # The 15-day service's previous charts are used no more: gone once they are an hour old.
    assert len(list(kept_dir.iterdir())) == all_charts + 4
    for kept in kept_dir.iterdir():
        os.utime(kept, (time.time() - UNUSED_KEPT_S - 1,) * 2)
    assert page() == (fresh, 0)
    assert len(list(kept_dir.iterdir())) == all_charts


def test_charts_kept_by_one_process_serve_the_next(history, tmp_path):
    """The digest of a chart's inputs is the same in every process: a second `fxforecast
    report` finds every chart the first one kept, and rewrites none."""
    settings, _ = history
    command = [sys.executable, "-m", "fxforecast", "report", "--out", str(tmp_path / "p.html")]
    command += ["--metrics", str(settings.metrics_log_path), "--db", str(settings.forecast_db)]
    command += ["--output-dir", str(settings.output_dir), "--data-dir", str(settings.data_dir)]
    env = {**os.environ, "CACHE_DIR": str(tmp_path / "cache")}

    def kept():
        subprocess.run(command, env=env, check=True, capture_output=True)
        return {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "charts").iterdir()}

    first = kept()
    assert len(first) == 10 and kept() == first  # six 7-day charts, four 15-day ones


def test_failures_corrupt_lines_and_services_that_never_ran(history):
    _, page = history
    seven = section(page, "forecaster_7d")
    assert "3 metrics lines skipped (corrupt or partial)" in page
    assert "ValueError: boom" in seven and "second line" not in seven  # one line per error
    assert "member var" in seven and "LinAlgError: singular matrix" in seven
    assert "available memory 800 MB &lt; 1000; Chronos skipped" in seven
    assert "RuntimeError: out of memory" in seven
    for service in ("forecaster_30d", "forecaster_90d"):
        assert "Never ran: no line in the metrics log." in section(page, service)
        assert "no run recorded" in section(page, service)
    assert "Chronos was never enabled for this service." in section(page, "forecaster_15d")


def test_one_colour_per_member_including_new_ones():
    colours = member_colours(RUNS_7D)
    assert colours["var"] == MEMBER_COLOURS["var"]
    assert colours["new_member"] == SPARE_COLOURS[0]
    assert len(set(colours.values())) == len(colours)


def test_command_writes_the_page_atomically(history, tmp_path, capsys):
    """A page that does not fit on the disk leaves the previous page whole: a reader sees the
    old page or the new one, never part of one."""
    settings, _ = history
    out = tmp_path / "site" / "index.html"
    args = [
        "report",
        "--metrics",
        str(settings.metrics_log_path),
        "--db",
        str(settings.forecast_db),
    ]
    args += ["--output-dir", str(settings.output_dir), "--data-dir", str(settings.data_dir)]
    args += ["--out", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out == f"report: {out}\n"
    page = out.read_bytes()
    assert page.startswith(b"<!DOCTYPE html>") and page.endswith(b"</html>")
    with file_size_limit(len(page) // 2):
        assert main(args) == 1
    assert capsys.readouterr().err.startswith("error: [Errno 27] File too large")
    assert out.read_bytes() == page
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]  # no staging left behind
    assert [p.name for p in out.parent.parent.iterdir()] == ["site"]


def test_bad_input_is_one_line_and_writes_nothing(history, tmp_path, capsys):
    settings, _ = history
    out = tmp_path / "index.html"
    assert main(["report", "--metrics", str(tmp_path / "none.jsonl"), "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: no metrics file at") and "\n" not in error
    assert main(["report", "--metrics", str(settings.metrics_log_path), "--out", str(tmp_path)])
    assert "is a folder; give a file path" in capsys.readouterr().err
    assert not out.exists()


def test_missing_store_is_a_note_not_a_failure(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps(RUNS_7D[0]) + "\n")
    out = tmp_path / "index.html"
    args = ["report", "--metrics", str(metrics), "--out", str(out)]
    assert main([*args, "--db", str(tmp_path / "none.sqlite")]) == 0
    assert "Realized accuracy unavailable: no forecast database at" in out.read_text()


def test_service_run_refreshes_the_page(tmp_path):
    done = run_service("forecaster_7d", tmp_path, **FAST_MEMBERS)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "output" / "report" / "index.html").read_text()
    assert '<section id="forecaster_7d">' in page and "(1 runs, from " in page  # this very run
    record = metrics_lines(tmp_path / "metrics.jsonl")[-1]
    assert record["status"] == "ok"
    # Why the intervals are as wide as they are: the yardstick and the factors the line holds.
    c = record["calibration"]
    assert c["yardstick"] == "5-day moves"
    assert (
        html.escape(
            f"regime_conformal on 5-day moves: recent volatility {c['fast_vol']:.3%} per day "
            f"against {c['long_vol']:.3%} over the reference window, so the members' widths "
            f"x {c['factor']:.3f}; then x {c['correction80']:.3f} (80%)"
        )
        in page
    )


def test_a_page_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path):
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "report").write_text("a file where the report folder goes")
    done = run_service("forecaster_7d", tmp_path, **FAST_MEMBERS)
    assert done.returncode == 0, done.stderr
    record = metrics_lines(tmp_path / "metrics.jsonl")[-1]
    assert record["status"] == "ok"
    assert any(w.startswith("report not refreshed at ") for w in record["warnings"])
    assert (tmp_path / "output" / "forecaster_7d" / "2024-11-29" / "forecast.json").is_file()


def test_stale_data_and_other_alerts_are_shown_in_red(tmp_path):
    """The run judged its data stale: the section's alert names it, and the newest close is red;
    a warning (a degraded run) is orange. Each names its state."""
    stale = run("forecaster_7d", "2026-02-16", status="degraded")
    stale["data"] = {
        "data_source": "cache",
        "data_reason": "cache at least as new as the embedded snapshot",
        "newest": {"USDCLP": "2026-02-06"},
        "age_days": 10,
        "stale": True,
        "stale_data_days": 7,
    }
    degraded = run("forecaster_15d", "2026-02-16", status="degraded")
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps(stale) + "\n" + json.dumps(degraded) + "\n")
    settings = Settings(
        metrics_log_path=metrics, forecast_db=tmp_path / "none.sqlite", cache_dir=None
    )
    page = build_page(settings, NOW, structlog.get_logger())
    seven = section(page, "forecaster_7d")
    assert "<h2>forecaster_7d: CRITICAL</h2>" in seven
    alert = "stale data: newest USD/CLP close (2026-02-06) is 14 days old (limit STALE_DATA_DAYS=7)"
    assert f'<p class="alert">CRITICAL: {alert}' in seven
    newest = "USD/CLP 2026-02-06 (14 days old now, 10 at the last success)"
    assert (
        f'<td class=text>newest close</td><td class=text><span class="alert">{newest}</span>'
        in seven
    )
    assert "off in this service (DATA_REFRESH=false)" in seven
    fifteen = section(page, "forecaster_15d")
    assert '<p class="warn">WARNING: last run degraded: newest data row is 9 days' in fifteen
    assert ".alert{color:#b00020" in page and ".warn{color:#b35900" in page


def test_a_long_history_draws_only_its_newest_runs(tmp_path):
    """Hourly runs for weeks: the page draws the newest REPORT_RUNS of each service and stays
    small; what lies before them (a corrupt line at the start) is never read."""
    start = pd.Timestamp("2026-01-01T00:00:00+00:00")
    lines = ["\x00 torn at the start"]
    for hour in range(600):
        for service in ("forecaster_7d", "forecaster_15d", "forecaster_30d", "forecaster_90d"):
            record = run(
                service,
                "2026-01-01",
                member_map=members(chronos={"status": "ok", "score": 2.0, "weight": 0.2}),
                chronos=chronos_block("ok", load=1.5, predict=0.8),
            )
            record["timestamp"] = (start + pd.Timedelta(hours=hour)).isoformat()
            lines.append(json.dumps(record))
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(lines) + "\n")
    out = tmp_path / "index.html"
    args = ["report", "--metrics", str(metrics), "--db", str(tmp_path / "none.sqlite")]
    assert main([*args, "--out", str(out)]) == 0
    page = out.read_text()
    assert f"the newest {REPORT_RUNS} runs of each service ({4 * REPORT_RUNS} runs, from " in page
    assert "metrics lines skipped" not in page
    assert out.stat().st_size < 5 * 2**20


HEAVY_REFRESH = """
import sys
from fxforecast.cli import main
from fxforecast.ops import service

refresh = service.refresh_after_run


def heavy_refresh(*args, **kwargs):
    block = bytearray(400 * 2**20)
    block[::4096] = b"x" * len(range(0, len(block), 4096))  # every page resident
    refresh(*args, **kwargs)


service.refresh_after_run = heavy_refresh
sys.exit(main(["run", "--horizon", "7"]))
"""


def test_the_runs_peak_memory_includes_the_report_refresh(tmp_path):
    """A refresh that needs 400 MB more than the forecast shows in the run's peak_rss_mb (a
    forecast with the random walk alone peaks near 250 MB)."""
    env = service_env(tmp_path, **FAST_MEMBERS)
    done = subprocess.run(
        [sys.executable, "-c", HEAVY_REFRESH], env=env, cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert metrics_lines(tmp_path / "metrics.jsonl")[-1]["peak_rss_mb"] > 400


WIDE, NARROW = 1000, 380
BLANK_SVG = base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="300">'
    b'<rect width="800" height="300" fill="white"/></svg>'
).decode()


def blank(pixels, chart: dict) -> bool:
    """A chart whose area in the screenshot is (nearly) all one colour: nothing drawn."""
    top, left = round(chart["y"]), round(chart["x"])
    area = pixels[top : top + round(chart["h"]), left : left + round(chart["w"])]
    inked = (area.min(axis=2) < 0.75).mean()  # share of pixels clearly darker than white
    return area.size == 0 or chart["h"] < 100 or inked < 0.01 or area.std() < 0.03


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_a_real_browser_draws_every_chart(history, tmp_path):
    _, page = history
    path, doctored = tmp_path / "index.html", tmp_path / "doctored.html"
    path.write_text(page)
    # The same page with its first SVG chart blanked: the check below must catch it.
    doctored.write_text(
        re.sub(
            r"data:image/svg\+xml;base64,[^\"]+",
            f"data:image/svg+xml;base64,{BLANK_SVG}",
            page,
            count=1,
        )
    )
    browser = Browser(tmp_path / "profile")
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable")
        browser.load(path, WIDE)
        errors, charts, pixels = (
            browser.console_errors(),
            browser.charts(),
            browser.screenshot(WIDE),
        )
        browser.load(doctored, WIDE)
        shot = browser.screenshot(WIDE)
        doctored_blank = [c["alt"] for c in browser.charts() if blank(shot, c)]
        browser.load(path, NARROW)
        narrow_width = browser.evaluate("document.documentElement.scrollWidth")
        narrow_charts = browser.charts()
    finally:
        browser.close()
    assert errors == []
    # 7 charts for 7d, 4 for 15d (it has no fan chart file), none for services that never ran.
    assert len(charts) == page.count('<img class="chart"') == 11
    assert [c["alt"] for c in charts if not c["decoded"] or blank(pixels, c)] == []
    assert doctored_blank == ["rolling interval coverage and absolute error against no change"]
    # A narrow window: nothing wider than the window, the charts shrink to fit.
    assert narrow_width <= NARROW
    assert all(0 < c["w"] <= NARROW for c in narrow_charts)
