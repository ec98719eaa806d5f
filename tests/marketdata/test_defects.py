"""Data defects are named, never absorbed (issue 14, cases 1, 3, 5 and 6): a duplicated date, a
date after today, a non-finite or overflowing value, and --as-of after the data are one-line
errors naming file, row and column; gaps between rows are recorded."""

import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from fxforecast.errors import ConfigError, DataError
from fxforecast.marketdata import defects
from fxforecast.marketdata.clean import clean
from fxforecast.marketdata.schema import load_raw
from helpers import edit_rows, error_line, metrics_lines


def test_a_duplicated_date_is_refused_with_file_and_rows(cli, data_copy, tmp_path):
    edit_rows(data_copy / "market_daily.csv", lambda lines: [*lines, "2024-11-29,990.0,,,,,"])
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    assert error_line(err) == (
        f"error: {data_copy / 'market_daily.csv'} rows 3657, 3658: Date 2024-11-29 appears "
        "2 times; keep one row per date"
    )
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed" and "appears 2 times" in line["error"]
    assert not (tmp_path / "output/forecaster_7d").exists()


def test_a_last_row_with_a_mistyped_year_is_refused(cli, data_copy):
    edit_rows(data_copy / "market_daily.csv", lambda lines: [*lines[:-1], "2042" + lines[-1][4:]])
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    assert error_line(err) == (
        f"error: {data_copy / 'market_daily.csv'} row 3657: Date 2042-11-29 is after today "
        f"({pd.Timestamp.now('UTC').date()}); fix the date or remove that row"
    )


def test_a_future_dated_row_in_the_middle_names_file_and_row(cli, data_copy):
    edit_rows(
        data_copy / "market_daily.csv",
        lambda lines: [*lines[:2000], "2042-05-27" + lines[2000][10:], *lines[2001:]],
    )
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    assert f"{data_copy / 'market_daily.csv'} row 2001: Date 2042-05-27 is after today" in (
        error_line(err)
    )


def test_an_overflowing_value_is_named_with_file_row_and_column(cli, data_copy):
    edit_rows(
        data_copy / "rates_daily.csv",
        lambda lines: [*lines[:100], "2010-04-10,0.2,0.5,1e308", *lines[101:]],
    )
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    assert error_line(err) == (
        f"error: {data_copy / 'rates_daily.csv'} row 101 (2010-04-10): rate_differential value "
        "1e+308 is not a finite number below 1e+09; fix or blank that value"
    )


@pytest.mark.parametrize("text", ["inf", "-Infinity"])
def test_infinite_values_are_refused(data_copy, text):
    edit_rows(
        data_copy / "market_daily.csv",
        lambda lines: [*lines[:-1], lines[-1].replace("6032.3798828125", text)],
    )
    with pytest.raises(DataError, match=r"row 3657 \(2024-11-29\): SP500 value -?inf is not"):
        load_raw(data_copy)


def test_rows_out_of_order_are_taken_in_date_order(data_copy, raw):
    edit_rows(data_copy / "market_daily.csv", lambda lines: [lines[0], *lines[:0:-1]])
    reversed_raw = load_raw(data_copy)
    pd.testing.assert_frame_equal(reversed_raw.market, raw.market)


def test_gaps_longer_than_a_long_weekend_are_recorded(raw):
    market = raw.market.drop(pd.bdate_range("2024-06-10", "2024-06-14"))
    data = clean(type(raw)(market, raw.rates, raw.source))
    assert data.report.gaps == [{"after": "2024-06-07", "before": "2024-06-17", "days": 10}]
    assert clean(raw).report.gaps == []  # the snapshot's rows are never more than 3 days apart


def test_as_of_after_the_newest_data_is_an_error(cli, raw, tmp_path):
    with pytest.raises(ConfigError, match="after the newest row of the data"):
        clean(raw, "2024-11-30")
    code, _, err = cli("--as-of", "2030-01-01")
    assert code == 2
    assert error_line(err) == (
        "error: --as-of 2030-01-01 is after the newest row of the data (2024-11-29); choose "
        "that date or an earlier one"
    )
    assert not (tmp_path / "output/forecaster_7d").exists()
    [line] = metrics_lines(tmp_path / "metrics.jsonl")
    assert line["status"] == "failed"


def test_rows_five_days_apart_are_a_gap_and_four_are_a_long_weekend(raw):
    """By hand: Friday 2024-06-07 to Wednesday 06-12 is 5 days (a gap); to Tuesday 06-11, 4."""
    five = raw.market.drop(pd.bdate_range("2024-06-10", "2024-06-11"))
    four = raw.market.drop(pd.bdate_range("2024-06-10", "2024-06-10"))
    assert clean(type(raw)(five, raw.rates, raw.source)).report.gaps == [
        {"after": "2024-06-07", "before": "2024-06-12", "days": 5}
    ]
    assert clean(type(raw)(four, raw.rates, raw.source)).report.gaps == []


def _dates(*days) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days)))


def test_the_first_duplicated_date_is_named_with_its_rows():
    """By hand: A, B, A, B in rows 2..5: A (rows 2 and 4) is named first."""
    with pytest.raises(DataError) as error:
        defects.check_dates(
            "f.csv", _dates("2024-01-02", "2024-01-03", "2024-01-02", "2024-01-03"), "Date"
        )
    assert (
        str(error.value)
        == "f.csv rows 2, 4: Date 2024-01-02 appears 2 times; keep one row per date"
    )


@pytest.mark.parametrize("zone", ["Etc/GMT-14", "Etc/GMT+12"])
def test_today_is_utcs_whatever_the_servers_zone(monkeypatch, zone):
    """A row dated tomorrow (UTC) passes (a server ahead of UTC may hold it), the day after is
    refused, in a zone 14 hours ahead of UTC and in one 12 hours behind."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        today = pd.Timestamp(datetime.now(UTC).date())
        defects.check_dates("f.csv", _dates(today, today + pd.Timedelta(days=1)), "Date")
        with pytest.raises(DataError, match=r"^f.csv row 3: Date .* is after today"):
            defects.check_dates("f.csv", _dates(today, today + pd.Timedelta(days=2)), "Date")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_value_of_exactly_1e9_is_allowed_and_more_is_refused():
    dates = _dates("2024-01-02", "2024-01-03")
    defects.check_values("f.csv", dates, "SP500", np.array([1e9, -1e9]))
    with pytest.raises(DataError, match=r"row 3 \(2024-01-03\): SP500 value 1e\+09 is not"):
        defects.check_values("f.csv", dates, "SP500", np.array([1e9, 1.0000001e9]))
