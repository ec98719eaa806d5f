"""The `fxforecast` command. Every failure is one line on stderr and a non-zero exit code."""

import argparse
import sys
from pathlib import Path

import pandas as pd

from .errors import ConfigError, FxError
from .horizons import HORIZONS
from .settings import Settings, load_settings


def _date(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(pd.to_datetime(text, format="%Y-%m-%d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a yyyy-mm-dd date") from None


def _add_run(sub):
    run = sub.add_parser("run", help="run one forecasting service once")
    run.add_argument("--service", help="service name (default forecaster_<H>d)")
    run.add_argument("--horizon", type=int, required=True, choices=sorted(HORIZONS),
                     help="horizon in calendar days")
    run.add_argument("--env-file", type=Path, help="the service's .env file")
    run.add_argument("--as-of", type=_date, help="forecast as of this date (yyyy-mm-dd)")
    run.add_argument("--data-dir", type=Path, help="folder with market_daily.csv, rates_daily.csv")
    run.add_argument("--output-dir", type=Path, help="where forecasts are written")
    run.add_argument("--debug", action="store_true", help="show tracebacks")


def _run(args) -> int:
    from .service import run_service  # the heavy imports only for commands that need them

    service = args.service or f"forecaster_{args.horizon}d"
    settings = load_settings(args.env_file, data_dir=args.data_dir, output_dir=args.output_dir)
    return run_service(service, args.horizon, settings, args.as_of, args.debug)


def _add_chronos_download(sub):
    download = sub.add_parser("chronos-download",
                              help="save a Chronos-Bolt model into a folder, for offline servers")
    download.add_argument("--model", default=Settings.chronos_model, help="Hugging Face id")
    download.add_argument("--to", type=Path, default=Path("models/chronos-bolt-small"),
                          help="folder to save config.json and model.safetensors in")


def _chronos_download(args) -> int:
    from .members.chronos import download

    folder = download(args.model, args.to).resolve()
    print(f"saved {args.model} in {folder}; set CHRONOS_MODEL={folder} and HF_HUB_OFFLINE=1")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fxforecast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_chronos_download(sub)
    return parser


COMMANDS = {"run": _run, "chronos-download": _chronos_download}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except FxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
