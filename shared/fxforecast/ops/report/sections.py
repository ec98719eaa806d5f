"""The report's HTML per service: tables and charts, section by section."""

import base64
import html

import numpy as np
import pandas as pd

from ...quantiles import QUANTILE_COLUMNS, chance_text
from ...settings import Settings
from ..status import SUCCESS, data_texts
from .charts import (
    Charts,
    Html,
    accuracy_chart,
    chronos_chart,
    monthly_chart,
    resources_chart,
    scores_chart,
    weights_chart,
)
from .history import (
    FAILURES_TABLED,
    RUN_STATUSES,
    as_dict,
    last_failures,
    member_table,
    monthly_runs,
    number,
    one_line,
    rolling_accuracy,
    when,
)

HEALTH_LAST_N = 10  # as `fxforecast status`
# What a section draws, so that the page's size and cost do not grow with the history: two
# years of weekly runs (and of scored forecasts).
REPORT_RUNS = 104
MONTHS_TABLED = 12
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


def _data_facts(data: dict) -> list[list]:
    """Which data the forecast came from and why, how old it is, the last successful refresh;
    the newest close in red when the run judged it stale."""
    texts = data_texts(data)
    if data["stale"]:
        texts["newest close"] = Html(
            f'<span class="alert">{html.escape(texts["newest close"])}</span>'
        )
    return [[name, text] for name, text in texts.items()]


def width_text(calibration: dict) -> str | None:
    """Why the intervals are as wide as they are, from the metrics line's calibration block: the
    yardstick the regime is measured on, its two volatilities and the factors applied."""
    factor, fast, long = (number(calibration.get(k)) for k in ("factor", "fast_vol", "long_vol"))
    if not isinstance(calibration.get("yardstick"), str) or np.isnan([factor, fast, long]).any():
        return None
    corrections = [number(calibration.get(f"correction{level}")) for level in (80, 95)]
    corrected = (
        f"; then x {corrections[0]:.3f} (80%) and x {corrections[1]:.3f} (95%) for how such "
        "widths covered the recent validation paths"
        if not np.isnan(corrections).any()
        else ""
    )
    return (
        f"{calibration.get('method')} on {calibration['yardstick']}: recent volatility "
        f"{fast:.3%} per day against {long:.3%} over the reference window, so the members' "
        f"widths x {factor:.3f}{corrected}"
    )


