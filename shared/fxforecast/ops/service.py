"""One service run: settings -> data -> ensemble -> output files -> one metrics line."""

import sys
import time
import traceback
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from .. import __version__
from ..engine import ensemble, gate
from ..engine.member_cache import member_cache
from ..engine.members import configured_members
from ..engine.runner import FitCache
from ..errors import FxError
from ..fsio import fix_for, locked, remove_staging, write_set
from ..horizons import horizon_params
from ..marketdata import load_for_run
from ..marketdata.clean import clean
from ..memory import available_mb, peak_rss_mb
from ..quantiles import QUANTILE_COLUMNS, chance_above, chance_text
from ..settings import Settings
from .interrupt import Interrupted, stop_on_signals
from .outputs import check_not_older, render, steps_table
from .report.page import refresh_after_run
from .runlog import append_record, configure_logging, new_record
from .store import save_forecast


@contextmanager
def service_lock(lock_path: Path, log):
    """One run of a service at a time: a second run waits for the first to finish."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path.touch()
    except OSError as exc:
        raise FxError(
            f"cannot create the service lock {lock_path}: {exc.strerror}; fix LOG_DIR or its "
            "permissions"
        ) from None
    with locked(
        lock_path,
        lambda: log.warning(
            "another run of this service holds the lock; waiting", lock=str(lock_path)
        ),
    ):
        yield


def _payload(service, days, result, status, data, warnings, rates) -> tuple[dict, pd.DataFrame]:
    table = steps_table(result.step_dates, result.quantiles)
    steps = [
        {"date": row["date"], **{c: round(float(row[c]), 4) for c in QUANTILE_COLUMNS}}
        for _, row in table.iterrows()
    ]
    payload = {
        "service": service,
        "as_of": str(result.as_of.date()),
        "horizon_days": days,
        "target_date": table["date"].iloc[-1],
        "status": status,
        "unit": "CLP per USD",
        "last_close": round(float(data.closes().iloc[-1]), 4),
        "steps": steps,
        # For the target date, off the quantiles as published (RATE_THRESHOLDS).
        "thresholds": [chance_above(steps[-1], rate) for rate in rates],
        "weights": {n: round(m.weight, 4) for n, m in result.members.items() if m.weight > 0},
        "members": {n: {"status": m.status, "reason": m.reason} for n, m in result.members.items()},
        "calibration": result.calibration.info(),
        "drift_share": result.combination.drift_share,
        "validation_origins": result.validation_origins,
        "fallback": result.fallback,
        "warnings": warnings,
        "version": __version__,
    }
    return payload, table


def run_service(service: str, days: int, settings: Settings, as_of=None, debug=False) -> int:
    """Run one forecast; return the exit code. Every run appends exactly one metrics line, also a
    run stopped by SIGTERM, SIGHUP or SIGINT (a signal after the forecast waits for the line)."""
    with stop_on_signals() as signals:
        return _run(service, days, settings, as_of, debug, signals)


def _run(service, days, settings, as_of, debug, signals) -> int:
    started = time.perf_counter()
    log = configure_logging(service, settings.log_dir, debug)
    record = new_record(service, days)
    exit_code = 1
    hint = ""
    loaded = {}  # the run's market data, so the report's actuals need not read it again
    try:
        with signals.armed(), service_lock(settings.log_dir / f"{service}.lock", log):
            exit_code = _forecast(service, days, settings, as_of, log, record, loaded)
    except (FxError, Interrupted) as exc:
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
    record["peak_rss_mb"] = peak_rss_mb()  # for the page the refresh draws, this run included
    record["available_mb"] = available_mb()
    refresh_after_run(settings, record, log, loaded.get("raw"))
    record["peak_rss_mb"] = peak_rss_mb()  # the line's figure: the report refresh counts too
    if not append_record(settings.metrics_log_path, record):
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


def _stale_warning(newest: str, age_days: int, settings: Settings) -> str:
    """Why the forecast is degraded by old data, and what to do about it."""
    if settings.data_refresh:
        hint = (
            "the refresh brought nothing newer: check the sources (YAHOO_URL, MINDICADOR_URL, "
            "FRED_URL) and data.refresh in this run's metrics line"
        )
    else:
        hint = (
            "nothing refreshes it: set DATA_REFRESH=true in the service's .env or run "
            "`fxforecast fetch-data` before the runs, and check that the sources answer"
        )
    return (
        f"stale data: the newest USD/CLP close ({newest}) is {age_days} days old (limit "
        f"STALE_DATA_DAYS={settings.stale_data_days}); {hint}"
    )


def _forecast(service, days, settings, as_of, log, record, loaded) -> int:
    params = horizon_params(days)
    resolved = load_for_run(settings, log)  # live refresh -> cache -> snapshot
    loaded["raw"] = resolved.raw
    data = clean(resolved.raw, as_of)
    record["as_of"] = str(data.as_of.date())
    if as_of is None:  # a date asked for on purpose may be any
        check_not_older(settings.output_dir / service, data.as_of)
    age_days = (pd.Timestamp(datetime.now(UTC).date()) - data.as_of).days
    stale = as_of is None and age_days > settings.stale_data_days
    record["data"] = {
        "source": data.source,
        **resolved.as_record(),  # data_source, newest date per series, refresh per feed
        "first_date": str(data.frame.index[0].date()),
        "last_date": str(data.as_of.date()),
        "age_days": age_days,
        "stale": stale,  # `fxforecast status` alerts on it
        "stale_data_days": settings.stale_data_days,
        **data.report.as_dict(),
    }
    warnings = list(data.report.warnings)  # a stopped close or a dropped newest close
    if resolved.repair:
        warnings.append(resolved.repair)
    for warning in warnings:
        log.warning("data signal", warning=warning)
    if data.report.gaps:
        newest = data.report.gaps[-1]
        warnings.append(
            f"{len(data.report.gaps)} gap(s) of more than a long weekend between data rows, "
            f"the newest {newest['after']} to {newest['before']} ({newest['days']} days)"
        )
        log.warning("gaps in the data", gaps=len(data.report.gaps), newest=newest)
    if stale:
        warnings.append(_stale_warning(record["as_of"], age_days, settings))
        # The whole warning, so that the console says what to do too.
        log.warning(warnings[-1], last_date=record["as_of"], age_days=age_days)
    record["warnings"] = warnings
    log.info(
        "data loaded",
        as_of=record["as_of"],
        rows=len(data.frame),
        bad_ticks=len(data.report.bad_ticks),
        stale_closes=data.report.stale_closes,
    )

    members = configured_members(settings, params)
    store = member_cache(settings)
    try:
        result = ensemble.forecast(
            data,
            params,
            members,
            settings.member_timeout_s,
            cache=FitCache(store),
            combiner=settings.combiner,
            calibration=settings.calibration,
            stoppable=True,
        )
    finally:
        for member, _ in members:
            member.release()
    if store is not None:
        cached = result.cached()
        store.record_run(f"{service} as of {record['as_of']}", cached)
        record["cache"] = {"dir": str(store.folder), **cached.as_dict()}
    for member, _ in members:
        if info := member.info(result.members[member.name]):
            record[member.name] = info
    status = "degraded" if result.degraded or stale or data.report.warnings else "ok"
    for name, member in result.members.items():
        if member.status == "failed":
            log.warning("member failed", member=name, reason=member.reason)
    if result.fallback:
        warnings.append(result.fallback)
        log.warning("random walk published", reason=result.fallback)
    payload, table = _payload(
        service, days, result, status, data, warnings, settings.rate_thresholds
    )
    # The last gate, on exactly what would be published (rounded as written).
    published = [[step[c] for c in QUANTILE_COLUMNS] for step in payload["steps"]]
    found = gate.check(published, pd.DatetimeIndex(table["date"]), result.as_of, days)
    if found:
        raise FxError(f"forecast not published, it fails the last check: {'; '.join(found)}")
    service_folder = settings.output_dir / service
    for removed in remove_staging(service_folder):
        log.warning("removed the staging folder of an interrupted run", folder=removed)
    folder = service_folder / payload["as_of"]
    try:
        files = write_set(folder, render(payload, data.filled_close(), table))
    except OSError as exc:
        problem = f"cannot write the forecast into {folder}: {exc.strerror}"
        raise FxError(f"{problem}; {fix_for(exc, folder, 'OUTPUT_DIR')}") from None
    _store(settings.forecast_db, payload, log, record)

    target = payload["steps"][-1]
    record.update(
        status=status,
        target_date=payload["target_date"],
        members={n: m.summary() for n, m in result.members.items()},
        forecast={c: target[c] for c in QUANTILE_COLUMNS},
        thresholds=payload["thresholds"],
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
    if payload["thresholds"]:
        chances = ", ".join(f"{t['rate']:g}: {chance_text(t)}" for t in payload["thresholds"])
        print(f"chance USD/CLP ends above each rate on {payload['target_date']}: {chances}")
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"forecast: {files['forecast.json']}")
    print(f"chart:    {files['fan_chart.png']}")
    return 0
