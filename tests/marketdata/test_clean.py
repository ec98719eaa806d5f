import numpy as np
import pandas as pd
import pytest
from fxforecast.errors import DataError
from fxforecast.marketdata.clean import (
    BAD_TICK_LOG_JUMP,
    TICK_CHECKED,
    bad_ticks,
    clean,
    implausible,
)
from fxforecast.marketdata.schema import load_raw
from hypothesis import given, settings
from hypothesis import strategies as st


def test_snapshot_bad_ticks_are_removed(raw):
    data = clean(raw)
    found = {t["date"] for t in data.report.bad_ticks}
    assert found == {"2014-04-10", "2016-12-22"}
    assert np.isnan(data.frame.at[pd.Timestamp("2014-04-10"), "usdclp"])
    assert np.isnan(data.frame.at[pd.Timestamp("2016-12-22"), "usdclp"])
    # No 100x return survives cleaning.
    returns = np.log(data.closes()).diff().dropna()
    assert returns.abs().max() < 0.15


@pytest.mark.parametrize(
    "date, minimum_move",
    [("2022-07-21", 0.10), ("2019-12-03", 0.05), ("2020-03-19", 0.0)],
)
def test_genuine_large_moves_are_kept(raw, date, minimum_move):
    data = clean(raw)
    day = pd.Timestamp(date)
    assert not np.isnan(data.frame.at[day, "usdclp"])
    closes = data.closes()
    position = closes.index.get_loc(day)
    move = abs(np.log(closes.iloc[position] / closes.iloc[position - 1]))
    assert move >= minimum_move


def test_the_2020_pandemic_peak_is_kept(raw):
    data = clean(raw)
    march = data.closes().loc["2020-03-01":"2020-03-31"]
    assert march.max() > 850  # the peak above 850 CLP is real, not a tick to remove


def test_stale_repeated_closes_are_not_prices(raw):
    data = clean(raw)
    assert raw.market.at[pd.Timestamp("2022-07-20"), "USDCLP"] == pytest.approx(1050.26, abs=0.01)
    assert np.isnan(data.frame.at[pd.Timestamp("2022-07-20"), "usdclp"])
    assert data.report.stale_closes > 50
    closes = data.closes()
    assert (closes.diff() != 0).all()


def test_exogenous_series_use_only_past_values(raw):
    data = clean(raw)
    frame = data.frame
    # Rows where copper was missing carry the previous day's value, never a later one.
    missing = raw.market["Copper"].isna()
    day = raw.market.index[missing & (raw.market.index > "2015-01-01")][0]
    previous = raw.market["Copper"].loc[:day].dropna().iloc[-1]
    assert frame.at[day, "copper"] == previous


def test_cut_at_as_of_ignores_later_rows(raw):
    as_of = pd.Timestamp("2019-06-28")
    before = clean(raw, as_of).frame
    changed = raw.market.copy()
    changed.loc[changed.index > as_of, ["USDCLP", "Copper", "DXY"]] *= 3
    rates = raw.rates.copy()
    rates.loc[rates.index > as_of] = -9.0
    changed_raw = type(raw)(changed, rates, raw.source)
    after = clean(changed_raw, as_of).frame
    pd.testing.assert_frame_equal(before, after)
    assert before.index[-1] == as_of


def _write(folder, name, text):
    (folder / name).write_text(text)


def test_missing_file_is_a_clear_error(data_copy):
    (data_copy / "rates_daily.csv").unlink()
    with pytest.raises(DataError, match="rates_daily.csv.*DATA_DIR or --data-dir"):
        load_raw(data_copy)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_raw(tmp_path / "nowhere")


def test_missing_column_is_named(data_copy):
    path = data_copy / "market_daily.csv"
    frame = pd.read_csv(path).drop(columns="DXY")
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="lacks column.*DXY"):
        load_raw(data_copy)


def test_non_numeric_value_names_row_and_column(data_copy):
    path = data_copy / "market_daily.csv"
    lines = path.read_text().splitlines()
    fields = lines[100].split(",")
    fields[1] = "9a7.5"
    lines[100] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 101 .*USDCLP value '9a7.5' is not a number"):
        load_raw(data_copy)


def test_bad_date_is_reported(data_copy):
    path = data_copy / "market_daily.csv"
    lines = path.read_text().splitlines()
    lines[5] = "2011-13-45" + lines[5][10:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="row 6.*not a yyyy-mm-dd date"):
        load_raw(data_copy)


