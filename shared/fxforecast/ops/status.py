"""`fxforecast status`: each service's health from the newest lines of metrics.jsonl (the accuracy
of stored forecasts is ops/accuracy.py), in the style of a monitoring plugin: every finding has
a state, and the exit code is the worst one (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN when
status cannot read what it needs).

The metrics file is read from its end, only as far back as the runs shown: a history of any
length costs the same. Lines a run could not append there went to runlog.FALLBACK_METRICS,
marked with the file they were meant for; they are read too, and a service whose newest run
went there is an alert."""

import json
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..errors import FxError
from ..horizons import HORIZONS
from ..settings import Settings
from .runlog import FALLBACK_METRICS

SUCCESS = ("ok", "degraded")
# Services run weekly: a success older than a week and a day means a Monday was missed.
STALE_AFTER_DAYS = 8
STANDARD_SERVICES = [f"forecaster_{days}d" for days in sorted(HORIZONS)]
OK, WARNING, CRITICAL, UNKNOWN = "OK", "WARNING", "CRITICAL", "UNKNOWN"
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}
EXIT_CODES_HELP = """Each service's health from the newest runs in the metrics file, in the style
of a monitoring plugin: the first line sums up, every service and finding names its state, and
the exit code is the worst state found:
  0 OK        every service ran within 8 days on fresh data
  1 WARNING   a last run degraded or warned, a feed of the last refresh failed, or metrics
              lines were skipped as corrupt
  2 CRITICAL  a last run failed; no success for more than 8 days; a service never ran; stale
              data (the last run's newest USD/CLP close older than its STALE_DATA_DAYS); or
              the last run's metrics line went to the fallback file
  3 UNKNOWN   status cannot read what it needs (no metrics file, a bad setting)"""
# However few runs it has found, reading stops this far from the end (about 5,000 lines).
MAX_READ_BYTES = 8 * 2**20
_CHUNK = 2**16


def run_timestamp(record: dict) -> datetime | None:
    try:
        moment = datetime.fromisoformat(record["timestamp"])
    except (KeyError, TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


NUMBER = (int, float)
OPTIONAL_TEXT = (str, type(None))
# The fields status reads, with the types a run writes; a line with anything else is skipped.
RECORD_TYPES = {
    "status": (str,),
    "error": OPTIONAL_TEXT,
    "as_of": OPTIONAL_TEXT,
    "warnings": (list,),
    "members": (dict,),
    "data": (dict,),
    "runtime_s": (*NUMBER, type(None)),
    "peak_rss_mb": (*NUMBER, type(None)),
}
MEMBER_TYPES = {"status": OPTIONAL_TEXT, "reason": OPTIONAL_TEXT, "weight": (*NUMBER, type(None))}


def _wrong_types(record: dict) -> str | None:
    """What makes a valid JSON line unusable as a run record, or None."""
    for key, types in RECORD_TYPES.items():
        if key in record and not isinstance(record[key], types):
            return f"{key} is a {type(record[key]).__name__}, not what a run writes"
    if not all(isinstance(w, str) for w in record.get("warnings", [])):
        return "warnings holds something other than text"
    for name, member in record.get("members", {}).items():
        if not isinstance(member, dict):
            return f"members.{name} is not an object"
        for key, types in MEMBER_TYPES.items():
            if key in member and not isinstance(member[key], types):
                return (
                    f"members.{name}.{key} is a {type(member[key]).__name__}, not what a run writes"
                )
    return None


def _problem(text: bytes) -> tuple[dict | None, str | None]:
    """The run record of one line, or why the line is not one."""
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, "not valid JSON (corrupt or truncated)"
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("service"), str)
        or run_timestamp(record) is None
    ):
        return None, "no service name or timestamp"
    wrong = _wrong_types(record)
    return (None, wrong) if wrong else (record, None)


