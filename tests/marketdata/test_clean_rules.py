"""Each cleaning rule on a frame small enough to work out by hand: what a bad tick, a stale or
missing close, a gap and a missing exogenous value become, the rates on market days, the
as-of limits and their messages, and the plausibility rule's window, first value and bounds."""

import warnings

import numpy as np
import pandas as pd
import pytest
from fxforecast.errors import ConfigError, DataError
from fxforecast.marketdata.clean import BAD_TICK_LOG_JUMP, clean, implausible, load
from fxforecast.marketdata.schema import RawData

NAN = np.nan
# Eight business days with a gap (Tuesday 9th to Monday 15th: six calendar days).
DAYS = pd.DatetimeIndex(
    ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    + ["2024-01-08", "2024-01-09", "2024-01-15"],
    name="date",
)
MARKET = {
    # 01-03 repeats 01-02 (stale); 01-04 is blank; 01-05 is a 10x tick.
    "USDCLP": [900.0, 901, 901, NAN, 9000, 905, 906, 907],
    # 01-03 blank; 01-05 a 1/100 tick.
    "Copper": [4.0, 4.1, NAN, 4.2, 0.042, 4.3, 4.3, 4.4],
    # 01-08 a 100x tick.
    "DXY": [100.0, 101, 102, 103, 104, 10500, 106, 107],
    "Oil": [70.0, NAN, NAN, 71, 72, 73, NAN, 74],
    "SP500": [NAN, 4700, 4710, 4720, 4730, 4740, 4750, 4760],
    # VIX is not tick-checked: its genuine jumps are large.
    "VIX": [13.0, 14, 15, 16, 40, 18, 19, NAN],
}
# Rates on calendar days that are not all market days, and one after the newest market row.
RATES = pd.DataFrame(
    {
        "fed_rate": [5.5, 5.5, 5.5, 5.5, 5.5],
        "chile_rate": [10.5, 10.75, 11.0, 11.25, 15.4],
        "rate_differential": [5.0, 5.25, 5.5, 5.75, 9.9],
    },
    index=pd.DatetimeIndex(
        ["2023-12-29", "2024-01-02", "2024-01-06", "2024-01-12", "2024-01-16"], name="date"
    ),
)
SOURCE = "/srv/feed"


def hand_made(**columns) -> RawData:
    market = pd.DataFrame({**MARKET, **columns}, index=DAYS)
    return RawData(market=market, rates=RATES.copy(), source=SOURCE)


def test_the_cleaned_frame_by_hand():
    data = clean(hand_made())
    expected = pd.DataFrame(
        {
            "usdclp": [900.0, 901, NAN, NAN, NAN, 905, 906, 907],
            "copper": [4.0, 4.1, 4.1, 4.2, 4.2, 4.3, 4.3, 4.4],
            "dxy": [100.0, 101, 102, 103, 104, 104, 106, 107],
            "oil": [70.0, 70, 70, 71, 72, 73, 73, 74],
            "sp500": [NAN, 4700, 4710, 4720, 4730, 4740, 4750, 4760],
            "vix": [13.0, 14, 15, 16, 40, 18, 19, 19],
            # Friday's 5.0 on Monday 1st, Saturday's 5.5 from Monday 8th, Friday 12th's 5.75
            # on Monday 15th; the 16th's 9.9 is after the newest row.
            "rate_differential": [5.0, 5.25, 5.25, 5.25, 5.25, 5.5, 5.5, 5.75],
        },
        index=DAYS,
    )
    pd.testing.assert_frame_equal(data.frame, expected)
    assert data.source == SOURCE
    assert data.as_of == pd.Timestamp("2024-01-15")


def test_the_cleaning_report_by_hand():
    report = clean(hand_made()).report
    # Only USD/CLP's ticks are reported; a stale close is one equal to the previous valid one;
    # the missing closes are the blanks and the ticks (before stale ones are removed).
    assert report.as_dict() == {
        "bad_ticks": [{"date": "2024-01-05", "column": "USDCLP", "value": 9000.0}],
        "stale_closes": 1,
        "missing_closes": 2,
        "gaps": [{"after": "2024-01-09", "before": "2024-01-15", "days": 6}],
    }
    assert report.warnings == []