def _latest(runs: list[dict], health: dict, settings: Settings, colours: dict) -> str:
    last_good = next((r for r in reversed(runs) if r.get("status") in SUCCESS), None)
    if last_good is None:
        return '<p class="note">No successful run yet: no forecast to show.</p>'
    forecast = as_dict(last_good.get("forecast"))
    facts = [
        ["as of", last_good.get("as_of")],
        ["target date", last_good.get("target_date")],
        ["status", last_good.get("status")],
        ["run at (UTC)", when(last_good["timestamp"])],
        *(_data_facts(health["data"]) if health["data"]["source"] else []),
        *[["warning", w] for w in last_good.get("warnings") or []],
    ]
    if widths := width_text(as_dict(last_good.get("calibration"))):
        facts.append(["interval widths", widths])
    parts = [_table(["", ""], facts, text_columns=2)]
    parts.append(
        _table(
            ["target-date quantile (CLP per USD)", *QUANTILE_COLUMNS],
            [["", *[number(forecast.get(q)) for q in QUANTILE_COLUMNS]]],
        )
    )
    members = [
        [
            _swatch(name, colours),
            m.get("status"),
            number(m.get("weight")),
            number(m.get("score")),
            number(m.get("seconds")),
            m.get("reason"),
        ]
        for name, m in as_dict(last_good.get("members")).items()
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
        figure = (
            f'<figure><img class="chart" alt="fan chart of the latest forecast" '
            f'src="data:image/png;base64,{data_uri}"></figure>'
        )
    else:
        figure = f'<p class="note">No fan chart at {html.escape(str(chart))}.</p>'
    side = _thresholds(last_good)
    parts.append(f'<div class="beside">{figure}<div class="side">{side}</div></div>')
    return "".join(parts)


def _thresholds(run: dict) -> str:
    """The chance of ending above each RATE_THRESHOLDS rate on the target date, as the run
    read it off its published quantiles (entries not shaped as a run writes them are left out)."""
    entries = [
        t
        for t in run.get("thresholds") or []
        if isinstance(t, dict)
        and isinstance(t.get("rate"), int | float)
        and isinstance(t.get("p_above"), int | float)
        and t.get("bound") in (None, "at most", "at least")
    ]
    if not entries:
        return (
            '<p class="note">No RATE_THRESHOLDS set for this service: give rates in its .env '
            "for the chance that USD/CLP ends above each of them.</p>"
        )
    rows = [[f"{t['rate']:,g}", chance_text(t)] for t in entries]
    header = ["rate (CLP per USD)", f"chance USD/CLP ends above it on {run.get('target_date')}"]
    return _table(header, rows, text_columns=0)


def _accuracy(name: str, accuracy: dict | None, scored: pd.DataFrame, draw: Charts) -> str:
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
    return table + note + draw(accuracy_chart, rolling_accuracy(rows).iloc[-REPORT_RUNS:])


def _chronos(runs: list[dict], colours: dict, draw: Charts) -> str:
    blocks = [(r, as_dict(r.get("chronos"))) for r in runs]
    if not any(b.get("enabled") or b.get("status") not in (None, "disabled") for _, b in blocks):
        return '<p class="note">Chronos was never enabled for this service.</p>'
    reasons = [
        [when(r["timestamp"]), b.get("status"), one_line(b.get("reason") or "")]
        for r, b in reversed(blocks)
        if b.get("status") in ("skipped", "failed")
    ][:FAILURES_TABLED]
    table = (
        _table(["run at (UTC)", "status", "reason"], reasons, text_columns=3)
        if reasons
        else '<p class="note">Chronos was never skipped and never failed.</p>'
    )
    return draw(chronos_chart, runs, colours) + table


def _monthly(runs: list[dict], draw: Charts) -> str:
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
    return draw(monthly_chart, monthly) + _table(
        ["month", *RUN_STATUSES, "runs", "success rate"], rows
    )


def _failures(runs: list[dict]) -> str:
    failures = last_failures(runs)
    if not failures:
        return '<p class="note">No failed run and no failed member.</p>'
    rows = [[when(f["time"]), f["what"], f["error"]] for f in failures]
    return _table(["run at (UTC)", "what", "error"], rows, text_columns=3)


def service_section(name, runs, health, settings, accuracy, scored, colours, draw) -> str:
    head = f'<section id="{html.escape(name)}"><h2>{html.escape(name)}: {health["state"]}</h2>'
    alerts = _problems(health)
    if not runs:
        return f"{head}{alerts}<p class='note'>Never ran: no line in the metrics log.</p></section>"
    # A member that was never weighted (never scored) has nothing to draw there.
    weights = member_table(runs, "weight")
    weights = weights.loc[:, weights.fillna(0).gt(0).any()]
    scores = member_table(runs, "score").dropna(axis=1, how="all")
    body = [
        "<h3>Latest forecast</h3>",
        _latest(runs, health, settings, colours),
        "<h3>Realized accuracy</h3>",
        _accuracy(name, accuracy, scored, draw),
        "<h3>Member weights</h3>",
        draw(weights_chart, weights, colours) if weights.shape[1] else _NOTHING,
        "<h3>Member validation scores</h3>",
        draw(scores_chart, scores, colours) if scores.shape[1] else _NOTHING,
        "<h3>Chronos</h3>",
        _chronos(runs, colours, draw),
        "<h3>Run time and memory</h3>",
        draw(resources_chart, runs),
        "<h3>Runs per month</h3>",
        _monthly(runs, draw),
        "<h3>Last failures</h3>",
        _failures(runs),
    ]
    return head + alerts + "".join(body) + "</section>"


def _problems(health: dict) -> Html:
    """The alerts in red, the warnings in orange, each naming its state."""
    return Html(
        "".join(f'<p class="alert">CRITICAL: {html.escape(a)}</p>' for a in health["alerts"])
        + "".join(f'<p class="warn">WARNING: {html.escape(w)}</p>' for w in health["warnings"])
    )


def overview(healths: dict) -> str:
    rows = []
    for name, h in healths.items():
        since = h.get("days_since_success")
        rows.append(
            [
                Html(f'<a href="#{html.escape(name)}">{html.escape(name)}</a>'),
                h["state"],
                h["runs"],
                when(h["last_run"]) if h["runs"] else None,
                h.get("last_status"),
                "never" if since is None and h["runs"] else since,
                f"{h['recent_successes']}/{h['recent_runs']}" if h["runs"] else None,
                _problems(h) or "none",
            ]
        )
    header = [
        "service",
        "state",
        "runs shown",
        "last run (UTC)",
        "last status",
        "days since success",
        f"successes, last {HEALTH_LAST_N}",
        "alerts and warnings",
    ]
    return _table(header, rows, text_columns=5)
