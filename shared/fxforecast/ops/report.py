"""`fxforecast report`: one self-contained HTML page of every service's history, for operators.

It reads what the services write: the metrics log, the forecast store (joined with the actual
closes, as `status --accuracy` does) and each latest fan chart in OUTPUT_DIR. Charts are inline
SVG data, the fan charts the services' own PNGs: the page opens from disk, with no network.
"""

import base64
import html
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..errors import ConfigError, FxError
from ..members.base import QUANTILE_COLUMNS
from ..outputs import write_all
from ..settings import Settings
from ..status import (
    STANDARD_SERVICES,
    SUCCESS,
    accuracy_report,
    actual_closes,
    read_metrics,
    run_timestamp,
    scored_forecasts,
    service_health,
)
from ..store import load_forecasts

RUN_STATUSES = ("ok", "degraded", "failed")  # anything else in a line counts as failed
ROLLING_FORECASTS = 26  # each accuracy point: the last half-year of weekly forecasts
HEALTH_LAST_N = 10  # as `fxforecast status`
MONTHS_TABLED = 12
FAILURES_TABLED = 10
SKIPPED_LISTED = 10
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
STATUS_COLOURS = {
    "ok": "#2ca02c",
    "degraded": "#ff7f0e",
    "failed": "#d62728",
    "skipped": "#bcbd22",
    "disabled": "#c7c7c7",
}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;
padding:0 12px 40px;color:#222;line-height:1.4}
h1{font-size:1.5em}h2{border-top:2px solid #444;padding-top:10px;margin-top:36px}
h3{font-size:1.05em;margin:22px 0 6px}
figure{margin:6px 0}img.chart{width:100%;height:auto;display:block}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9em;margin:4px 0}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.text,th.text{text-align:left}
.alert{color:#b00020;font-weight:600}.note{color:#555}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:4px;border-radius:2px}
nav a{margin-right:12px}
@media (max-width:600px){body{padding:0 6px}table{font-size:.8em}}
"""


class Html(str):
    """Markup already escaped: table cells take it as it is."""


def _number(value) -> float:
    """A metrics field as a float; missing, non-numeric or non-finite values are NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value) if np.isfinite(value) else np.nan


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _one_line(text) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def run_status(record: dict) -> str:
    status = record.get("status")
    return status if status in RUN_STATUSES else "failed"


def run_times(runs: list[dict]) -> pd.DatetimeIndex:
    """Each run's start in UTC, without a time zone (as matplotlib's dates want them)."""
    return pd.to_datetime([run_timestamp(r) for r in runs], utc=True).tz_convert(None)


def _when(timestamp: str) -> str:
    """A metrics line's timestamp for a table: UTC, to the minute."""
    return f"{run_timestamp({'timestamp': timestamp}).astimezone(UTC):%Y-%m-%d %H:%M}"


def member_colours(runs: list[dict]) -> dict[str, str]:
    """Known members keep their colour; others get a spare one in order of first appearance."""
    colours = dict(MEMBER_COLOURS)
    for record in runs:
        for name in _dict(record.get("members")):
            if name not in colours:
                spare = len(colours) - len(MEMBER_COLOURS)
                colours[name] = SPARE_COLOURS[spare % len(SPARE_COLOURS)]
    return colours


def member_table(runs: list[dict], field: str) -> pd.DataFrame:
    """One row per run, one column per member that ever appeared: its `field` (NaN where a run
    did not have the member or the value)."""
    rows = [
        {name: _number(_dict(m).get(field)) for name, m in _dict(r.get("members")).items()}
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
        for name, member in _dict(record.get("members")).items():
            if _dict(member).get("status") == "failed":
                failures.append(
                    {
                        "time": record["timestamp"],
                        "what": f"member {name}",
                        "error": member.get("reason") or "no reason recorded",
                    }
                )
    newest = failures[::-1][:FAILURES_TABLED]
    return [{**f, "error": _one_line(f["error"])} for f in newest]


# --- charts: matplotlib to SVG, embedded as data URIs so each chart's ids stay its own ---


def _axes(rows: int, height: float):
    fig, axes = plt.subplots(rows, 1, figsize=(8, height), sharex=True, layout="constrained")
    axes = np.atleast_1d(axes)
    for ax in axes:
        ax.grid(alpha=0.3)
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig, axes


def _span(axes, times) -> None:
    """Pad the date axis: a single run or month would otherwise span years."""
    pad = max(pd.Timedelta(days=10), (times.max() - times.min()) * 0.02)
    axes[0].set_xlim(times.min() - pad, times.max() + pad)


def _svg(fig, alt: str) -> Html:
    buffer = io.BytesIO()
    with plt.rc_context({"svg.fonttype": "none"}):  # text as text: smaller, and selectable
        fig.savefig(buffer, format="svg")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return Html(
        f'<figure><img class="chart" alt="{html.escape(alt)}" '
        f'src="data:image/svg+xml;base64,{data}"></figure>'
    )


def _legend(fig, axes) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside upper center", ncols=min(len(labels), 5), frameon=False
    )


