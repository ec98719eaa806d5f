"""Run settings: a service's .env file, overridden by the environment, validated in one place."""

import io
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

from dotenv import dotenv_values

from .errors import ConfigError
from .fsio import utf8_text

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    enable_arima: bool = True
    enable_var: bool = True
    enable_rf: bool = True
    enable_rw_empirical: bool = False
    enable_chronos: bool = False
    chronos_model: str = "amazon/chronos-bolt-small"
    chronos_min_available_mb: int = 1000
    chronos_context_length: int | None = None  # None: the horizon's default
    chronos_backend: str = "auto"  # numpy when the model folder holds an export, else library
    chronos_device: str = "auto"  # the library's: cuda when torch finds one, else cpu
    data_dir: Path | None = None  # None: the snapshot embedded in the package
    # Live data (fxforecast.marketdata): refresh the cache before each run, from these sources.
    data_refresh: bool = False
    mindicador_url: str = "https://mindicador.cl"
    yahoo_url: str = "https://query1.finance.yahoo.com"
    fred_url: str = "https://fred.stlouisfed.org"
    data_timeout_s: float = 5.0  # per request: connecting and reading, all of it
    data_refresh_budget_s: float = 60.0  # no request starts later than this into a refresh
    output_dir: Path = Path("output")
    metrics_log_path: Path = Path("logs/metrics.jsonl")
    log_dir: Path = Path("logs")
    forecast_db: Path = Path("data/forecasts.sqlite")  # every forecast, for realized accuracy
    cache_dir: Path | None = Path("data/cache")  # members' paths and fits; None (empty): off
    cache_max_mb: int = 1000  # past this, the least recently used entries are evicted
    stale_data_days: int = 7
    member_timeout_s: float = 120.0
    combiner: str = "greedy"  # how members' forecasts become one (engine/combiner.py)
    calibration: str = "regime_conformal"  # how its intervals are set (engine/calibration.py)
    # CLP per USD: each forecast gives the chance that the rate ends above each of them.
    rate_thresholds: tuple[float, ...] = ()


KEYS = {f.name.upper(): f for f in fields(Settings)}
# Keys that name one of a few methods or places; the engine's registries hold the combiner and
# calibration names (tested).
CHOICES = {
    "COMBINER": ("greedy", "inverse_loss"),
    "CALIBRATION": ("regime_conformal", "regime_conformal_daily", "regime", "split_conformal"),
    "CHRONOS_BACKEND": ("auto", "library", "numpy"),
    "CHRONOS_DEVICE": ("auto", "cpu", "cuda"),
}
# The most a number of seconds may be. A member's timeout bounds a wait on a pipe, which the
# system takes in milliseconds as a 32-bit number (about 24.8 days), and the group of fitting
# members waits up to four of them: a day is far more than a weekly run can use. No refresh
# before a run should ask or wait for longer than an hour.
MAXIMUM = {"MEMBER_TIMEOUT_S": 86400.0, "DATA_TIMEOUT_S": 3600.0, "DATA_REFRESH_BUDGET_S": 3600.0}


def _rates(key: str, text: str, where: str) -> tuple[float, ...]:
    """Comma-separated rates in CLP per USD, each a finite number above 0; sorted, once each."""
    rates = set()
    for part in text.split(",") if text else []:
        try:
            rate = float(part)
        except ValueError:
            rate = math.nan
        if not 0 < rate < math.inf:
            raise ConfigError(
                f"{key}={text!r} in {where}: {part.strip()!r} is not a finite number above 0; give "
                f"rates in CLP per USD separated by commas, e.g. {key}=950,1000"
            )
        rates.add(rate)
    return tuple(sorted(rates))


def _parse(key: str, text: str, where: str):
    kind = KEYS[key].type
    text = text.strip()
    if kind == tuple[float, ...]:
        return _rates(key, text, where)
    if kind is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise ConfigError(f"{key}={text!r} in {where}: expected true or false")
    if kind in (int, int | None):
        if text == "" and kind is not int:
            return None
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{key}={text!r} in {where}: expected a whole number") from None
        if value <= 0:
            raise ConfigError(f"{key}={text!r} in {where}: must be greater than 0")
        return value
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{key}={text!r} in {where}: expected a number") from None
        if not 0 < value < math.inf:
            raise ConfigError(f"{key}={text!r} in {where}: must be a finite number above 0")
        if key in MAXIMUM and value > MAXIMUM[key]:
            raise ConfigError(f"{key}={text!r} in {where}: must be at most {MAXIMUM[key]:g}")
        return value
    if kind in (Path, Path | None):
        if text == "":
            if kind is Path:
                raise ConfigError(f"{key} in {where} is empty: give a path")
            return None
        return Path(text).expanduser()
    if text == "":
        raise ConfigError(f"{key} in {where} is empty: give a value")
    if key in CHOICES and text not in CHOICES[key]:
        raise ConfigError(f"{key}={text!r} in {where}: expected one of {', '.join(CHOICES[key])}")
    return text


def read_env_file(env_file: Path) -> dict[str, str | None]:
    """A .env file's keys and values; ConfigError when it is missing, a folder, unreadable or
    not UTF-8 text (naming the first byte that is not)."""
    try:
        content = env_file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"--env-file {env_file} does not exist; give an existing .env file"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"--env-file {env_file} is a folder; give the .env file in it, e.g. {env_file / '.env'}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read --env-file {env_file}: {exc.strerror}") from None
    try:
        text = utf8_text(content)
    except ValueError as exc:
        raise ConfigError(f"{env_file} is not UTF-8 text ({exc}); save it as UTF-8") from None
    return dotenv_values(stream=io.StringIO(text))


def load_settings(env_file: Path | None = None, environ=None, **overrides) -> Settings:
    """Defaults < the .env file < environment variables < explicit overrides (CLI flags)."""
    environ = os.environ if environ is None else environ
    values = {}
    if env_file is not None:
        for key, text in read_env_file(env_file).items():
            if key not in KEYS:
                raise ConfigError(
                    f"unknown key {key} in {env_file}; known keys: {', '.join(sorted(KEYS))}"
                )
            values[key] = _parse(key, text or "", str(env_file))
    for key in KEYS:
        if key in environ:
            values[key] = _parse(key, environ[key], "the environment")
    kwargs = {KEYS[key].name: value for key, value in values.items()}
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**kwargs)
    if settings.chronos_backend == "numpy" and settings.chronos_device == "cuda":
        raise ConfigError(
            "CHRONOS_BACKEND=numpy runs on the CPU only; for CHRONOS_DEVICE=cuda set "
            "CHRONOS_BACKEND=library or auto"
        )
    return settings
