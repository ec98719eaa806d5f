import pytest
from fxforecast.marketdata.schema import default_data_dir, load_raw


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
