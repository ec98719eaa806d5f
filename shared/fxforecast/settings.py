"""Run settings: a service's .env file, overridden by the environment, validated in one place."""

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

from dotenv import dotenv_values

from .errors import ConfigError

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


KEYS = {f.name.upper(): f for f in fields(Settings)}
# Keys that name one of a few methods or places; the engine's registries hold the combiner and
# calibration names (tested).
CHOICES = {
    "COMBINER": ("greedy", "inverse_loss"),
    "CALIBRATION": ("regime_conformal", "regime", "split_conformal"),
    "CHRONOS_BACKEND": ("auto", "library", "numpy"),
    "CHRONOS_DEVICE": ("auto", "cpu", "cuda"),
}


def _parse(key: str, text: str, where: str):
    kind = KEYS[key].type
    text = text.strip()
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


def load_settings(env_file: Path | None = None, environ=None, **overrides) -> Settings:
    """Defaults < the .env file < environment variables < explicit overrides (CLI flags)."""
    environ = os.environ if environ is None else environ
    values = {}
    if env_file is not None:
        if not env_file.is_file():
            raise ConfigError(f"--env-file {env_file} does not exist; give an existing .env file")
        for key, text in dotenv_values(env_file).items():
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
