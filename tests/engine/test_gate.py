"""Never publish a broken forecast (issue 14, case 1): validation origins without a realised
path are skipped, too few left is a clear error, and a forecast that fails the last gate is
replaced by the random walk's, or refused."""

import numpy as np
import pandas as pd
import pytest
from fxforecast.engine import ensemble, gate
from fxforecast.engine.calibration import CorrectedRegimeWidths
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.engine.validation import validation_set
from fxforecast.errors import DataError
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import clean
from helpers import assert_publishable

AS_OF = pd.Timestamp("2024-11-29")


def without(raw, start, end):
    """The snapshot with the business days from start to end removed."""
    return type(raw)(raw.market.drop(pd.bdate_range(start, end)), raw.rates, raw.source)


def test_validation_skips_origins_without_a_realised_path(raw):
    params = horizon_params(7)
    full = validation_set(clean(raw), params)
    validation = validation_set(clean(without(raw, "2024-06-10", "2024-06-14")), params)
    # 2024-06-14 falls back to 2024-06-07, whose path is empty; so does the week before.
    assert pd.Timestamp("2024-06-07") not in validation.origins
    assert len(validation.origins) == len(full.origins) - 2
    assert len(set(validation.origins)) == len(validation.origins)
    assert all(a.size and np.all(np.isfinite(a)) for a in validation.actuals)


def test_too_few_validation_paths_left_is_a_clear_error(raw):
    # A year and a half missing: no weekly origin before it has a realised path.
    gapped = without(raw, "2023-01-02", "2024-11-28")
    with pytest.raises(DataError) as error:
        validation_set(clean(gapped), horizon_params(7))
    assert "have a realised 7-day path" in str(error.value) and "fall in gaps" in str(error.value)


GOOD = np.array([[940.0, 955.0, 975.0, 997.0, 1009.0]])


@pytest.mark.parametrize(
    "quantiles, expected",
    [
        (GOOD, []),
        (GOOD / 1000, []),  # below 1 is still a price
        (GOOD * np.nan, ["a quantile is not finite"]),
        ([[None, 955, 975, 997, 1009]], ["a quantile is not finite"]),  # a null read back
        (np.array([[-1.0, 955.0, 975.0, 997.0, 1009.0]]), ["a quantile is not positive"]),
        # Zero is not a price either (a log of it is -inf).
        (np.array([[0.0, 955.0, 975.0, 997.0, 1009.0]]), ["a quantile is not positive"]),
        (
            GOOD[:, ::-1],
            [
                "quantiles are not in increasing order",
                "the 95% interval is not wider than the 80% one",
            ],
        ),
        (
            np.array([[940.0, 955.0, 998.0, 997.0, 1009.0]]),
            ["quantiles are not in increasing order"],
        ),
        # The 95% interval no wider than the 80% one on one side alone: each side is checked.
        (
            np.array([[955.0, 955.0, 975.0, 997.0, 1009.0]]),
            ["the 95% interval is not wider than the 80% one"],
        ),
        (
            np.array([[940.0, 955.0, 975.0, 997.0, 997.0]]),
            ["the 95% interval is not wider than the 80% one"],
        ),
        (
            np.array([[0.0, 0.0, 975.0, 997.0, 997.0]]),
            ["a quantile is not positive", "the 95% interval is not wider than the 80% one"],
        ),
        (GOOD[0], ["quantiles have shape (5,), expected (steps, 5)"]),
        (GOOD[:, :4], ["quantiles have shape (1, 4), expected (steps, 5)"]),
        (GOOD[:0], ["quantiles have shape (0, 5), expected (steps, 5)"]),
    ],
)
def test_the_gate_names_every_kind_of_broken_forecast(quantiles, expected):
    assert gate.problems(quantiles) == expected


def test_the_gate_checks_the_step_dates_themselves():
    """The steps must be the business days after the as-of date up to its target: by hand,
    as of Friday 2024-11-29 the 7-day steps are Monday 2 December to Friday 6 December."""
    steps = pd.DatetimeIndex(["2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06"])
    five = np.repeat(GOOD, 5, axis=0)
    assert gate.check(five, steps, AS_OF, 7) == []
    wrong = "the steps are not the business days after 2024-11-29 up to its 7-day target"
    # As many dates, each a business day late: a forecast with shifted dates.
    assert gate.check(five, steps + pd.offsets.BDay(1), AS_OF, 7) == [wrong]
    assert gate.check(five, steps.insert(0, AS_OF)[:5], AS_OF, 7) == [wrong]
    assert gate.check(GOOD, steps[:1], AS_OF, 7) == [wrong]
    assert gate.check(five[:4], steps, AS_OF, 7) == ["4 quantile rows for 5 steps"]
    assert gate.check(five * np.nan, steps, AS_OF, 7) == ["a quantile is not finite"]


def test_an_unusable_ensemble_falls_back_to_the_random_walk(raw, monkeypatch):
    """Whatever makes the combination unusable, the random walk's forecast is published,
    marked degraded with the reason; never a NaN."""
    monkeypatch.setattr(CorrectedRegimeWidths, "apply", lambda self, path: path * np.nan)
    data = clean(raw, "2023-06-30")
    result = ensemble.forecast(data, horizon_params(7), [(RandomWalk(), True)], 60)
    assert result.degraded and "a quantile is not finite" in result.fallback
    assert_publishable(result.quantiles, result.step_dates, "2023-06-30", 7)
    np.testing.assert_array_equal(result.quantiles, result.members["random_walk"].forecast)
    assert result.members["random_walk"].weight == 1.0
    assert result.calibration.info() == {"method": "none"}
    assert result.combination.drift_share == 0.0


def test_no_usable_forecast_at_all_is_a_one_line_error(raw, monkeypatch):
    monkeypatch.setattr(CorrectedRegimeWidths, "apply", lambda self, path: path * np.nan)
    monkeypatch.setattr(gate, "problems", lambda quantiles: ["a quantile is not finite"])
    with pytest.raises(DataError, match=r"^no usable forecast: .* and so did the random walk's"):
        ensemble.forecast(clean(raw, "2023-06-30"), horizon_params(7), [(RandomWalk(), True)], 60)