def weights_chart(weights: pd.DataFrame, colours: dict) -> Html:
    weights = weights.fillna(0.0)
    # Each run's weights hold until the next run: steps, with the last one a week wide.
    end = weights.index[-1] + pd.Timedelta(days=7)
    x = [*weights.index, end]
    stacked = np.vstack([weights.to_numpy(), weights.to_numpy()[-1:]]).T
    fig, axes = _axes(1, 3.4)
    axes[0].stackplot(
        x,
        stacked,
        labels=list(weights.columns),
        colors=[colours[m] for m in weights.columns],
        step="post",
        alpha=0.9,
    )
    axes[0].set_ylim(0, 1)
    _span(axes, pd.DatetimeIndex(x))
    axes[0].set_ylabel("weight in the ensemble")
    axes[0].set_xlabel("run date (UTC)")
    _legend(fig, axes)
    return _svg(fig, "member weights per run, stacked")


def scores_chart(scores: pd.DataFrame, colours: dict) -> Html:
    fig, axes = _axes(1, 3.4)
    for name in scores.columns:
        column = scores[name].dropna()
        axes[0].plot(
            column.index, column, color=colours[name], marker="o", ms=2.5, lw=1, label=name
        )
    _span(axes, scores.index)
    axes[0].set_ylabel("validation pinball loss (CLP per USD)")
    axes[0].set_xlabel("run date (UTC)")
    _legend(fig, axes)
    return _svg(fig, "validation score of each member per run")


def chronos_chart(runs: list[dict], colours: dict) -> Html:
    times = run_times(runs)
    blocks = [_dict(r.get("chronos")) for r in runs]
    member = [_dict(_dict(r.get("members")).get("chronos")) for r in runs]
    # A failed run records no Chronos status: it gets no marker.
    statuses = [b.get("status") or m.get("status") for b, m in zip(blocks, member, strict=True)]
    weight = np.array([_number(m.get("weight")) for m in member])
    fig, axes = _axes(3, 6.6)
    axes[0].plot(times, weight, color=colours["chronos"], lw=1, label="weight")
    for status in dict.fromkeys(s for s in statuses if s):
        chosen = np.array([s == status for s in statuses])
        axes[0].scatter(
            times[chosen],
            np.nan_to_num(weight[chosen]),
            color=STATUS_COLOURS.get(status, "#000000"),
            s=14,
            zorder=3,
            label=f"status {status}",
        )
    axes[0].set_ylabel("Chronos weight")
    axes[0].set_ylim(bottom=0)
    for ax, keys, unit in (
        (axes[1], ("load_s", "predict_s"), "seconds"),
        (axes[2], ("rss_before_mb", "rss_after_mb", "rss_released_mb"), "RSS (MB)"),
    ):
        for key in keys:
            values = pd.Series([_number(b.get(key)) for b in blocks], index=times).dropna()
            ax.plot(values.index, values, marker="o", ms=2.5, lw=1, label=key.rsplit("_", 1)[0])
        ax.set_ylabel(unit)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper left")
    axes[2].set_xlabel("run date (UTC)")
    _span(axes, times)
    _legend(fig, axes)
    return _svg(fig, "Chronos status, weight, load and predict seconds, RSS per run")


def resources_chart(runs: list[dict]) -> Html:
    times = run_times(runs)
    fig, axes = _axes(2, 4.6)
    for ax, key, label in (
        (axes[0], "runtime_s", "run time (s)"),
        (axes[1], "peak_rss_mb", "peak RSS (MB)"),
    ):
        values = pd.Series([_number(r.get(key)) for r in runs], index=times).dropna()
        ax.plot(values.index, values, color="#1f77b4", marker="o", ms=2.5, lw=1)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    axes[1].set_xlabel("run date (UTC)")
    _span(axes, times)
    return _svg(fig, "run time and peak memory per run")


