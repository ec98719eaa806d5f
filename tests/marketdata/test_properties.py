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
from fxforecast.engine import ensemble
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.errors import ConfigError, DataError, FxError
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import BAD_TICK_LOG_JUMP, clean
from fxforecast.marketdata.schema import default_data_dir, load_raw
from fxforecast.marketdata.signals import STOPPED_REFUSE_BDAYS, STOPPED_WARN_BDAYS
from fxforecast.settings import load_settings
from helpers import FAST_MEMBERS, assert_publishable, run_service
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
    assert_publishable(result.quantiles, result.step_dates, result.as_of, 7)


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
            dates = [step["date"] for step in payload["steps"]]
            assert_publishable(quantiles, dates, payload["as_of"], 7)
        else:
            assert done.returncode in (1, 2, 3) and line["status"] == "failed"
            assert done.stderr.strip().splitlines()[-1].startswith("error: ")
            assert written == []  # no partial file
    finally:
        shutil.rmtree(tmp)


# Issue 21: level shifts, flat stretches, torn files and odd encodings. Each runs in this
# process on a copy of the snapshot's files (the loader and cleaner every run uses).

MARKET = default_data_dir() / "market_daily.csv"
SHIFT_FACTORS = (1.3, 2.0, 10.0, 100.0, 1e3, 0.5, 0.1, 0.01, 1e-3)


def _market_lines() -> list[str]:
    return MARKET.read_text().splitlines()


def _write_market(folder: Path, lines: list[str]) -> Path:
    folder.mkdir()
    (folder / "market_daily.csv").write_text("\n".join(lines) + "\n")
    shutil.copy(default_data_dir() / "rates_daily.csv", folder)
    return folder


def _set_usdclp(lines: list[str], rows: range, value) -> list[str]:
    lines = list(lines)
    for i in rows:
        cells = lines[i].split(",")
        cells[1] = value(cells[1])
        lines[i] = ",".join(cells)
    return lines


@settings(max_examples=25, **PROFILE)
@given(st.sampled_from(SHIFT_FACTORS), st.integers(1, 800), st.integers(0, 300))
def test_a_level_shift_is_refused_naming_it_or_never_forecast_from_silently(factor, length, gap):
    """USD/CLP times `factor` on `length` rows ending `gap` rows before the end: two or more
    closes in a row are refused, naming their dates, count and factor; a run that goes on
    starts from the file's newest close or says why not."""
    lines = _market_lines()
    end = len(lines) - gap
    start = max(1, end - length)
    edited = _set_usdclp(lines, range(start, end), lambda c: repr(float(c) * factor) if c else c)
    with tempfile.TemporaryDirectory() as tmp:
        raw = load_raw(_write_market(Path(tmp) / "data", edited))
    shifted = raw.market["USDCLP"].iloc[start - 1 : end - 1].dropna()
    try:
        data = clean(raw)
    except DataError as exc:
        message = str(exc)
        assert len(shifted) >= 2 and "\n" not in message and "a level shift" in message
        assert message.startswith(f"{raw.source}/market_daily.csv: the USDCLP closes from ")
        first, last = shifted.index[0].date(), shifted.index[-1].date()
        if abs(np.log(factor)) > 2 * BAD_TICK_LOG_JUMP:  # every shifted close is beyond the bound
            assert f"from {first} to {last} ({len(shifted)} in a row) are " in message
            said = float(message.split(" are ")[1].split("x the level")[0])
            assert abs(np.log(said / factor)) < np.log(1.15)
        else:  # near the bound, the level's drift may bring some back inside it
            named = message.split("closes from ")[1].split(" (")[0].split(" to ")
            assert str(first) <= named[0] < named[1] <= str(last)
        return
    assert len(shifted) <= 1  # a single close: a bad tick
    newest = raw.market["USDCLP"].dropna()
    if data.closes().iloc[-1] != newest.iloc[-1]:
        assert any("the newest USDCLP close" in w for w in data.report.warnings)


