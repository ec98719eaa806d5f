"""Nothing dated after a point in time reaches what is computed as of it: not only at the as-of
date, but at every validation origin inside the window (the paths that earn the weights and
calibrate the intervals), and in the cleaned frame as of any day, days with missing values
included. Each test changes the data after the point and compares bytes, or compares with a
date worked out by hand from the calendar."""

import numpy as np
import pandas as pd
import pytest
from fxforecast.engine.calibration import DAILY, Yardstick
from fxforecast.engine.members.arima_garch import ArimaGarch
from fxforecast.engine.members.forest import RandomForest
from fxforecast.engine.members.random_walk import EmpiricalRandomWalk, RandomWalk
from fxforecast.engine.members.var import VectorAutoregression
from fxforecast.engine.validation import validation_set
from fxforecast.horizons import history_step_dates, horizon_params, refit_anchor
from fxforecast.marketdata.clean import clean

AS_OF = pd.Timestamp("2024-11-29")
PARAMS = horizon_params(7)
# Every kind of member the ensemble has (the ARIMA grid and the forest smaller than a service's,
# to keep the test short: the code path that reads the data is the same).
MEMBERS = (
    RandomWalk(),
    EmpiricalRandomWalk(window=750),
    ArimaGarch(lookback=750, max_p=1, max_q=0),
    VectorAutoregression(lookback=750, max_lags=5),
    RandomForest(lookback=750, trees=20, steps=5),
)
# Validation origins of the 7-day run as of AS_OF: Good Friday 2024-03-29 has a USD/CLP close
# but no copper, oil, DXY, S&P 500 or VIX (the US market was shut); 2023-07-07 follows the 4th
# of July gap; 2024-11-22 is the newest origin.
SAMPLE_ORIGINS = ("2023-07-07", "2024-03-29", "2024-11-22")


def changed_after(raw, day: pd.Timestamp):
    """The snapshot with every value of every series after `day` changed: each market column
    x1.07 (inside the bad-tick bound, so no row is dropped) and every rate +0.5 points."""
    market, rates = raw.market.copy(), raw.rates.copy()
    market.loc[market.index > day] *= 1.07
    rates.loc[rates.index > day] += 0.5
    return type(raw)(market, rates, raw.source)


def origin_view(raw, origin: pd.Timestamp) -> dict:
    """What the run as of AS_OF holds about one validation origin, each as bytes."""
    data = clean(raw, AS_OF)
    validation = validation_set(data, PARAMS)
    i = validation.origins.index(origin)
    path_dates = history_step_dates(data.frame.index, origin, PARAMS.days)
    view = {
        "origins": np.array(validation.origins, dtype="datetime64[ns]").tobytes(),
        "last_close": np.float64(validation.last_closes[i]).tobytes(),
        "path_boundaries": f"{validation.steps[i]} {path_dates[0]} {path_dates[-1]}",
        # The default's yardstick at this horizon and the daily one of the older calibrations.
        "regime_factor": Yardstick.of(PARAMS).factors(data.closes(), [origin]).tobytes(),
        "daily_regime_factor": DAILY.factors(data.closes(), [origin]).tobytes(),
        "frame_to_origin": data.frame.loc[:origin].to_numpy().tobytes(),
    }
    anchor = refit_anchor(origin, PARAMS.refit_weeks)
    for member in MEMBERS:  # fitted afresh, as a run does at that refit date
        fitted = member.fit(data.frame.loc[:anchor])
        [path] = fitted.forecast(data.frame, [origin], [validation.steps[i]])
        view[member.name] = path.tobytes()
    return view


@pytest.mark.parametrize("origin", SAMPLE_ORIGINS)
def test_rows_after_a_validation_origin_change_nothing_the_origin_holds(raw, origin):
    """Every series changed after a validation origin (but before the as-of date): that origin's
    member paths, last close, realised path boundaries and regime factor stay byte-identical.
    Each side fits its members afresh."""
    origin = pd.Timestamp(origin)
    before = origin_view(raw, origin)
    after = origin_view(changed_after(raw, origin), origin)
    assert before.keys() == after.keys()
    for key in before:
        assert after[key] == before[key], f"{key} at the validation origin {origin.date()} moved"
    # The change did reach the run: the realised path after the origin moved.
    data = clean(changed_after(raw, origin), AS_OF)
    assert data.frame.loc[origin:].iloc[1:]["usdclp"].notna().any()


