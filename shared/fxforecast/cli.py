"""The `fxforecast` command. Every failure is one line on stderr and a non-zero exit code."""

import argparse
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from .errors import ConfigError, FxError
from .evaluation.command import add_backtest, backtest, date_arg, positive_arg
from .horizons import HORIZONS
from .settings import Settings, load_settings


def service_arg(text: str) -> str:
    """A plain name: it names files under OUTPUT_DIR and LOG_DIR, so never a path."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text) or ".." in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a plain name (letters, digits, '_', '-', '.'; no '/' or '..'), "
            "e.g. forecaster_7d"
        )
    return text


def _add_run(sub):
    run = sub.add_parser("run", help="run one forecasting service once")
    run.add_argument("--service", type=service_arg, help="service name (default forecaster_<H>d)")
    run.add_argument(
        "--horizon",
        type=int,
        required=True,
        choices=sorted(HORIZONS),
        help="horizon in calendar days",
    )
    run.add_argument("--env-file", type=Path, help="the service's .env file")
    run.add_argument("--as-of", type=date_arg, help="forecast as of this date (yyyy-mm-dd)")
    run.add_argument("--data-dir", type=Path, help="folder with market_daily.csv, rates_daily.csv")
    run.add_argument("--output-dir", type=Path, help="where forecasts are written")
    run.add_argument("--debug", action="store_true", help="show tracebacks")


def _run(args) -> int:
    from .ops.runas import refuse_root_in_service_folders, run_folders
    from .ops.runlog import metrics_path_despite, record_settings_error
    from .ops.service import run_service  # the heavy imports only for commands that need them

    service = args.service or f"forecaster_{args.horizon}d"
    try:
        settings = load_settings(args.env_file, data_dir=args.data_dir, output_dir=args.output_dir)
    except ConfigError as exc:  # monitoring must see this run too
        refuse_root_in_service_folders([metrics_path_despite(args.env_file).parent])
        record_settings_error(service, args.horizon, args.env_file, str(exc))
        raise
    refuse_root_in_service_folders(run_folders(settings))
    return run_service(service, args.horizon, settings, args.as_of, args.debug)


def _add_fetch_data(sub):
    fetch = sub.add_parser("fetch-data", help="refresh the local data cache from the live sources")
    fetch.add_argument("--env-file", type=Path, help="a service's .env file (for the source URLs)")
    fetch.add_argument(
        "--data-dir", type=Path, help="the cache folder (default DATA_DIR, else data/)"
    )


def _fetch_data(args) -> int:
    from .ops.fetch import fetch_data
    from .ops.runas import refuse_root_in_service_folders, run_folders

    settings = load_settings(args.env_file, data_dir=args.data_dir)
    refuse_root_in_service_folders(run_folders(settings))
    return fetch_data(settings)


def _add_status(sub):
    from .ops.status import EXIT_CODES_HELP

    status = sub.add_parser(
        "status",
        help="each service's health from the metrics file, as a monitoring plugin (exit 0 OK, "
        "1 WARNING, 2 CRITICAL, 3 UNKNOWN); --accuracy: realized accuracy of stored forecasts",
        description=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--env-file", type=Path, help="a .env file to take the paths from")
    status.add_argument("--metrics", type=Path, help="metrics file (default METRICS_LOG_PATH)")
    status.add_argument("--db", type=Path, help="forecast database (default FORECAST_DB)")
    status.add_argument("--data-dir", type=Path, help="data with the actual rates (DATA_DIR)")
    status.add_argument(
        "--last",
        type=positive_arg,
        default=10,
        metavar="N",
        help="runs per service the rates and maxima cover (default 10)",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--accuracy",
        action="store_true",
        help="realized errors, rel_MAE and coverage over 3, 6, 12 months",
    )


def _status(args) -> int:
    from .ops.accuracy import show_accuracy
    from .ops.status import EXIT_CODES, UNKNOWN, show_status

    try:
        settings = load_settings(
            args.env_file,
            metrics_log_path=args.metrics,
            forecast_db=args.db,
            data_dir=args.data_dir,
        )
    except ConfigError as exc:  # status cannot tell: UNKNOWN
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CODES[UNKNOWN]
    if args.accuracy:
        return show_accuracy(settings, args.json)
    return show_status(settings, args.last, args.json, datetime.now(UTC))


def _add_report(sub):
    report = sub.add_parser(
        "report", help="one self-contained HTML page of every service's history, for operators"
    )
    report.add_argument("--env-file", type=Path, help="a .env file to take the paths from")
    report.add_argument("--out", type=Path, help="the page (default OUTPUT_DIR/report/index.html)")
    report.add_argument("--metrics", type=Path, help="metrics file (default METRICS_LOG_PATH)")
    report.add_argument("--db", type=Path, help="forecast database (default FORECAST_DB)")
    report.add_argument("--output-dir", type=Path, help="the services' OUTPUT_DIR (fan charts)")
    report.add_argument("--data-dir", type=Path, help="data with the actual rates (DATA_DIR)")


def _report(args) -> int:
    from .ops.report.page import default_path, write_report
    from .ops.runas import refuse_root_in_service_folders
    from .ops.runlog import configure_logging

    settings = load_settings(
        args.env_file,
        metrics_log_path=args.metrics,
        forecast_db=args.db,
        output_dir=args.output_dir,
        data_dir=args.data_dir,
    )
    out = args.out or default_path(settings)
    folders = [settings.log_dir, out.parent, out.parent.parent]
    refuse_root_in_service_folders(folders + ([settings.cache_dir] if settings.cache_dir else []))
    log = configure_logging("report", settings.log_dir)
    out = write_report(settings, out, datetime.now(UTC), log)
    print(f"report: {out}")
    return 0


def _add_rollout(sub):
    rollout = sub.add_parser("rollout", help="switch Chronos on or off for one service")
    rollout.add_argument("--service", required=True, help="e.g. forecaster_7d")
    rollout.add_argument("--chronos", required=True, choices=["on", "off"])
    rollout.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="project or install folder holding services/ (default: here)",
    )


def _rollout(args) -> int:
    from .ops.rollout import set_chronos

    print(set_chronos(args.root, args.service, args.chronos == "on"))
    return 0


def _add_chronos_download(sub):
    download = sub.add_parser(
        "chronos-download", help="save a Chronos-Bolt model into a folder, for offline servers"
    )
    download.add_argument("--model", default=Settings.chronos_model, help="Hugging Face id")
    download.add_argument(
        "--to",
        type=Path,
        default=Path("models/chronos-bolt-small"),
        help="folder to save config.json and model.safetensors in",
    )


def _chronos_download(args) -> int:
    from .engine.members.chronos_library import download

    folder = download(args.model, args.to).resolve()
    print(f"saved {args.model} in {folder}; set CHRONOS_MODEL={folder} and HF_HUB_OFFLINE=1")
    return 0


def _add_chronos_export(sub):
    export = sub.add_parser(
        "chronos-export",
        help="check the numpy path against the library on a local Chronos-Bolt model folder and "
        "mark it for the fast path (needs torch, which the services then no longer import)",
    )
    export.add_argument(
        "--model", type=Path, required=True, help="the folder holding config.json and weights"
    )


def _chronos_export(args) -> int:
    from .engine.members.chronos_export import export

    print(export(args.model))
    return 0


def _add_cache(sub):
    cache = sub.add_parser(
        "cache", help="the member cache (CACHE_DIR): its size and last run (info), or empty it"
    )
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--env-file", type=Path, help="a .env file to take CACHE_DIR from")
    cache.add_argument("--cache-dir", type=Path, help="the cache folder (default CACHE_DIR)")


def _cache(args) -> int:
    from .engine.member_cache import CacheUnusable, describe, member_cache
    from .ops.report import charts_folder

    store = member_cache(load_settings(args.env_file, cache_dir=args.cache_dir))
    if store is None:
        print("the member cache is off (CACHE_DIR is empty)")
        return 0
    try:
        if args.action == "clear":
            print(store.clear())
        else:
            print(describe(store.info()))
    except CacheUnusable as exc:
        raise ConfigError(str(exc)) from None
    charts = charts_folder(store.folder)
    kept = list(charts.glob("*.html"))
    if args.action == "clear":
        shutil.rmtree(charts, ignore_errors=True)
        print(f"removed {len(kept)} report charts from {charts}")
    else:
        size = sum(path.stat().st_size for path in kept)
        print(f"report charts: {len(kept)}, {size / 1e6:.1f} MB in {charts}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fxforecast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    add_backtest(sub)
    _add_fetch_data(sub)
    _add_status(sub)
    _add_report(sub)
    _add_rollout(sub)
    _add_chronos_download(sub)
    _add_chronos_export(sub)
    _add_cache(sub)
    return parser


COMMANDS = {
    "run": _run,
    "backtest": backtest,
    "fetch-data": _fetch_data,
    "status": _status,
    "report": _report,
    "rollout": _rollout,
    "chronos-download": _chronos_download,
    "chronos-export": _chronos_export,
    "cache": _cache,
}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except FxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # e.g. a log or output folder that cannot be created
        print(f"error: {exc}; check the path and its permissions", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
