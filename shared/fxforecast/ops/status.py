"""`fxforecast status`: each service's health from metrics.jsonl (the accuracy of stored
forecasts is ops/accuracy.py)."""

import json
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..errors import FxError
from ..horizons import HORIZONS
from ..settings import Settings

SUCCESS = ("ok", "degraded")
# Services run weekly: a success older than a week and a day means a Monday was missed.
STALE_AFTER_DAYS = 8
STANDARD_SERVICES = [f"forecaster_{days}d" for days in sorted(HORIZONS)]


def run_timestamp(record: dict) -> datetime | None:
    try:
        moment = datetime.fromisoformat(record["timestamp"])
    except (KeyError, TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """The valid run records in file order, and one warning per line that was skipped."""
    if not path.is_file():
        raise FxError(
            f"no metrics file at {path}; run a service first, or point "
            "METRICS_LOG_PATH (or --metrics) at the file the services write"
        )
    runs, skipped = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skipped.append(f"{path} line {number}: not valid JSON (corrupt or truncated)")
                continue
            if (
                not isinstance(record, dict)
                or not isinstance(record.get("service"), str)
                or run_timestamp(record) is None
            ):
                skipped.append(f"{path} line {number}: no service name or timestamp")
                continue
            wrong = _wrong_types(record)
            if wrong:
                skipped.append(f"{path} line {number}: {wrong}")
                continue
            runs.append(record)
    return runs, skipped


NUMBER = (int, float)
OPTIONAL_TEXT = (str, type(None))
# The fields status reads, with the types a run writes; a line with anything else is skipped.
RECORD_TYPES = {
    "status": (str,),
    "error": OPTIONAL_TEXT,
    "as_of": OPTIONAL_TEXT,
    "warnings": (list,),
    "members": (dict,),
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


def _numbers(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if isinstance(r.get(key), int | float)]


def _members(record: dict) -> dict:
    members = record.get("members")
    return members if isinstance(members, dict) else {}


def _chronos(recent: list[dict]) -> dict:
    """The last run's Chronos status and its mean weight over the recent runs that used it."""
    seen = [m["chronos"] for r in recent if isinstance((m := _members(r)).get("chronos"), dict)]
    used = [c.get("weight") or 0.0 for c in seen if c.get("status") != "disabled"]
    return {
        "status": seen[-1].get("status") if seen else "absent",
        "mean_weight": round(statistics.fmean(used), 4) if used else None,
        "runs_used": len(used),
    }


def _failed_members(recent: list[dict]) -> dict:
    failed = {}
    for record in recent:
        for name, member in _members(record).items():
            if isinstance(member, dict) and member.get("status") == "failed":
                entry = failed.setdefault(name, {"count": 0})
                entry["count"] += 1
                entry["last_reason"] = member.get("reason")
                entry["last_time"] = record["timestamp"]
    return failed


def service_health(runs: list[dict], last_n: int, now: datetime) -> dict:
    """Health of one service from its runs (file order); `alerts` is empty when healthy."""
    if not runs:
        return {"runs": 0, "alerts": ["no run recorded"]}
    recent = runs[-last_n:]
    last = runs[-1]
    successes = [r for r in runs if r.get("status") in SUCCESS]
    days_since = (
        round((now - run_timestamp(successes[-1])).total_seconds() / 86400, 1)
        if successes
        else None
    )
    runtimes, peaks = _numbers(recent, "runtime_s"), _numbers(recent, "peak_rss_mb")
    alerts = []
    if last.get("status") not in SUCCESS:
        alerts.append(f"last run {last.get('status')}: {last.get('error')}")
    if days_since is None:
        alerts.append("no successful run recorded")
    elif days_since > STALE_AFTER_DAYS:
        alerts.append(f"last success {days_since} days ago (limit {STALE_AFTER_DAYS})")
    return {
        "runs": len(runs),
        "last_run": last["timestamp"],
        "last_status": last.get("status"),
        "last_as_of": last.get("as_of"),
        "last_warnings": last.get("warnings") or [],
        "days_since_success": days_since,
        "recent_runs": len(recent),
        "recent_successes": sum(r.get("status") in SUCCESS for r in recent),
        "success_rate": round(sum(r.get("status") in SUCCESS for r in recent) / len(recent), 3),
        "runtime_s_p50": round(statistics.median(runtimes), 3) if runtimes else None,
        "runtime_s_max": max(runtimes, default=None),
        "peak_rss_mb_max": max(peaks, default=None),
        "chronos": _chronos(recent),
        "failed_members": _failed_members(recent),
        "alerts": alerts,
    }


def health_report(metrics_path: Path, last_n: int, now: datetime) -> dict:
    runs, skipped = read_metrics(metrics_path)
    by_service = {name: [] for name in STANDARD_SERVICES}
    for record in runs:
        by_service.setdefault(record["service"], []).append(record)
    services = {name: service_health(rs, last_n, now) for name, rs in by_service.items()}
    return {
        "metrics": str(metrics_path),
        "generated_at": now.isoformat(timespec="seconds"),
        "last_n": last_n,
        "skipped_lines": skipped,
        "services": services,
        "healthy": not any(s["alerts"] for s in services.values()),
    }


def _format_health(report: dict) -> str:
    lines = [f"metrics: {report['metrics']} (last {report['last_n']} runs per service)"]
    for name, s in report["services"].items():
        lines.append(f"{name}: {'ALERT' if s['alerts'] else 'OK'}")
        lines += [f"  ! {alert}" for alert in s["alerts"]]
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
    """Print the health report; exit 1 when any service needs attention (for a monitoring cron)."""
    report = health_report(settings.metrics_log_path, last_n, now)
    for warning in report["skipped_lines"]:
        print(f"warning: {warning}; skipped", file=sys.stderr)
    print(json.dumps(report, indent=2) if as_json else _format_health(report))
    return 0 if report["healthy"] else 1