def monthly_chart(monthly: pd.DataFrame) -> Html:
    x = monthly.index.to_timestamp() + pd.Timedelta(days=14)  # mid-month
    fig, axes = _axes(1, 3.4)
    bottom = np.zeros(len(monthly))
    for status in RUN_STATUSES:
        axes[0].bar(
            x, monthly[status], width=24, bottom=bottom, color=STATUS_COLOURS[status], label=status
        )
        bottom += monthly[status].to_numpy()
    axes[0].set_ylabel("runs per month")
    axes[0].set_xlabel("month (UTC)")
    _span(axes, x)
    rate = axes[0].twinx()
    rate.plot(x, monthly["success_rate"] * 100, color="black", marker="o", ms=3, lw=1)
    rate.set_ylim(0, 105)
    rate.set_ylabel("success rate (%, line)")
    _legend(fig, axes)
    return _svg(fig, "runs per month by status, and the success rate")


def accuracy_chart(rolling: pd.DataFrame) -> Html:
    fig, axes = _axes(2, 4.8)
    for level, colour in ((80, "#1f77b4"), (95, "#9ecae1")):
        axes[0].plot(
            rolling.index,
            rolling[f"coverage_{level}"] * 100,
            color=colour,
            marker="o",
            ms=2.5,
            lw=1.2,
            label=f"{level}% interval",
        )
        axes[0].axhline(level, color=colour, ls="--", lw=1)
    axes[0].set_ylim(0, 105)
    axes[0].set_ylabel(f"coverage (%), last {ROLLING_FORECASTS}")
    axes[1].plot(rolling.index, rolling["abs_error"], color="#1f77b4", marker="o", ms=2.5, lw=1.2)
    axes[1].plot(rolling.index, rolling["no_change_abs_error"], color="#555555", ls="--", lw=1.2)
    axes[1].legend(["ensemble median", "no change"], fontsize=8, loc="upper left")
    axes[1].set_ylabel("mean abs. error (CLP per USD)")
    axes[1].set_xlabel("target date")
    _span(axes, rolling.index)
    _legend(fig, axes)
    return _svg(fig, "rolling interval coverage and absolute error against no change")


# --- the page ---

_NOTHING = '<p class="note">Nothing recorded yet.</p>'


def _cell(value) -> str:
    if isinstance(value, Html):
        return value
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:,.2f}"
    return html.escape("-" if value is None else str(value))


def _table(header: list[str], rows: list[list], text_columns: int = 1) -> str:
    def row(cells, tag):
        return "".join(
            f"<{tag}{' class=text' if i < text_columns else ''}>{_cell(c)}</{tag}>"
            for i, c in enumerate(cells)
        )

    body = "".join(f"<tr>{row(r, 'td')}</tr>" for r in rows)
    return f'<div class="scroll"><table><tr>{row(header, "th")}</tr>{body}</table></div>'


def _percent(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.1%}"


def _swatch(name: str, colours: dict) -> Html:
    return Html(
        f'<span class="swatch" style="background:{colours[name]}"></span>{html.escape(name)}'
    )


def _latest(runs: list[dict], settings: Settings, colours: dict) -> str:
    last_good = next((r for r in reversed(runs) if r.get("status") in SUCCESS), None)
    if last_good is None:
        return '<p class="note">No successful run yet: no forecast to show.</p>'
    data = _dict(last_good.get("data"))
    forecast = _dict(last_good.get("forecast"))
    facts = [
        ["as of", last_good.get("as_of")],
        ["target date", last_good.get("target_date")],
        ["status", last_good.get("status")],
        ["run at (UTC)", _when(last_good["timestamp"])],
        [
            "data",
            f"{data.get('data_source', '-')}, newest row {data.get('age_days', '-')} days old",
        ],
        *[["warning", w] for w in last_good.get("warnings") or []],
    ]
    parts = [_table(["", ""], facts, text_columns=2)]
    parts.append(
        _table(
            ["target-date quantile (CLP per USD)", *QUANTILE_COLUMNS],
            [["", *[_number(forecast.get(q)) for q in QUANTILE_COLUMNS]]],
        )
    )
    members = [
        [
            _swatch(name, colours),
            m.get("status"),
            _number(m.get("weight")),
            _number(m.get("score")),
            _number(m.get("seconds")),
            m.get("reason"),
        ]
        for name, m in _dict(last_good.get("members")).items()
        if isinstance(m, dict)
    ]
    if members:
        header = ["member", "status", "weight", "validation score", "seconds", "reason"]
        parts.append(_table(header, members))
    chart = (
        settings.output_dir / last_good["service"] / str(last_good.get("as_of")) / "fan_chart.png"
    )
    if chart.is_file():
        data_uri = base64.b64encode(chart.read_bytes()).decode()
        parts.append(
            f'<figure><img class="chart" alt="fan chart of the latest forecast" '
            f'src="data:image/png;base64,{data_uri}"></figure>'
        )
    else:
        parts.append(f'<p class="note">No fan chart at {html.escape(str(chart))}.</p>')
    return "".join(parts)