@settings(max_examples=25, **PROFILE)
@given(st.integers(1, 400), st.integers(0, 60), st.booleans())
def test_a_stopped_close_is_said_then_refused_by_its_age(length, gap, blank):
    """USD/CLP frozen at the close before (or blank) on `length` rows ending `gap` rows before
    the end: past STOPPED_WARN_BDAYS business days behind the as-of date a warning, past
    STOPPED_REFUSE_BDAYS an error; a feed that resumed is no signal."""
    lines = _market_lines()
    end = len(lines) - gap
    start = max(2, end - length)
    frozen = lines[start - 1].split(",")[1]
    edited = _set_usdclp(lines, range(start, end), lambda _: "" if blank else frozen)
    with tempfile.TemporaryDirectory() as tmp:
        raw = load_raw(_write_market(Path(tmp) / "data", edited))
    newest = clean(load_raw(), raw.market.index[start - 2]).closes().index[-1]  # lines[start - 1]
    behind = len(pd.bdate_range(newest, raw.market.index[-1])) - 1
    resumed = gap > 0
    try:
        data = clean(raw)
    except DataError as exc:
        assert not resumed and behind > STOPPED_REFUSE_BDAYS and "\n" not in str(exc)
        assert f"({newest.date()})" in str(exc) or f"since {newest.date()}" in str(exc)
        return
    said = [w for w in data.report.warnings if "business days" in w]
    assert bool(said) == (not resumed and behind > STOPPED_WARN_BDAYS)
    assert resumed or behind <= STOPPED_REFUSE_BDAYS


@settings(max_examples=30, **PROFILE)
@given(st.sampled_from(FILES), st.integers(1, 20_000))
def test_a_file_cut_anywhere_is_refused_naming_the_line_or_reads_whole_lines(name, back):
    """A file cut `back` bytes before its end (a copy or download stopped part-way): a cut
    inside a line is an error naming the file and that line; otherwise every line read is
    whole and the data ends at the last of them."""
    content = (default_data_dir() / name).read_bytes()
    cut = content[: len(content) - back]
    last = cut.rsplit(b"\n", 1)[1]
    width = content.split(b"\n", 1)[0].count(b",") + 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        shutil.copytree(default_data_dir(), folder)
        (folder / name).write_bytes(cut)
        try:
            raw = load_raw(folder)
        except DataError as exc:
            assert last and last.count(b",") + 1 != width  # only a line short of fields
            line = len(cut.splitlines())
            assert str(exc).startswith(f"{folder / name} line {line}: ")
            assert "a cut or torn line; complete or remove it" in str(exc)
            return
    # Read: the cut fell at a line's end, or inside its last field (all fields there).
    assert not last or last.count(b",") + 1 == width
    table = raw.market if name == "market_daily.csv" else raw.rates
    assert str(table.index[-1].date()) == cut.rstrip(b"\n").rsplit(b"\n", 1)[1][:10].decode()


ENCODINGS = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "utf-8-sig")


@settings(max_examples=20, **PROFILE)
@given(st.sampled_from(ENCODINGS), st.sampled_from((*FILES, ".env")), st.integers(0, 10**6))
def test_a_file_in_another_encoding_names_the_file_and_the_byte(encoding, name, where):
    """A data file or a .env saved in another encoding, with one non-ASCII character somewhere
    ('ó' in a comment or for a number): UTF-8 with a byte-order mark is read (and the 'ó' is
    then the error a word for a number is); anything else is
    one error naming the file and the offset of the first byte that is not UTF-8."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        shutil.copytree(default_data_dir(), folder)
        path = folder / name
        if name == ".env":
            text = "ENABLE_VAR=false\n# configuración del servicio\nENABLE_RF=true\n"
            read = lambda: load_settings(path, environ={})  # noqa: E731
        else:
            lines = path.read_text().splitlines()
            at = 1 + where % (len(lines) - 1)
            lines[at] = lines[at].rsplit(",", 1)[0] + ",ó"
            text = "\n".join(lines) + "\n"
            read = lambda: load_raw(folder)  # noqa: E731
        content = text.encode(encoding)
        path.write_bytes(content)
        try:
            read()
        except (ConfigError, DataError) as exc:
            message = str(exc)
            assert encoding != "utf-8-sig" or name != ".env"
            if encoding == "utf-8-sig":  # decoded fine: the 'ó' cell is not a number
                assert "is not a number" in message
                return
            assert message.startswith(f"{path} is not UTF-8 text (") and "\n" not in message
            # The byte-order mark of UTF-16 and UTF-32, else the 'ó' (0xf3 in all the others).
            expected = 0 if content[0] == 0xFF else content.index(b"\xf3")
            assert f"byte 0x{content[expected]:02x} at offset {expected} is not UTF-8" in message
            return
    assert encoding == "utf-8-sig" and name == ".env"
