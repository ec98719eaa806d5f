"""merge() by hand on tables of a few days: stored values win, weekend market values are left
out, the market ends at the newest close, and the rates are calendar-daily, forward-filled, up
to the day both rates are known and never before the stored ones end."""

import warnings

import numpy as np
import pandas as pd
from fxforecast.marketdata.cache import Stored
from fxforecast.marketdata.refresh import merge

NAN = np.nan


def days(*dates):
    return pd.DatetimeIndex(dates, name="date")


def series(values: dict) -> pd.Series:
    return pd.Series(list(values.values()), index=pd.DatetimeIndex(list(values)), dtype=float)


MARKET = pd.DataFrame(
    {
        "USDCLP": [940.0, 945, 950],
        "Copper": [4.0, 4.1, 4.15],
        "Oil": [68.0, 69, 70],
        "DXY": [106.0, 106.2, 106.4],
        "SP500": [6000.0, 6010, 6020],
        "VIX": [13.0, 14, 15],
    },
    index=days("2024-12-02", "2024-12-03", "2024-12-04"),
)


def stored(rates: pd.DataFrame) -> Stored:
    crosscheck = pd.DataFrame(
        {"dolar_observado": [945.5], "libra_cobre": [4.1]}, index=days("2024-12-03")
    )
    return Stored(MARKET, rates, crosscheck, "cache", "/srv/data", "cache at least as new")


def test_merge_by_hand():
    rates = pd.DataFrame(
        {
            "fed_rate": [4.6] * 6,
            "chile_rate": [5.25] * 6,
            # Stored differentials win, even where the rates would give another.
            "rate_differential": [0.65, 0.65, 0.65, 0.65, 0.65, 0.7],
        },
        index=pd.date_range("2024-11-29", "2024-12-04", freq="D", name="date"),
    )
    accepted = {
        # 12-04 is stored (950): it stays; Saturday 12-07 is not a market day.
        "USDCLP": series({"2024-12-04": 999.0, "2024-12-05": 951.0, "2024-12-07": 952.0}),
        "Copper": series({"2024-12-05": 4.2}),
        "fed_rate": series({"2024-12-06": 4.5}),
        "chile_rate": series({"2024-12-05": 5.0, "2024-12-08": 5.5}),
        "dolar_observado": series({"2024-12-04": 951.2}),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pandas deprecation here breaks the next pandas
        merged = merge(stored(rates), accepted)
    expected_market = pd.concat(
        [MARKET, pd.DataFrame({"USDCLP": [951.0], "Copper": [4.2]}, index=days("2024-12-05"))]
    )
    pd.testing.assert_frame_equal(
        merged.market, expected_market, check_names=False, check_freq=False
    )
    # Both rates known up to 12-06 (the fed's newest): 12-08's Chile rate waits for it.
    expected_rates = pd.DataFrame(
        {
            "fed_rate": [4.6] * 7 + [4.5],
            "chile_rate": [5.25] * 6 + [5.0, 5.0],
            "rate_differential": [0.65] * 5 + [0.7, 0.4, 0.5],
        },
        index=pd.date_range("2024-11-29", "2024-12-06", freq="D", name="date"),
    )
    pd.testing.assert_frame_equal(merged.rates, expected_rates)
    assert merged.rates.index.name == "date"
    expected_crosscheck = pd.DataFrame(
        {"dolar_observado": [945.5, 951.2], "libra_cobre": [4.1, NAN]},
        index=days("2024-12-03", "2024-12-04"),
    )
    pd.testing.assert_frame_equal(merged.crosscheck, expected_crosscheck, check_names=False)


def test_the_rates_never_end_before_the_stored_ones():
    """A cache edited by hand without the fed rate on its last two days: the merged rates still
    reach the stored last day (forward-filled), not the fed rate's last."""
    rates = pd.DataFrame(
        {
            "fed_rate": [4.6, 4.6, NAN, NAN],
            "chile_rate": [5.25] * 4,
            "rate_differential": [0.65] * 4,
        },
        index=pd.date_range("2024-12-01", "2024-12-04", freq="D", name="date"),
    )
    merged = merge(stored(rates), {})
    assert merged.rates.index[-1] == pd.Timestamp("2024-12-04")
    assert merged.rates["fed_rate"].tolist() == [4.6] * 4
