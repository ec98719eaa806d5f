import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from fxforecast.engine import calibration, combiner, ensemble
from fxforecast.engine.members import configured_members
from fxforecast.engine.members.base import Fitted, Member
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.engine.validation import (
    MIN_FIT_OBS,
    MIN_VALIDATION_ORIGINS,
    Validation,
    validation_set,
)
from fxforecast.errors import DataError
from fxforecast.horizons import VALIDATION_ORIGINS_LONG, horizon_params, refit_anchor
from fxforecast.marketdata.clean import clean
from fxforecast.settings import Settings


@dataclass(frozen=True)
class Broken(Member):
    """A member whose fit raises, as a real library failure would."""

    name = "broken"

    def fit(self, frame):
        raise np.linalg.LinAlgError("Singular matrix")


@dataclass(frozen=True)
class NotANumber(Member):
    name = "not_a_number"

    def fit(self, frame):
        class Bad(Fitted):
            def _forecast(self, frame, origins, steps):
                return [np.full((n, 5), np.nan) for n in steps]

        return Bad()


@dataclass(frozen=True)
class Hangs(Member):
    name = "hangs"

    def fit(self, frame):
        time.sleep(30)


@pytest.fixture(scope="module")
def data(raw):
    return clean(raw, "2023-06-30")


def test_weights_sum_to_one_favour_lower_loss_and_are_shrunk():
    weights = combiner.earn_weights({"a": 1.0, "b": 2.0, "c": 4.0})
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["a"] > weights["b"] > weights["c"]
    assert weights["c"] >= combiner.WEIGHT_SHRINK / 3  # shrinkage keeps every member in play
    equal = combiner.earn_weights({"a": 3.0, "b": 3.0})
    assert equal == pytest.approx({"a": 0.5, "b": 0.5})


def test_pinball_loss_by_hand():
    quantiles = np.array([[90.0, 95.0, 100.0, 105.0, 110.0]])
    # actual 104: losses 0.025*14, 0.1*9, 0.5*4, 0.1*1 (above q0.9? no: 104<105 -> 0.1*1), ...
    expected = np.mean([0.025 * 14, 0.1 * 9, 0.5 * 4, (1 - 0.9) * 1, (1 - 0.975) * 6])
    one_origin = Validation(7, [pd.Timestamp("2024-01-05")], [1], [np.array([104.0])], [100.0])
    assert one_origin.score([quantiles]) == pytest.approx(expected)


def test_calibration_widens_intervals_that_were_too_narrow():
    rng = np.random.default_rng(0)
    paths, actuals = [], []
    for _ in range(60):
        sd = 0.01 * np.sqrt(np.arange(1, 6))
        z = np.array([-1.96, -1.2816, 0, 1.2816, 1.96])
        paths.append(100 * np.exp(sd[:, None] * z[None, :]))
        actuals.append(100 * np.exp(2 * sd * rng.standard_normal(5)))  # truly twice as wide
    validation = validation_of(actuals, days=7)
    factors = calibration.calibration_factors(validation.tails(paths), validation)
    assert 1.6 < factors["80"] < 2.5 and 1.6 < factors["95"] < 2.5
    calibrated = calibration.calibrate(paths[0], factors)
    assert np.allclose(calibrated[:, 2], paths[0][:, 2])
    assert np.all(calibrated[:, 4] - calibrated[:, 0] > paths[0][:, 4] - paths[0][:, 0])


def test_ensemble_weights_every_member_and_sums_to_one(data):
    params = horizon_params(7)
    result = ensemble.forecast(data, params, configured_members(Settings(), params), 120)
    working = [m for m in result.members.values() if m.status != "disabled"]
    assert [m.name for m in working] == ["random_walk", "arima_garch", "var", "random_forest"]
    assert sum(m.weight for m in working) == pytest.approx(1.0)
    rounds = [m.weight * combiner.SELECTION_ROUNDS for m in working]
    assert rounds == pytest.approx(np.round(rounds))
    assert all(m.score > 0 for m in working)
    assert result.members["chronos"].weight == 0  # off by default
    assert not result.degraded
    assert result.validation_origins == params.validation_origins
    assert np.all(np.diff(result.quantiles, axis=1) >= 0)


def test_a_failing_member_gets_weight_zero_and_the_run_goes_on(data):
    members = [(RandomWalk(), True), (Broken(), True), (NotANumber(), True), (Hangs(), True)]
    started = time.perf_counter()
    result = ensemble.forecast(data, horizon_params(7), members, timeout_s=2)
    assert time.perf_counter() - started < 20
    assert result.degraded
    assert result.members["random_walk"].weight == pytest.approx(1.0)
    assert result.members["broken"].status == "failed"
    assert "LinAlgError: Singular matrix" in result.members["broken"].reason
    assert "non-finite" in result.members["not_a_number"].reason
    assert "timed out after 2 s" in result.members["hangs"].reason
    for name in ("broken", "not_a_number", "hangs"):
        assert result.members[name].weight == 0
    assert np.all(np.isfinite(result.quantiles))