def test_a_validation_origins_last_close_is_its_own_close(raw):
    """By hand from the snapshot: the close on the origin itself (the last genuine close on or
    before it), never a later one."""
    validation = validation_set(clean(raw, AS_OF), PARAMS)
    by_origin = dict(zip(validation.origins, validation.last_closes, strict=True))
    market = raw.market["USDCLP"]
    for origin in map(pd.Timestamp, SAMPLE_ORIGINS):
        assert by_origin[origin] == market.at[origin]
    # 2014-04-10's close is a bad tick (5.46): the 7-day run as of 2014-04-17 has that day as
    # an origin, whose last close is the genuine one before it (545.80 on 2014-04-09).
    early = validation_set(clean(raw, "2014-04-17"), PARAMS)
    assert early.origins[-1] == pd.Timestamp("2014-04-10")
    assert early.last_closes[-1] == market.at[pd.Timestamp("2014-04-09")]


@pytest.mark.parametrize(
    "as_of, newest_origin, steps",
    [
        # Worked out on the calendar: the newest origin is the last row on or before as-of - 7
        # days, and its path the rows after it up to that origin + 7 days (by the as-of date).
        ("2024-11-22", "2024-11-15", 5),  # a Friday: origin Friday, path Mon..Fri
        ("2024-11-21", "2024-11-14", 5),  # a Thursday: origin Thursday, path Fri..Thu
        ("2024-11-19", "2024-11-12", 5),  # a Tuesday
        ("2024-11-18", "2024-11-11", 5),  # a Monday
    ],
)
def test_every_validation_path_ends_by_the_as_of_date(raw, as_of, newest_origin, steps):
    as_of = pd.Timestamp(as_of)
    validation = validation_set(clean(raw, as_of), PARAMS)
    assert validation.origins[-1] == pd.Timestamp(newest_origin)
    assert validation.steps[-1] == steps
    for origin in validation.origins:
        assert origin + pd.Timedelta(days=PARAMS.days) <= as_of
    # The same origins as of a later date have the same realised paths: complete already.
    later = validation_set(clean(raw, AS_OF), PARAMS)
    for origin, actual in zip(validation.origins, validation.actuals, strict=True):
        if origin in later.origins:
            np.testing.assert_array_equal(later.actuals[later.origins.index(origin)], actual)


def _days_to_check(raw) -> list[pd.Timestamp]:
    """Days where the cleaning has work to do, and the days after them: a value missing in any
    column (the US holidays, USD/CLP's five blanks), the two bad ticks, stale repeats."""
    market = raw.market
    missing = market.index[market.isna().any(axis=1)]
    repeated = market.index[market["USDCLP"].diff() == 0]
    ticks = pd.DatetimeIndex(["2014-04-10", "2016-12-22"])
    chosen = missing[::6].union(repeated[::12]).union(ticks)
    after = market.index[np.minimum(market.index.get_indexer(chosen) + 1, len(market) - 1)]
    return list(chosen.union(after)[chosen.union(after) > market.index[5]])


def test_the_cleaned_frame_as_of_a_day_is_the_later_frame_cut_at_that_day(raw):
    """clean(data, t) == clean(data, later).loc[:t], column by column, NaN where NaN: on days
    with missing values (an interpolation would fill a holiday from the day after it) and right
    after bad ticks and stale closes."""
    full = clean(raw).frame
    days = _days_to_check(raw)
    assert len(days) > 40
    assert pd.Timestamp("2024-03-29") in days  # DXY and the others blank on Good Friday
    for day in days:
        as_of = clean(raw, day).frame
        cut = full.loc[:day]
        assert list(as_of.columns) == list(cut.columns)
        for column in cut.columns:
            pd.testing.assert_series_equal(as_of[column], cut[column], check_exact=True)


@pytest.mark.parametrize("column", ["copper", "dxy", "oil", "sp500", "vix"])
def test_a_missing_exogenous_value_is_the_previous_days(raw, column):
    """By hand: Good Friday 2024-03-29 has no US market value; the frame carries Thursday's."""
    frame = clean(raw).frame
    name = {"sp500": "SP500", "vix": "VIX", "dxy": "DXY"}.get(column, column.capitalize())
    assert np.isnan(raw.market.at[pd.Timestamp("2024-03-29"), name])
    assert (
        frame.at[pd.Timestamp("2024-03-29"), column]
        == raw.market.at[pd.Timestamp("2024-03-28"), name]
    )
