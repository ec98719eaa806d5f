"""One service run: settings -> data -> ensemble -> output files -> one metrics line."""

import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from .. import __version__
from ..engine import ensemble
from ..engine.members import configured_members
from ..errors import FxError
from ..fsio import locked, write_all
from ..horizons import horizon_params
from ..marketdata import load_for_run
from ..marketdata.clean import clean
from ..memory import available_mb, peak_rss_mb
from ..quantiles import QUANTILE_COLUMNS
from ..settings import Settings
from .outputs import render, steps_table
from .report.page import refresh_after_run
from .runlog import append_metrics, configure_logging
from .store import save_forecast


def service_lock(lock_path: Path, log):
    """One run of a service at a time: a second run waits for the first to finish."""
    return locked(
        lock_path,
        lambda: log.warning(
            "another run of this service holds the lock; waiting", lock=str(lock_path)
        ),
    )


def _payload(service, days, result, status, data) -> tuple[dict, pd.DataFrame]:
    table = steps_table(result.step_dates, result.quantiles)
    payload = {
        "service": service,
        "as_of": str(result.as_of.date()),
        "horizon_days": days,
        "target_date": table["date"].iloc[-1],
        "status": status,
        "unit": "CLP per USD",
        "last_close": round(float(data.closes().iloc[-1]), 4),
        "steps": [
            {"date": row["date"], **{c: round(float(row[c]), 4) for c in QUANTILE_COLUMNS}}
            for _, row in table.iterrows()
        ],
        "weights": {n: round(m.weight, 4) for n, m in result.members.items() if m.weight > 0},
        "members": {n: {"status": m.status, "reason": m.reason} for n, m in result.members.items()},
        "calibration": result.calibration.info(),
        "drift_share": result.combination.drift_share,
        "validation_origins": result.validation_origins,
        "version": __version__,
    }
    return payload, table


def run_service(service: str, days: int, settings: Settings, as_of=None, debug=False) -> int:
    """Run one forecast; return the exit code. Every run appends exactly one metrics line."""
    started = time.perf_counter()
    log = configure_logging(service, settings.log_dir, debug)
    record = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "service": service,
        "horizon_days": days,
        "as_of": None,
        "status": "failed",
        "error": None,
        "version": __version__,
    }
    exit_code = 1
    hint = ""
    loaded = {}  # the run's market data, so the report's actuals need not read it again
    try:
        with service_lock(settings.log_dir / f"{service}.lock", log):
            exit_code = _forecast(service, days, settings, as_of, log, record, loaded)
    except FxError as exc:
        record["error"] = str(exc)
        exit_code = exc.exit_code
        log.error("run failed", error=str(exc))
    except Exception as exc:  # the user sees one line; --debug shows the traceback
        record["error"] = f"{type(exc).__name__}: {exc}"
        log.error("run failed unexpectedly", error=record["error"])
        if debug:
            traceback.print_exc()
        else:
            hint = " (run with --debug for the traceback)"
    record["runtime_s"] = round(time.perf_counter() - started, 3)
    record["peak_rss_mb"] = peak_rss_mb()
    record["available_mb"] = available_mb()
    refresh_after_run(settings, record, log, loaded.get("raw"))
    try:
        append_metrics(settings.metrics_log_path, record)
    except OSError as exc:
        print(
            f"error: cannot append to METRICS_LOG_PATH={settings.metrics_log_path}: "
            f"{exc.strerror}; fix the path or its permissions",
            file=sys.stderr,
        )
        exit_code = exit_code or 1
    if record["status"] == "failed":
        print(f"error: {record['error']}{hint}", file=sys.stderr)
    return exit_code


def _store(db_path, payload, log, record) -> None:
    """Keep the forecast for realized accuracy; the files are already written, so a failure
    here is a warning in the metrics line, not a failed run."""
    try:
        save_forecast(db_path, payload)
    except Exception as exc:  # any storage problem (disk, lock, corrupt file) alike
        record["warnings"].append(f"forecast not stored in {db_path}: {exc}")
        log.warning("forecast not stored", db=str(db_path), error=str(exc))


def _forecast(service, days, settings, as_of, log, record, loaded) -> int:
    params = horizon_params(days)
    resolved = load_for_run(settings, log)  # live refresh -> cache -> snapshot
    loaded["raw"] = resolved.raw
    data = clean(resolved.raw, as_of)
    record["as_of"] = str(data.as_of.date())
    age_days = (pd.Timestamp(datetime.now(UTC).date()) - data.as_of).days
    record["data"] = {
        "source": data.source,
        **resolved.as_record(),  # data_source, newest date per series, refresh per feed
        "first_date": str(data.frame.index[0].date()),
        "last_date": str(data.as_of.date()),
        "age_days": age_days,
        **data.report.as_dict(),
    }
    warnings = []
    if as_of is None and age_days > settings.stale_data_days:
        warnings.append(
            f"newest data row is {age_days} days old (limit STALE_DATA_DAYS="
            f"{settings.stale_data_days})"
        )
        log.warning("stale data", last_date=record["as_of"], age_days=age_days)
    record["warnings"] = warnings
    log.info(
        "data loaded",
        as_of=record["as_of"],
        rows=len(data.frame),
        bad_ticks=len(data.report.bad_ticks),
        stale_closes=data.report.stale_closes,
    )

    members = configured_members(settings, params)
    try:
        result = ensemble.forecast(
            data,
            params,
            members,
            settings.member_timeout_s,
            combiner=settings.combiner,
            calibration=settings.calibration,
        )
    finally:
        for member, _ in members:
            member.release()
    for member, _ in members:
        if info := member.info(result.members[member.name]):
            record[member.name] = info
    status = "degraded" if result.degraded else "ok"
    for name, member in result.members.items():
        if member.status == "failed":
            log.warning("member failed", member=name, reason=member.reason)
    payload, table = _payload(service, days, result, status, data)
    folder = settings.output_dir / service / payload["as_of"]
    files = write_all(folder, render(payload, data.filled_close(), table))
    _store(settings.forecast_db, payload, log, record)

    target = payload["steps"][-1]
    record.update(
        status=status,
        target_date=payload["target_date"],
        members={n: m.summary() for n, m in result.members.items()},
        forecast={c: target[c] for c in QUANTILE_COLUMNS},
        combiner=settings.combiner,
        calibration=result.calibration.info(),
        **result.combination.info(),
        outputs=files,
    )
    log.info(
        "forecast written",
        status=status,
        target_date=payload["target_date"],
        median=target["q0.5"],
        folder=str(folder),
    )
    print(
        f"{service}: {status}; USD/CLP on {payload['target_date']}: median "
        f"{target['q0.5']:.1f}, 80% [{target['q0.1']:.1f}, {target['q0.9']:.1f}], "
        f"95% [{target['q0.025']:.1f}, {target['q0.975']:.1f}]"
    )
    print(f"forecast: {files['forecast.json']}")
    print(f"chart:    {files['fan_chart.png']}")
    return 0