def test_disabled_members_are_reported_not_degraded(data):
    settings = Settings(enable_var=False, enable_rf=False)
    params = horizon_params(7)
    result = ensemble.forecast(data, params, configured_members(settings, params), 120)
    assert result.members["var"].status == "disabled"
    assert result.members["random_forest"].weight == 0
    assert not result.degraded


def test_later_data_changes_nothing(raw):
    """Leakage: rows after the as-of date, changed wildly, leave the forecast identical. Early in
    the data, where the 15-day validation holds ~130 origins instead of 400: same code, faster."""
    as_of = pd.Timestamp("2014-03-07")
    params = horizon_params(15)
    members = configured_members(Settings(), params)
    before = ensemble.forecast(clean(raw, as_of), params, members, 120)
    market = raw.market.copy()
    later = market.index > as_of
    market.loc[later, ["USDCLP", "Copper", "DXY"]] = (
        market.loc[later, ["USDCLP", "Copper", "DXY"]] * 1.7
    )
    rates = raw.rates.copy()
    rates.loc[rates.index > as_of, "rate_differential"] = 12.0
    changed = type(raw)(market, rates, raw.source)
    after = ensemble.forecast(clean(changed, as_of), params, members, 120)
    assert np.array_equal(before.quantiles, after.quantiles)
    assert {n: m.weight for n, m in before.members.items()} == {
        n: m.weight for n, m in after.members.items()
    }


def test_too_short_history_is_a_clear_error(raw):
    params = horizon_params(90)
    with pytest.raises(DataError, match="history too short for the 90-day horizon"):
        ensemble.forecast(
            clean(raw, "2011-12-30"), params, configured_members(Settings(), params), 120
        )


def _paths_with_drift(rng, drift_is_real: bool, n=80):
    paths, actuals, lasts = [], [], []
    z = np.array([-1.96, -1.2816, 0, 1.2816, 1.96])
    for _ in range(n):
        drift = rng.normal(0, 0.01)
        sd = 0.005 * np.sqrt(np.arange(1, 6))
        median = 100 * np.exp(drift * np.arange(1, 6) / 5)
        paths.append(median[:, None] * np.exp(sd[:, None] * z[None, :]))
        realised = drift if drift_is_real else rng.normal(0, 0.01)
        actuals.append(100 * np.exp(realised * np.arange(1, 6) / 5 + sd * rng.normal(size=5)))
        lasts.append(100.0)
    return paths, validation_of(actuals, lasts=lasts, days=7)


def validation_of(actuals, lasts=None, days=7) -> Validation:
    """A validation set of these actual paths (origins and steps do not matter to the rules)."""
    lasts = lasts or [float(a[0]) for a in actuals]
    origins = list(pd.bdate_range("2020-01-03", periods=len(actuals), freq="W-FRI"))
    return Validation(days, origins, [len(a) for a in actuals], actuals, lasts)


def on_tails(rule, paths, validation):
    """A drift rule on the validation paths' tails, stacked as the combiners give them."""
    return rule(validation.tails(paths), validation)


def test_drift_is_kept_only_when_it_beat_no_change():
    rng = np.random.default_rng(1)
    assert on_tails(combiner.choose_drift_share, *_paths_with_drift(rng, True)) == 1.0
    assert on_tails(combiner.choose_drift_share, *_paths_with_drift(rng, False)) == 0.0


def test_keep_drift_moves_the_median_and_keeps_the_shape():
    path = np.array([[98.0, 99.0, 101.0, 103.0, 104.0]])
    kept = combiner.keep_drift(path, 100.0, 0.0)
    assert kept[0, 2] == pytest.approx(100.0)
    assert np.allclose(np.log(kept / kept[:, [2]]), np.log(path / path[:, [2]]))


def test_long_horizons_validate_on_as_many_weeks_as_the_data_allows(raw):
    params = horizon_params(30)
    assert (
        params.validation_origins == VALIDATION_ORIGINS_LONG > horizon_params(7).validation_origins
    )
    recent = validation_set(clean(raw, "2024-11-29"), params)
    assert len(recent.origins) == VALIDATION_ORIGINS_LONG
    assert recent.origins == sorted(recent.origins)
    assert (recent.origins[-1] - recent.origins[0]).days == 7 * (VALIDATION_ORIGINS_LONG - 1)
    # Early in the data the window stops where a refit would have too few closes.
    early_data = clean(raw, "2015-06-26")
    early = validation_set(early_data, params)
    assert MIN_VALIDATION_ORIGINS <= len(early.origins) < VALIDATION_ORIGINS_LONG
    closes = early_data.closes()
    first_anchor = refit_anchor(early.origins[0], params.refit_weeks)
    assert closes.loc[:first_anchor].size >= MIN_FIT_OBS
    one_more = refit_anchor(early.origins[0] - pd.Timedelta(weeks=1), params.refit_weeks)
    assert closes.loc[:one_more].size < MIN_FIT_OBS