def _accuracy(name: str, accuracy: dict | None, scored: pd.DataFrame) -> str:
    if accuracy is None:
        return '<p class="note">Unavailable: see the note at the top of the page.</p>'
    entry = accuracy["services"].get(name)
    rows = scored[scored["service"] == name] if len(scored) else scored
    if entry is None or not len(rows):
        waiting = entry["pending"] if entry else 0
        return (
            f'<p class="note">No stored forecast has reached its target date yet '
            f"({waiting} awaiting their actual).</p>"
        )
    table = _table(
        ["window", "n", "MAE", "bias", "rel_MAE", "coverage 80%", "coverage 95%"],
        [
            [
                f"last {window}",
                w["n"],
                float(w["mae"]),
                float(w["bias"]),
                "-" if w["rel_mae"] is None else f"{w['rel_mae']:.3f}",
                _percent(w["coverage_80"]),
                _percent(w["coverage_95"]),
            ]
            for window, w in entry["windows"].items()
        ],
    )
    note = (
        f'<p class="note">{entry["stored"]} forecasts stored, {entry["pending"]} awaiting their '
        f"actual; windows end at the newest target date with an actual, "
        f"{entry['newest_target']}. MAE and bias in CLP per USD.</p>"
    )
    return table + note + accuracy_chart(rolling_accuracy(rows))


def _chronos(runs: list[dict], colours: dict) -> str:
    blocks = [(r, _dict(r.get("chronos"))) for r in runs]
    if not any(b.get("enabled") or b.get("status") not in (None, "disabled") for _, b in blocks):
        return '<p class="note">Chronos was never enabled for this service.</p>'
    reasons = [
        [_when(r["timestamp"]), b.get("status"), _one_line(b.get("reason") or "")]
        for r, b in reversed(blocks)
        if b.get("status") in ("skipped", "failed")
    ][:FAILURES_TABLED]
    table = (
        _table(["run at (UTC)", "status", "reason"], reasons, text_columns=3)
        if reasons
        else '<p class="note">Chronos was never skipped and never failed.</p>'
    )
    return chronos_chart(runs, colours) + table


def _monthly(runs: list[dict]) -> str:
    monthly = monthly_runs(runs)
    recent = monthly.iloc[::-1].iloc[:MONTHS_TABLED]
    rows = [
        [
            str(month),
            *[int(row[s]) for s in RUN_STATUSES],
            int(row["runs"]),
            _percent(row["success_rate"]),
        ]
        for month, row in recent.iterrows()
    ]
    return monthly_chart(monthly) + _table(["month", *RUN_STATUSES, "runs", "success rate"], rows)


def _failures(runs: list[dict]) -> str:
    failures = last_failures(runs)
    if not failures:
        return '<p class="note">No failed run and no failed member.</p>'
    rows = [[_when(f["time"]), f["what"], f["error"]] for f in failures]
    return _table(["run at (UTC)", "what", "error"], rows, text_columns=3)


def _service(name, runs, health, settings, accuracy, scored, colours) -> str:
    head = f'<section id="{html.escape(name)}"><h2>{html.escape(name)}</h2>'
    alerts = "".join(f'<p class="alert">{html.escape(a)}</p>' for a in health["alerts"])
    if not runs:
        return f"{head}{alerts}<p class='note'>Never ran: no line in the metrics log.</p></section>"
    # A member that was never weighted (never scored) has nothing to draw there.
    weights = member_table(runs, "weight")
    weights = weights.loc[:, weights.fillna(0).gt(0).any()]
    scores = member_table(runs, "score").dropna(axis=1, how="all")
    body = [
        "<h3>Latest forecast</h3>",
        _latest(runs, settings, colours),
        "<h3>Realized accuracy</h3>",
        _accuracy(name, accuracy, scored),
        "<h3>Member weights</h3>",
        weights_chart(weights, colours) if weights.shape[1] else _NOTHING,
        "<h3>Member validation scores</h3>",
        scores_chart(scores, colours) if scores.shape[1] else _NOTHING,
        "<h3>Chronos</h3>",
        _chronos(runs, colours),
        "<h3>Run time and memory</h3>",
        resources_chart(runs),
        "<h3>Runs per month</h3>",
        _monthly(runs),
        "<h3>Last failures</h3>",
        _failures(runs),
    ]
    return head + alerts + "".join(body) + "</section>"


