"""Property-based tests of the data path (Hypothesis; issue 14): randomly corrupted copies of the
snapshot always end in a forecast that passes the last gate or in a one-line error with a
non-zero exit code; never a traceback, a NaN, a partial file or a corrupt metrics line.

Bounded so `make test` stays fast: the examples are derandomized (the same ones on every
machine), most run the loading, cleaning and ensemble path in this process with the random
walk, and a few run the whole 7-day service."""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from fxforecast.engine import ensemble, gate
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.errors import FxError
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import clean
from fxforecast.marketdata.schema import default_data_dir, load_raw
from helpers import FAST_MEMBERS, run_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FILES = ("market_daily.csv", "rates_daily.csv")
# Most corruptions land in the rows a 7-day run reads most (the last ~600).
TAIL_ROWS = 600
BAD_CELLS = ("nan", "inf", "-inf", "abc", "", "1e308", "-0", "1,5")
FACTORS = (0.0, -1.0, 1e-3, 10.0, 1e3, 1e12)
DATE_SHIFTS = (-3650, -400, -7, -1, 1, 3, 30, 3650)

corruption = st.tuples(
    st.sampled_from(("drop", "duplicate", "shuffle", "scale", "inject", "shift")),
    st.sampled_from(FILES),
    st.integers(0, TAIL_ROWS - 1),  # row, counted back from the end
    st.integers(0, 10**6),  # what else the kind needs (length, column, factor, value, shift)
)
PROFILE = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


def corrupt(lines: list[str], kind: str, back: int, extra: int) -> list[str]:
    """Apply one corruption to a CSV file's data lines (header excluded)."""
    lines = list(lines)
    i = len(lines) - 1 - back
    cells = lines[i].split(",")
    column = 1 + extra % (len(cells) - 1)
    if kind == "drop":
        del lines[i : i + 1 + extra % 30]
    elif kind == "duplicate":
        lines.insert(i + 1 if extra % 2 else len(lines), lines[i])
    elif kind == "shuffle":
        block = lines[i : i + 2 + extra % 20]
        lines[i : i + len(block)] = np.random.default_rng(extra).permutation(block).tolist()
    elif kind == "scale" and cells[column].replace(".", "").isdigit():
        cells[column] = repr(float(cells[column]) * FACTORS[extra % len(FACTORS)])
        lines[i] = ",".join(cells)
    elif kind == "inject":
        cells[column] = BAD_CELLS[extra % len(BAD_CELLS)]
        lines[i] = ",".join(cells)
    elif kind == "shift":
        shift = pd.Timedelta(days=DATE_SHIFTS[extra % len(DATE_SHIFTS)])
        cells[0] = str((pd.Timestamp(cells[0]) + shift).date())
        lines[i] = ",".join(cells)
    return lines


def corrupted_copy(folder: Path, corruptions) -> Path:
    folder.mkdir()
    texts = {name: (default_data_dir() / name).read_text().splitlines() for name in FILES}
    for kind, name, back, extra in corruptions:
        header, *rows = texts[name]
        texts[name] = [header, *corrupt(rows, kind, back, extra)]
    for name, lines in texts.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


@settings(max_examples=30, **PROFILE)
@given(st.lists(corruption, min_size=1, max_size=3))
def test_corrupted_data_gives_a_sane_forecast_or_a_one_line_error(corruptions):
    with tempfile.TemporaryDirectory() as tmp:
        folder = corrupted_copy(Path(tmp) / "data", corruptions)
        try:
            data = clean(load_raw(folder))
            result = ensemble.forecast(data, horizon_params(7), [(RandomWalk(), True)], 60)
        except FxError as exc:
            message = str(exc)
            assert message and "\n" not in message
            return
    assert gate.check(result.quantiles, result.step_dates, result.as_of, 7) == []


def refuse(constant):
    raise AssertionError(f"{constant} in forecast.json")


@settings(max_examples=3, **PROFILE)
@given(st.lists(corruption, min_size=1, max_size=3))
def test_a_service_run_on_corrupted_data_publishes_only_sane_files(corruptions):
    tmp = Path(tempfile.mkdtemp())
    try:
        folder = corrupted_copy(tmp / "data", corruptions)
        done = run_service("forecaster_7d", tmp, DATA_DIR=folder, **FAST_MEMBERS)
        assert "Traceback" not in done.stderr
        [line] = [json.loads(text) for text in (tmp / "metrics.jsonl").read_text().splitlines()]
        written = sorted(p.name for p in (tmp / "output").rglob("*")) if done.returncode else []
        if done.returncode == 0:
            assert line["status"] in ("ok", "degraded")
            [forecast] = (tmp / "output/forecaster_7d").glob("*/forecast.json")
            payload = json.loads(forecast.read_text(), parse_constant=refuse)
            quantiles = [[step[q] for q in line["forecast"]] for step in payload["steps"]]
            assert gate.problems(quantiles) == []
        else:
            assert done.returncode in (1, 2, 3) and line["status"] == "failed"
            assert done.stderr.strip().splitlines()[-1].startswith("error: ")
            assert written == []  # no partial file
    finally:
        shutil.rmtree(tmp)