def _lines_from_end(handle, max_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """The file's lines newest first, each with whether it is the file's first line, read
    backwards in blocks; stops once `max_bytes` are read (the line cut there is dropped)."""
    end = position = handle.seek(0, os.SEEK_END)
    rest, newest = b"", True
    while position > 0:
        if end - position >= max_bytes:
            return
        size = min(_CHUNK, position)
        position -= size
        handle.seek(position)
        lines = (handle.read(size) + rest).split(b"\n")
        if newest and lines[-1] == b"":
            lines.pop()  # the file's final newline ends the last line; it starts none
        rest, newest = lines.pop(0), False  # the start of a line begun in an earlier block
        for line in reversed(lines):
            yield line, False
    yield rest, True


@dataclass
class History:
    """The newest runs of one metrics file (oldest first) and the lines skipped on the way."""

    path: Path
    runs: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    whole: bool = False  # the whole file was read

    def of(self, service: str) -> list[dict]:
        return [r for r in self.runs if r["service"] == service]


def read_recent(
    path: Path, per_service: int, keep: Callable[[dict], bool] | None = None
) -> History:
    """The newest runs: read back from the end until every standard service and every service
    seen has `per_service` runs (of those `keep` accepts), or MAX_READ_BYTES were read."""
    history, counts, found = History(path), dict.fromkeys(STANDARD_SERVICES, 0), []
    number = 0
    with open(path, "rb") as handle:
        for number, (line, first) in enumerate(_lines_from_end(handle, MAX_READ_BYTES), 1):
            history.whole = first
            if not line.strip():
                continue
            record, problem = _problem(line)
            if problem:
                found.append((number, problem))
            elif keep is None or keep(record):
                history.runs.append(record)
                counts[record["service"]] = counts.get(record["service"], 0) + 1
                if min(counts.values()) >= per_service:
                    break
    for from_end, problem in reversed(found):
        where = (
            f"line {number - from_end + 1}" if history.whole else f"line {from_end} from the end"
        )
        history.skipped.append(f"{path} {where}: {problem}")
    history.runs.reverse()
    return history


def read_runs(metrics_path: Path, per_service: int) -> History:
    """The newest runs of the metrics file, with those of its runs whose line went to
    FALLBACK_METRICS merged in by time (each still carries `metrics_log_path`)."""
    meant = str(metrics_path.resolve())
    try:
        fallback = read_recent(
            FALLBACK_METRICS, per_service, lambda r: r.get("metrics_log_path") == meant
        ).runs
    except OSError:  # none there, or not readable: nothing to find
        fallback = []
    try:
        history = read_recent(metrics_path, per_service)
    except (FileNotFoundError, NotADirectoryError):
        if not fallback:
            raise FxError(
                f"no metrics file at {metrics_path}; run a service first, or point "
                "METRICS_LOG_PATH (or --metrics) at the file the services write"
            ) from None
        history = History(metrics_path, whole=True)
    except OSError as exc:
        raise FxError(
            f"cannot read the metrics file {metrics_path}: {exc.strerror}; check its permissions"
        ) from None
    if fallback:
        history.runs = sorted(history.runs + fallback, key=run_timestamp)
    return history


def _numbers(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if isinstance(r.get(key), int | float)]


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _chronos(recent: list[dict]) -> dict:
    """The last run's Chronos status and its mean weight over the recent runs that used it."""
    seen = [
        m["chronos"]
        for r in recent
        if isinstance((m := _as_dict(r.get("members"))).get("chronos"), dict)
    ]
    used = [c.get("weight") or 0.0 for c in seen if c.get("status") != "disabled"]
    return {
        "status": seen[-1].get("status") if seen else "absent",
        "mean_weight": round(statistics.fmean(used), 4) if used else None,
        "runs_used": len(used),
    }


def _failed_members(recent: list[dict]) -> dict:
    failed = {}
    for record in recent:
        for name, member in _as_dict(record.get("members")).items():
            if isinstance(member, dict) and member.get("status") == "failed":
                entry = failed.setdefault(name, {"count": 0})
                entry["count"] += 1
                entry["last_reason"] = member.get("reason")
                entry["last_time"] = record["timestamp"]
    return failed


def _days_between(earlier: str | None, now: datetime) -> int | None:
    try:
        return (now.date() - datetime.fromisoformat(earlier).date()).days
    except (TypeError, ValueError):
        return None


def data_health(good: dict | None, runs: list[dict], now: datetime) -> dict:
    """Which data the last successful run used and why, how old its newest USD/CLP close is (at
    that run and now), whether the run judged it stale, and the last successful refresh."""
    data = _as_dict(good.get("data")) if good else {}
    newest = _as_dict(data.get("newest")).get("USDCLP") or data.get("last_date")
    refreshed = [r for r in runs if _as_dict(r.get("data")).get("data_source") == "live"]
    refresh = _as_dict(data.get("refresh"))
    return {
        "source": data.get("data_source"),
        "reason": data.get("data_reason"),
        "newest_close": newest,
        "age_days_at_run": data.get("age_days"),
        "age_days_now": _days_between(newest, now),
        "stale": data.get("stale") is True,
        "stale_data_days": data.get("stale_data_days"),
        "refresh": {k: v for k, v in refresh.items() if isinstance(v, str)} if good else {},
        "refresh_on": "refresh" in data,
        "refresh_error": data.get("refresh_error"),
        "last_refresh": refreshed[-1]["timestamp"] if refreshed else None,
    }


def _alerts(last: dict, good: dict | None, days_since, data: dict, whole: bool, count: int):
    alerts = []
    if "metrics_log_path" in last:
        alerts.append(
            f"the last run's metrics line went to {FALLBACK_METRICS}, not the metrics file: "
            "fix METRICS_LOG_PATH or the file's owner and permissions (the run's log says why)"
        )
    if last.get("status") not in SUCCESS:
        alerts.append(f"last run {last.get('status')}: {last.get('error')}")
    if good is None:
        alerts.append(
            "no successful run recorded"
            if whole
            else f"no successful run in the newest {count} runs read"
        )
    elif days_since > STALE_AFTER_DAYS:
        alerts.append(f"last success {days_since} days ago (limit {STALE_AFTER_DAYS})")
    if data["stale"]:
        alerts.append(
            f"stale data: newest USD/CLP close ({data['newest_close']}) is "
            f"{data['age_days_now']} days old (limit STALE_DATA_DAYS={data['stale_data_days']}); "
            f"the run of {good['timestamp'][:10]} published a degraded forecast from it"
        )
    return alerts


def _warnings(last: dict, data: dict) -> list[str]:
    """Problems of a last run that succeeded, short of an alert."""
    if last.get("status") not in SUCCESS or data["stale"]:
        return []
    warnings = []
    run_warnings = last.get("warnings") or []
    failed = [
        n for n, m in _as_dict(last.get("members")).items() if _as_dict(m).get("status") == "failed"
    ]
    if last.get("status") == "degraded":
        reasons = [*run_warnings, *(f"member {name} failed" for name in failed)]
        warnings.append(f"last run degraded: {'; '.join(reasons) or 'see its metrics line'}")
    elif run_warnings:
        warnings.append(f"last run warned: {'; '.join(run_warnings)}")
    trouble = [f"{k} {v}" for k, v in data["refresh"].items() if not v.startswith("ok")]
    if data["refresh_error"]:
        trouble.append(data["refresh_error"])
    if trouble:
        warnings.append(f"last refresh: {'; '.join(trouble)}")
    return warnings


def service_health(runs: list[dict], last_n: int, now: datetime, whole: bool = True) -> dict:
    """Health of one service from its newest runs (oldest first): its state, the alerts that
    make it CRITICAL and the warnings that make it WARNING. `whole`: the runs are all it has."""
    if not runs:
        text = "no run recorded" if whole else "no run in the newest part of the metrics file read"
        return {"runs": 0, "state": CRITICAL, "alerts": [text], "warnings": []}
    recent = runs[-last_n:]
    last = runs[-1]
    successes = [r for r in runs if r.get("status") in SUCCESS]
    good = successes[-1] if successes else None
    days_since = round((now - run_timestamp(good)).total_seconds() / 86400, 1) if good else None
    data = data_health(good, runs, now)
    alerts = _alerts(last, good, days_since, data, whole, len(runs))
    warnings = _warnings(last, data)
    runtimes, peaks = _numbers(recent, "runtime_s"), _numbers(recent, "peak_rss_mb")
    return {
        "runs": len(runs),
        "state": CRITICAL if alerts else WARNING if warnings else OK,
        "alerts": alerts,
        "warnings": warnings,
        "last_run": last["timestamp"],
        "last_status": last.get("status"),
        "last_as_of": last.get("as_of"),
        "last_warnings": last.get("warnings") or [],
        "days_since_success": days_since,
        "data": data,
        "recent_runs": len(recent),
        "recent_successes": sum(r.get("status") in SUCCESS for r in recent),
        "success_rate": round(sum(r.get("status") in SUCCESS for r in recent) / len(recent), 3),
        "runtime_s_p50": round(statistics.median(runtimes), 3) if runtimes else None,
        "runtime_s_max": max(runtimes, default=None),
        "peak_rss_mb_max": max(peaks, default=None),
        "chronos": _chronos(recent),
        "failed_members": _failed_members(recent),
    }


def worst(states) -> str:
    return max(states, key=EXIT_CODES.__getitem__, default=OK)


def service_names(history: History) -> list[str]:
    """The standard services, then any other name in the runs read, newest first."""
    others = dict.fromkeys(r["service"] for r in reversed(history.runs))
    return STANDARD_SERVICES + [name for name in others if name not in STANDARD_SERVICES]


def health_report(metrics_path: Path, last_n: int, now: datetime) -> dict:
    history = read_runs(metrics_path, last_n)
    services = {
        name: service_health(history.of(name), last_n, now, history.whole)
        for name in service_names(history)
    }
    states = [s["state"] for s in services.values()]
    return {
        "metrics": str(metrics_path),
        "generated_at": now.isoformat(timespec="seconds"),
        "last_n": last_n,
        "state": worst([*states, WARNING if history.skipped else OK]),
        "skipped_lines": history.skipped,
        "services": services,
    }


def _summary(report: dict) -> str:
    problems = [
        f"{name}: {text}"
        for name, s in report["services"].items()
        for text in (s["alerts"] or s["warnings"])
    ]
    if report["skipped_lines"]:
        problems.append(f"{len(report['skipped_lines'])} metrics line(s) skipped")
    healthy = f"{len(report['services'])} services OK"
    return f"{report['state']}: {'; '.join(problems) or healthy}"


def data_texts(data: dict) -> dict[str, str]:
    """The last successful run's data facts (from `data_health`) as status prints them and the
    report shows them."""
    newest = data["newest_close"]
    if newest is None:
        close = "not recorded"
    else:
        close = (
            f"USD/CLP {newest} ({data['age_days_now']} days old now, "
            f"{data['age_days_at_run']} at the last success)"
        )
    if not data["refresh_on"]:
        refresh = "off in this service (DATA_REFRESH=false)"
    else:
        refresh = data["last_refresh"] or "none in the runs read"
    return {
        "data": f"{data['source']}: {data['reason'] or 'no reason recorded'}",
        "newest close": close,
        "last refresh": refresh,
    }


def _data_lines(data: dict) -> list[str]:
    if data["source"] is None:
        return []
    return [f"  {name:<16}{text}" for name, text in data_texts(data).items()]


def _format_health(report: dict) -> str:
    lines = [
        _summary(report),
        f"metrics: {report['metrics']} (the newest {report['last_n']} runs per service)",
    ]
    if report["skipped_lines"]:
        lines.append(
            f"WARNING: {len(report['skipped_lines'])} metrics line(s) skipped as corrupt or "
            "partial (listed on stderr)"
        )
    for name, s in report["services"].items():
        lines.append(f"{name}: {s['state']}")
        lines += [f"  CRITICAL  {alert}" for alert in s["alerts"]]
        lines += [f"  WARNING   {warning}" for warning in s["warnings"]]
        if not s["runs"]:
            continue
        chronos = s["chronos"]
        weight = (
            ""
            if chronos["mean_weight"] is None
            else f", mean weight {chronos['mean_weight']:.3f} over {chronos['runs_used']} runs"
        )
        since = s["days_since_success"]
        lines += [
            f"  last run        {s['last_run']}  {s['last_status']} (as of {s['last_as_of']})",
            f"  last success    {'never' if since is None else f'{since} days ago'}",
            *_data_lines(s["data"]),
            f"  success rate    {s['recent_successes']}/{s['recent_runs']} runs",
            f"  runtime         p50 {s['runtime_s_p50']} s, max {s['runtime_s_max']} s",
            f"  peak RSS max    {s['peak_rss_mb_max']} MB",
            f"  chronos         {chronos['status']}{weight}",
        ]
        lines += [f"  warning         {warning}" for warning in s["last_warnings"]]
        for member, failed in s["failed_members"].items():
            lines.append(
                f"  failed member   {member} {failed['count']}x, last "
                f"{failed['last_time']}: {failed['last_reason']}"
            )
    return "\n".join(lines)


def show_status(settings: Settings, last_n: int, as_json: bool, now: datetime) -> int:
    """Print the health report; the exit code is its state's (0 OK, 1 WARNING, 2 CRITICAL,
    3 UNKNOWN when the metrics cannot be read), for a monitoring cron or plugin."""
    try:
        report = health_report(settings.metrics_log_path, last_n, now)
    except FxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CODES[UNKNOWN]
    for warning in report["skipped_lines"]:
        print(f"warning: {warning}; skipped", file=sys.stderr)
    print(json.dumps(report, indent=2) if as_json else _format_health(report))
    return EXIT_CODES[report["state"]]