def _overview(healths: dict) -> str:
    rows = []
    for name, h in healths.items():
        since = h.get("days_since_success")
        rows.append(
            [
                Html(f'<a href="#{html.escape(name)}">{html.escape(name)}</a>'),
                h["runs"],
                _when(h["last_run"]) if h["runs"] else None,
                h.get("last_status"),
                "never" if since is None and h["runs"] else since,
                f"{h['recent_successes']}/{h['recent_runs']}" if h["runs"] else None,
                Html("<br>".join(html.escape(a) for a in h["alerts"]) or "none"),
            ]
        )
    header = [
        "service",
        "runs",
        "last run (UTC)",
        "last status",
        "days since success",
        f"successes, last {HEALTH_LAST_N}",
        "alerts",
    ]
    return _table(header, rows, text_columns=4)


def _realized(settings: Settings, log) -> tuple[dict | None, pd.DataFrame, str]:
    """The accuracy report and scored forecasts, or None and why they are unavailable."""
    try:
        forecasts = load_forecasts(settings.forecast_db)
        closes, source = actual_closes(settings, log)
    except FxError as exc:
        return None, pd.DataFrame(), f"Realized accuracy unavailable: {exc}"
    report = accuracy_report(forecasts, closes, source)
    note = (
        f"{len(forecasts)} stored forecasts from {settings.forecast_db}; actuals from "
        f"{report['actuals']} until {report['actuals_until']}."
    )
    return report, scored_forecasts(forecasts, closes), note


def build_page(settings: Settings, now: datetime, log, pending: dict | None = None) -> str:
    """The page's HTML. `pending`: a service run's own record, not yet appended to the log."""
    path = settings.metrics_log_path
    runs, skipped = read_metrics(path) if pending is None or path.is_file() else ([], [])
    if pending is not None:
        runs.append(pending)
    by_service = {name: [] for name in STANDARD_SERVICES}
    for record in runs:
        by_service.setdefault(record["service"], []).append(record)
    healths = {name: service_health(rs, HEALTH_LAST_N, now) for name, rs in by_service.items()}
    accuracy, scored, accuracy_note = _realized(settings, log)
    colours = member_colours(runs)
    skipped_html = ""
    if skipped:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in skipped[:SKIPPED_LISTED])
        more = len(skipped) - SKIPPED_LISTED
        more = f"<li>and {more} more</li>" if more > 0 else ""
        skipped_html = (
            f'<details><summary class="alert">{len(skipped)} metrics lines skipped (corrupt or '
            f"partial)</summary><ul>{items}{more}</ul></details>"
        )
    sections = "".join(
        _service(name, rs, healths[name], settings, accuracy, scored, colours)
        for name, rs in by_service.items()
    )
    nav = " ".join(f'<a href="#{html.escape(n)}">{html.escape(n)}</a>' for n in by_service)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fxforecast report</title><style>{CSS}</style></head><body>"
        "<h1>fxforecast: USD/CLP forecasting services</h1>"
        f'<p class="note">Generated {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC from '
        f"{html.escape(str(path))} ({len(runs)} runs). "
        f"{html.escape(accuracy_note)}</p>{skipped_html}<nav>{nav}</nav>"
        f"{_overview(healths)}{sections}</body></html>"
    )


def default_path(settings: Settings) -> Path:
    return settings.output_dir / "report" / "index.html"


def write_report(
    settings: Settings, out: Path, now: datetime, log, pending: dict | None = None
) -> Path:
    """Render the page and put it at `out` atomically (a reader never sees half a page)."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file path such as {out}/index.html")
    page = build_page(settings, now, log, pending)
    write_all(out.parent, {out.name: page.encode()})
    return out


def refresh_after_run(settings: Settings, record: dict, log) -> None:
    """A service run's last step: the page, this run included. The forecast is already written,
    so a page that cannot be drawn is a warning in the run's metrics line, never a failure."""
    out, started = default_path(settings), time.perf_counter()
    try:
        write_report(settings, out, datetime.now(UTC), log, pending=record)
        log.info("report refreshed", out=str(out), seconds=round(time.perf_counter() - started, 2))
    except Exception as exc:  # any problem alike: disk, permissions, a record we cannot draw
        record.setdefault("warnings", []).append(
            f"report not refreshed at {out}: {type(exc).__name__}: {_one_line(exc)}"
        )
        log.warning("report not refreshed", out=str(out), error=str(exc))