def test_as_of_may_be_the_first_or_the_newest_row_and_no_further():
    first = clean(hand_made(), "2024-01-01")
    assert first.frame.index.tolist() == [pd.Timestamp("2024-01-01")]
    assert first.frame.at[pd.Timestamp("2024-01-01"), "usdclp"] == 900.0
    assert clean(hand_made(), "2024-01-15").as_of == pd.Timestamp("2024-01-15")
    message = (
        "--as-of 2023-12-31 is before the first row of the data (2024-01-01); choose a later date"
    )
    with pytest.raises(DataError) as error:
        clean(hand_made(), "2023-12-31")
    assert str(error.value) == message
    with pytest.raises(ConfigError) as error:
        clean(hand_made(), "2024-01-16")
    assert str(error.value) == (
        "--as-of 2024-01-16 is after the newest row of the data (2024-01-15); choose that date "
        "or an earlier one"
    )


def test_a_cut_with_no_valid_close_is_refused_and_one_close_is_enough():
    blank_start = hand_made(USDCLP=[NAN, NAN, 901, NAN, 902, 905, 906, 907])
    with pytest.raises(DataError) as error:
        clean(blank_start, "2024-01-02")
    assert str(error.value) == "no valid USDCLP close on or before 2024-01-02"
    one = clean(blank_start, "2024-01-04")
    assert one.closes().to_dict() == {pd.Timestamp("2024-01-03"): 901.0}


def test_load_reads_the_folder_it_is_given_at_the_as_of_date(data_copy):
    # The copy's close on 2019-06-28 (680.17 in the snapshot) set to 683.25.
    path = data_copy / "market_daily.csv"
    text = path.read_text()
    assert "\n2019-06-28,680.1699829101562," in text
    path.write_text(text.replace("\n2019-06-28,680.1699829101562,", "\n2019-06-28,683.25,"))
    data = load(data_copy, "2019-06-28")
    assert data.source == str(data_copy)
    assert data.as_of == pd.Timestamp("2019-06-28")
    assert data.frame.at[pd.Timestamp("2019-06-28"), "usdclp"] == 683.25


def test_each_value_is_judged_against_the_median_of_the_five_kept_before_it():
    # Before 90: the five kept values 100, 100, 120, 120, 120 (median 120: 90 is 25% below,
    # ln(120/90) = 0.288 > ln 1.25); six would give 110 and keep it (ln(110/90) = 0.201).
    values = pd.Series([100.0, 100, 100, 120, 120, 120, 90])
    assert implausible(values, BAD_TICK_LOG_JUMP).tolist() == [False] * 6 + [True]


def test_the_second_value_is_judged_against_the_first_alone():
    assert implausible(pd.Series([100.0, 300, 101]), BAD_TICK_LOG_JUMP).tolist() == [
        False,
        True,
        False,
    ]


def test_a_value_exactly_at_the_bound_stands():
    """'Further than' the bound is a bad tick; exactly at it is not (in log terms for prices,
    in points for rates)."""
    assert np.log(125.0 / 100.0) == BAD_TICK_LOG_JUMP  # the boundary is hit exactly
    assert implausible(pd.Series([100.0, 125.0]), BAD_TICK_LOG_JUMP).tolist() == [False, False]
    assert implausible(pd.Series([100.0, 125.1]), BAD_TICK_LOG_JUMP).tolist() == [False, True]
    assert implausible(pd.Series([1.0, 3.0]), 2.0, additive=True).tolist() == [False, False]
    assert implausible(pd.Series([1.0, 3.5]), 2.0, additive=True).tolist() == [False, True]


def test_rates_are_judged_by_their_difference_in_points():
    # Before 9.0 the kept 5.0, 5.25, 5.0 (median 5.0): 4 points away; 5.5 is half a point.
    rates = pd.Series([5.0, 5.25, 5.0, 9.0, 5.5])
    assert implausible(rates, 2.0, additive=True).tolist() == [False, False, False, True, False]


def test_a_non_positive_price_is_flagged_even_first_and_small_prices_are_prices():
    assert implausible(pd.Series([0.0, 5.0, 5.1]), BAD_TICK_LOG_JUMP).tolist() == [
        True,
        False,
        False,
    ]
    assert implausible(pd.Series([-2.0, 5.0]), BAD_TICK_LOG_JUMP).tolist() == [True, False]
    small = pd.Series([0.5, 0.52, 0.51, 0.55])
    assert not implausible(small, BAD_TICK_LOG_JUMP).any()


def test_non_positive_prices_raise_no_numpy_warning():
    """A run's log carries named warnings, not numpy's 'divide by zero in log'."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flagged = implausible(pd.Series([5.0, 0.0, -1.0, 5.1, 0.0]), BAD_TICK_LOG_JUMP)
    assert flagged.tolist() == [False, True, True, False, True]
