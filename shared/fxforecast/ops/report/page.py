"""The page: every service's section under an overview, written atomically; refreshed as a
service run's last step."""

import html
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ...errors import ConfigError, FxError
from ...fsio import write_all
from ...settings import Settings
from ..accuracy import accuracy_report, actual_closes, scored_forecasts
from ..status import STANDARD_SERVICES, History, read_runs, service_health, service_names
from ..store import load_forecasts
from . import charts_folder
from .charts import Charts
from .history import member_colours, one_line, when
from .sections import HEALTH_LAST_N, REPORT_RUNS, overview, service_section

SKIPPED_LISTED = 10
# At most this many services beyond the standard four get a section (the others are named).
OTHER_SERVICES_SHOWN = 2
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;
padding:0 12px 40px;color:#222;line-height:1.4;overflow-wrap:anywhere}
h1{font-size:1.5em}h2{border-top:2px solid #444;padding-top:10px;margin-top:36px}
h3{font-size:1.05em;margin:22px 0 6px}
figure{margin:6px 0}img.chart{width:100%;height:auto;display:block}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9em;margin:4px 0}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.text,th.text{text-align:left}
.alert{color:#b00020;font-weight:600}.warn{color:#b35900;font-weight:600}.note{color:#555}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:4px;border-radius:2px}
nav a{margin-right:12px}
.beside{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.beside figure{flex:3 1 480px;min-width:0}.beside .side{flex:1 1 220px;min-width:0}
@media (max-width:600px){body{padding:0 6px}table{font-size:.8em}}
"""


def _realized(settings: Settings, log, raw=None) -> tuple[dict | None, pd.DataFrame, str]:
    """The accuracy report and scored forecasts, or None and why they are unavailable."""
    try:
        forecasts = load_forecasts(settings.forecast_db)
        closes, source = actual_closes(settings, log, raw)
    except FxError as exc:
        return None, pd.DataFrame(), f"Realized accuracy unavailable: {exc}"
    report = accuracy_report(forecasts, closes, source)
    note = (
        f"{len(forecasts)} stored forecasts from {settings.forecast_db}; actuals from "
        f"{report['actuals']} until {report['actuals_until']}."
    )
    return report, scored_forecasts(forecasts, closes), note


def build_page(
    settings: Settings, now: datetime, log, pending: dict | None = None, raw=None
) -> str:
    """The page's HTML from the newest REPORT_RUNS runs of each service. `pending`: a service
    run's own record, not yet appended to the log; `raw`: the market data that run already
    loaded (else it is read)."""
    path = settings.metrics_log_path
    if pending is None or path.is_file():
        history = read_runs(path, REPORT_RUNS)
    else:
        history = History(path, whole=True)
    if pending is not None:
        history.runs.append(pending)
    names = service_names(history)
    shown = names[: len(STANDARD_SERVICES) + OTHER_SERVICES_SHOWN]
    by_service = {name: history.of(name)[-REPORT_RUNS:] for name in shown}
    healths = {
        name: service_health(rs, HEALTH_LAST_N, now, history.whole)
        for name, rs in by_service.items()
    }
    accuracy, scored, accuracy_note = _realized(settings, log, raw)
    runs = [r for rs in by_service.values() for r in rs]
    colours = member_colours(runs)
    notes = ""
    if history.skipped:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in history.skipped[:SKIPPED_LISTED])
        more = len(history.skipped) - SKIPPED_LISTED
        more = f"<li>and {more} more</li>" if more > 0 else ""
        notes += (
            f'<details><summary class="warn">{len(history.skipped)} metrics lines skipped '
            f"(corrupt or partial)</summary><ul>{items}{more}</ul></details>"
        )
    if len(names) > len(shown):
        hidden = ", ".join(names[len(shown) :])
        notes += f'<p class="note">Other services in the log, not shown: {html.escape(hidden)}.</p>'
    draw = Charts(charts_folder(settings.cache_dir))
    sections = "".join(
        service_section(name, rs, healths[name], settings, accuracy, scored, colours, draw)
        for name, rs in by_service.items()
    )
    draw.remove_unused()
    nav = " ".join(f'<a href="#{html.escape(n)}">{html.escape(n)}</a>' for n in by_service)
    oldest = min((r["timestamp"] for r in runs), default=None)
    window = f", from {when(oldest)} UTC" if oldest else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fxforecast report</title><style>{CSS}</style></head><body>"
        "<h1>fxforecast: USD/CLP forecasting services</h1>"
        f'<p class="note">Generated {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC from '
        f"{html.escape(str(path))}: the newest {REPORT_RUNS} runs of each service "
        f"({len(runs)} runs{window}). {html.escape(accuracy_note)}</p>{notes}<nav>{nav}</nav>"
        f"{overview(healths)}{sections}</body></html>"
    )


def default_path(settings: Settings) -> Path:
    return settings.output_dir / "report" / "index.html"


def write_report(
    settings: Settings, out: Path, now: datetime, log, pending: dict | None = None, raw=None
) -> Path:
    """Render the page and put it at `out` atomically (a reader never sees half a page)."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file path such as {out}/index.html")
    page = build_page(settings, now, log, pending, raw)
    write_all(out.parent, {out.name: page.encode()})
    return out


def refresh_after_run(settings: Settings, record: dict, log, raw=None) -> None:
    """A service run's last step: the page, this run included. The forecast is already written,
    so a page that cannot be drawn is a warning in the run's metrics line, never a failure."""
    out, started = default_path(settings), time.perf_counter()
    try:
        write_report(settings, out, datetime.now(UTC), log, pending=record, raw=raw)
        log.info("report refreshed", out=str(out), seconds=round(time.perf_counter() - started, 2))
    except Exception as exc:  # any problem alike: disk, permissions, a record we cannot draw
        record.setdefault("warnings", []).append(
            f"report not refreshed at {out}: {type(exc).__name__}: {one_line(exc)}"
        )
        log.warning("report not refreshed", out=str(out), error=str(exc))
