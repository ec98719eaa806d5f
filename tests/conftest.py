from pathlib import Path

import pytest
from fxforecast.marketdata.schema import default_data_dir, load_raw

from benchmarks.bench_chronos import save_random_bolt

# A ChronosBolt small enough to build in a second with the library's own classes (the real
# weights cannot be downloaded here): the real loading and prediction path, random weights.
TINY = dict(d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1, num_heads=2)


@pytest.fixture(scope="session")
def raw():
    """The shipped snapshot, loaded once."""
    return load_raw()


@pytest.fixture
def data_copy(tmp_path):
    """A writable copy of the snapshot's two files."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("market_daily.csv", "rates_daily.csv"):
        (folder / name).write_bytes((default_data_dir() / name).read_bytes())
    return folder


@pytest.fixture(scope="session")
def tiny_bolt(tmp_path_factory) -> Path:
    return save_random_bolt(tmp_path_factory.mktemp("models") / "tiny-bolt", **TINY)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`fxforecast run --horizon 7` in this process, every output under tmp_path, the random
    walk only, no setting of the caller's environment; returns (exit code, stdout, stderr)."""
    from fxforecast.cli import main
    from fxforecast.settings import KEYS
    from helpers import ANY_DATA_AGE, FAST_MEMBERS

    monkeypatch.chdir(tmp_path)
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in {
        **FAST_MEMBERS,
        **ANY_DATA_AGE,
        "OUTPUT_DIR": tmp_path / "output",
        "LOG_DIR": tmp_path / "logs",
        "METRICS_LOG_PATH": tmp_path / "metrics.jsonl",
        "FORECAST_DB": tmp_path / "forecasts.sqlite",
    }.items():
        monkeypatch.setenv(key, str(value))

    def run(*args, **env):
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        code = main(["run", "--horizon", "7", *map(str, args)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