def test_empty_and_header_only_files_are_refused(data_copy):
    _write(data_copy, "market_daily.csv", "")
    with pytest.raises(DataError, match="is empty"):
        load_raw(data_copy)
    _write(data_copy, "market_daily.csv", "Date,USDCLP,Copper,Oil,DXY,SP500,VIX\n")
    with pytest.raises(DataError, match="no rows"):
        load_raw(data_copy)


def test_as_of_before_the_data_is_refused(raw):
    with pytest.raises(DataError, match="before the first row"):
        clean(raw, "2001-01-01")


def test_one_plausibility_rule_for_cleaning_and_live_answers():
    """A value is judged against the plausible values before it: an isolated tick is dropped,
    a run of wrong-unit values stays dropped (it never becomes its own reference), and rates
    are judged in points."""
    prices = pd.Series([100.0, 101, 99, 100, 1.0, 100, 102] + [1.0] * 8 + [101.0])
    flagged = implausible(prices, BAD_TICK_LOG_JUMP)
    assert flagged.tolist() == [False] * 4 + [True] + [False] * 2 + [True] * 8 + [False]
    assert implausible(pd.Series([5.0, 0.0, -1.0, 5.1]), BAD_TICK_LOG_JUMP).tolist() == [
        False,
        True,
        True,
        False,
    ]
    rates = pd.Series([0.25, 0.25, 0.5, 4.0, 0.5])
    assert implausible(rates, 2.0, additive=True).tolist() == [False, False, False, True, False]


@pytest.mark.parametrize("column", ["USDCLP", "Copper", "DXY"])
@pytest.mark.parametrize(
    "factor, flagged", [(1.24, False), (1.26, True), (1 / 1.24, False), (1 / 1.26, True)]
)
def test_the_bad_tick_bound_is_25_percent_from_the_median_of_the_five_before(
    raw, column, factor, flagged
):
    """The documented bound, by hand: one close set to the median of the five valid closes
    before it times 1.24 (or 1/1.24) stays; times 1.26 (or 1/1.26) is a bad tick."""
    day = pd.Timestamp("2024-06-12")
    median = raw.market[column].loc[: day - pd.Timedelta(days=1)].dropna().iloc[-5:].median()
    market = raw.market.copy()
    market.at[day, column] = median * factor
    frame = clean(type(raw)(market, raw.rates, raw.source), "2024-06-28").frame
    previous = frame[column.lower()].loc[: day - pd.Timedelta(days=1)].dropna().iloc[-1]
    if column == "USDCLP":
        assert np.isnan(frame.at[day, "usdclp"]) == flagged
    else:  # a dropped exogenous value carries the day before's
        assert frame.at[day, column.lower()] == (previous if flagged else median * factor)


def _outcome(raw, as_of, ticks=None):
    try:
        data = clean(raw, as_of, ticks)
    except DataError as exc:
        return str(exc)
    return data.frame, (data.report.as_dict(), data.report.warnings)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    spikes=st.lists(
        st.tuples(
            st.integers(0, 299),  # row, counted back from the end
            st.sampled_from(sorted(TICK_CHECKED)),
            st.sampled_from((0.5, 1.3, 3.0, 100.0, -1.0)),
        ),
        max_size=6,
    ),
    cut=st.integers(0, 299),
)
def test_the_bad_ticks_of_the_whole_data_cut_at_a_date_are_those_of_the_data_cut_there(
    raw, spikes, cut
):
    """What lets a backtest compute the masks once (bad_ticks) for all its origins: with bad
    ticks, runs of them and level shifts before, at and after the as-of date, cleaning with the
    whole data's masks cut there gives the same frame and report (or the same refusal)."""
    market = raw.market.copy()
    for row, column, factor in spikes:
        market.iloc[-1 - row, market.columns.get_loc(column)] *= factor
    changed = type(raw)(market, raw.rates, raw.source)
    as_of = market.index[-1 - cut]
    alone, cut_masks = _outcome(changed, as_of), _outcome(changed, as_of, bad_ticks(market))
    if isinstance(alone, str):
        assert cut_masks == alone
    else:
        pd.testing.assert_frame_equal(cut_masks[0], alone[0], check_exact=True)
        assert cut_masks[1] == alone[1]
