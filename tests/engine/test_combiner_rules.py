"""The combiners' and calibrations' rules against numbers worked out by hand (each comment shows
the arithmetic), on paths small enough to follow."""

import numpy as np
import pandas as pd
import pytest
from fxforecast.engine import calibration, combiner
from fxforecast.engine.validation import Validation

ROW = np.array([90.0, 95.0, 100.0, 105.0, 110.0])


def on_tails(rule, paths, validation):
    """A drift rule on the validation paths' tails, stacked as the combiners give them."""
    return rule(validation.tails(paths), validation)


def select(member_paths, validation):
    """select_members on each member's tails, stacked as the greedy combiner gives them."""
    return combiner.select_members(
        {name: validation.tails(paths) for name, paths in member_paths.items()}, validation
    )


def _validation(actuals, days=7, lasts=None) -> Validation:
    lasts = lasts or [100.0] * len(actuals)
    origins = list(pd.bdate_range("2020-01-03", periods=len(actuals), freq="W-FRI"))
    return Validation(days, origins, [len(a) for a in actuals], actuals, lasts)


def test_inverse_loss_weights_by_hand():
    # losses 1 and 2: inverse ** 10 -> 1 and 1/1024; shares 1024/1025 and 1/1025; then 75% of
    # those plus 25% spread evenly (12.5% each).
    weights = combiner.earn_weights({"a": 1.0, "b": 2.0})
    assert weights["a"] == pytest.approx(0.75 * 1024 / 1025 + 0.125)
    assert weights["b"] == pytest.approx(0.75 / 1025 + 0.125)
    # A zero loss counts as 1e-9, not a division by zero.
    assert combiner.earn_weights({"a": 0.0, "b": 1.0})["a"] == pytest.approx(0.875)


def test_quantile_average_is_the_weighted_mean_of_each_level_sorted():
    low = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    high = np.array([[3.0, 4.0, 5.0, 6.0, 20.0]])
    average = combiner.quantile_average({"low": low, "high": high}, {"low": 0.75, "high": 0.25})
    np.testing.assert_allclose(average, [[1.5, 2.5, 3.5, 4.5, 8.75]])
    crossed = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    np.testing.assert_allclose(
        combiner.quantile_average({"x": crossed}, {"x": 1.0}), [[1.0, 2.0, 3.0, 4.0, 5.0]]
    )


def test_keep_drift_by_hand():
    # median 110 from a last close of 100: keeping half the drift in log terms puts it at
    # 100 * 1.1 ** 0.5; every level moves by the same factor.
    path = np.array([ROW + 10.0])
    kept = combiner.keep_drift(path, 100.0, 0.5)
    np.testing.assert_allclose(kept, path * (100 * 1.1**0.5) / 110)
    np.testing.assert_allclose(combiner.keep_drift(path, 100.0, 1.0), path)


def test_combination_applies_its_weights_and_drift_and_reports_it():
    combination = combiner.Combination({"a": 0.5, "b": 0.5}, 0.0)
    out = combination.apply({"a": np.array([ROW + 10]), "b": np.array([ROW + 30])}, 100.0)
    # The average is ROW + 20 (median 120); no drift kept: scaled by 100 / 120.
    np.testing.assert_allclose(out, [(ROW + 20) * 100 / 120])
    assert combination.info() == {"drift_share": 0.0}


def test_selection_picks_the_first_listed_member_on_a_tie():
    path = [np.array([ROW, ROW])]
    actual = [np.array([100.0, 100.0])]
    weights = select({"first": path, "second": path}, _validation(actual))
    assert weights == {"first": 1.0, "second": 0.0}


def test_selection_mixes_members_whose_average_beats_each():
    # Tails: member "low" always 2 below the actual, "high" always 2 above: their average is
    # exact, so the rounds alternate and each ends with about half the weight.
    actual = [np.array([100.0, 100.0])] * 4
    low = [np.array([ROW - 2, ROW - 2])] * 4
    high = [np.array([ROW + 2, ROW + 2])] * 4
    weights = select({"low": low, "high": high}, _validation(actual))
    assert weights == {"low": 13 / 25, "high": 12 / 25}


def _evidence_case(right: int, wrong: int, days: int):
    """Median drifting +1% (to 101) from 100 on every path; the close ends at 101 on `right`
    paths and stays at 100 on `wrong` ones (tails of one row)."""
    path = np.array([ROW + 1.0] * 2)
    actuals = [np.full(2, 101.0)] * right + [np.full(2, 100.0)] * wrong
    return [path] * (right + wrong), _validation(actuals, days=days)


def test_evidence_share_by_hand():
    # Per path, the whole drift's error minus no change's: -1 (right) or +1 (wrong). 30 right
    # of 40 at 7 days: mean gain 0.5, sd sqrt(40/39 * 0.75), 40 independent paths:
    # share = 1 - (sd / sqrt(40) / 0.5) ** 2.
    sd = np.sqrt(40 / 39 * 0.75)
    expected = 1 - (sd / np.sqrt(40) / 0.5) ** 2
    assert on_tails(combiner.evidence_share, *_evidence_case(30, 10, 7)) == pytest.approx(expected)
    # The same at 90 days: 40 * 7 / 90 independent paths, less evidence, less drift.
    fewer = 1 - (sd / np.sqrt(40 * 7 / 90) / 0.5) ** 2
    assert on_tails(combiner.evidence_share, *_evidence_case(30, 10, 90)) == pytest.approx(fewer)
    assert on_tails(combiner.evidence_share, *_evidence_case(10, 30, 7)) == 0.0  # the drift lost
    assert (
        on_tails(combiner.evidence_share, *_evidence_case(40, 0, 7)) == 0.0
    )  # no spread: no evidence


@pytest.mark.parametrize("days, share", [(30, 1.0), (31, 0.0)])
def test_the_drift_is_kept_whole_up_to_30_days(days, share):
    paths, validation = _evidence_case(10, 30, days)  # a drift that lost: kept only up to 30
    fitted = combiner.GreedyCombiner().fit({"m": paths}, validation)
    assert fitted.drift_share == share and fitted.weights == {"m": 1.0}


def test_inverse_loss_fits_weights_and_a_drift_share():
    paths, validation = _evidence_case(40, 0, 7)  # the drift right every time
    fitted = combiner.InverseLossCombiner().fit({"m": paths, "n": paths}, validation)
    assert fitted.weights == pytest.approx({"m": 0.5, "n": 0.5}) and fitted.drift_share == 1.0


def test_paths_and_origins_must_pair_up():
    paths, validation = _evidence_case(3, 1, 7)
    with pytest.raises(ValueError):
        on_tails(combiner.choose_drift_share, paths[:3], validation)
    with pytest.raises(ValueError):
        validation.tails(paths[:3])
    closes = pd.Series(100.0 + np.arange(300.0), index=pd.bdate_range("2019-01-01", periods=300))
    with pytest.raises(ValueError):
        calibration.RegimeConformal().fit(paths[:3], validation, closes)


def test_shrunk_factor_by_hand():
    # weight = n / (n + 10) on log(raw), then clipped to [0.5, 3].
    assert calibration.shrunk_factor(4.0, 10) == pytest.approx(2.0)
    assert calibration.shrunk_factor(4.0, 30) == pytest.approx(4.0**0.75)
    assert calibration.shrunk_factor(16.0, 40) == 3.0  # 16 ** 0.8 = 9.2, clipped
    assert calibration.shrunk_factor(0.01, 90) == 0.5  # 0.01 ** 0.9, clipped
    assert calibration.shrunk_factor(0.0, 10) == 0.5  # 1e-6 ** 0.5, clipped
    assert calibration.shrunk_factor(0.8, 10) == pytest.approx(0.8**0.5)


def test_weighted_quantile_by_hand():
    # sorted values 1, 2, 3 with weights 1/4, 1/2, 1/4 sit at 1/8, 1/2, 7/8.
    values, weights = np.array([3.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0])
    assert calibration.weighted_quantile(values, weights, 0.5) == pytest.approx(2.0)
    assert calibration.weighted_quantile(values, weights, 0.3125) == pytest.approx(1.5)
    assert calibration.weighted_quantile(values, weights, 0.0) == 1.0
    assert calibration.weighted_quantile(values, weights, 0.95) == 3.0


def test_interval_ratios_by_hand():
    # Tails (second rows): 104 against the 80% upper half-width log(105/100); 97 against the
    # lower one log(100/95).
    validation = _validation([np.array([0.0, 104.0]), np.array([0.0, 97.0])])
    tails = validation.tails([np.array([ROW, ROW])] * 2)
    actual = validation.tails(validation.actuals)
    ratios = calibration.interval_ratios(tails, actual, 1, 3)
    assert ratios == pytest.approx(
        [np.log(1.04) / np.log(1.05), np.log(100 / 97) / np.log(1 / 0.95)]
    )
    wide = calibration.interval_ratios(tails, actual, 0, 4)
    assert wide[0] == pytest.approx(np.log(1.04) / np.log(1.10))


def test_calibrate_stretches_each_interval_by_its_factor_and_keeps_them_sorted():
    # 80% twice as wide in log terms: 100 * 0.95 ** 2 = 90.25 and 100 * 1.05 ** 2 = 110.25;
    # the 95% levels (90, 110) unchanged, so the levels are sorted again.
    out = calibration.calibrate(np.array([ROW]), {"80": 2.0, "95": 1.0})
    np.testing.assert_allclose(out, [[90.0, 90.25, 100.0, 110.0, 110.25]])


def test_split_conformal_factors_by_hand():
    # 9 one-row tails: the 80% ratios are 0.1, 0.2, ..., 0.9 (actual = 100 * 1.05 ** r);
    # the level is 0.8 * (1 + 1/9) = 0.889, np.quantile's value there is 0.1 + 8 * 0.889 * 0.1
    # = 0.811; 9 independent paths shrink it by 9 / 19 in log terms.
    # Odd ones above the median, even ones below it (100 * 0.95 ** r: ratio r on that side).
    ratios = np.arange(1, 10) / 10
    paths = [np.array([ROW, ROW])] * 9
    actuals = [np.array([0.0, 100 * (1.05 if i % 2 else 0.95) ** r]) for i, r in enumerate(ratios)]
    validation = _validation(actuals)
    factors = calibration.calibration_factors(validation.tails(paths), validation)
    raw80 = np.quantile(ratios, 0.8 * (1 + 1 / 9))
    assert factors["80"] == pytest.approx(np.exp(9 / 19 * np.log(raw80)))
    sides = np.where(np.arange(9) % 2, np.log(1.05) / np.log(1.10), np.log(0.95) / np.log(0.90))
    raw95 = np.quantile(ratios * sides, min(1.0, 0.95 * (1 + 1 / 9)))
    assert factors["95"] == pytest.approx(np.exp(9 / 19 * np.log(raw95)))
    fitted = calibration.SplitConformal().fit(paths, validation, None)
    assert fitted.info() == {"method": "split_conformal", **factors}
    np.testing.assert_allclose(
        fitted.apply(np.array([ROW])), calibration.calibrate(np.array([ROW]), factors)
    )


def test_recent_corrections_weigh_recent_paths_by_hand():
    # Two one-row tails 26 weeks apart: the older weighs half the newer. 80% ratios 0.5 (old)
    # and 2.0 (new): weights 1/3 and 2/3 sit at 1/6 and 2/3; level 0.8 lies beyond: 2.0.
    # Kish's effective count (1.5 ** 2 / 1.25 = 1.8) gives 2 independent paths (the floor).
    paths = [np.array([ROW, ROW])] * 2
    actuals = [np.array([0.0, 100 * 1.05**0.5]), np.array([0.0, 100 * 1.05**2.0])]
    origins = [pd.Timestamp("2020-01-03"), pd.Timestamp("2020-07-03")]
    validation = Validation(7, origins, [2, 2], actuals, [100.0, 100.0])
    corrections = calibration.recent_corrections(validation.tails(paths), validation)
    assert corrections["80"] == pytest.approx(np.exp(2 / 12 * np.log(2.0)))
    # 95%: ratios log(1.05 ** r) / log(1.1): 0.2559 and 1.0237; 0.95 lies beyond: 1.0237.
    ratio95 = np.log(1.05**2.0) / np.log(1.10)
    assert corrections["95"] == pytest.approx(np.exp(2 / 12 * np.log(ratio95)))


def test_the_regime_factor_by_hand():
    # Closes alternating +-1% after a calm start: the EWMA (decay 0.97) of squared returns
    # against the 250-day standard deviation, its square root the factor.
    returns = np.r_[np.full(300, 0.001) * np.resize([1, -1], 300), np.resize([0.01, -0.01], 20)]
    closes = pd.Series(
        800 * np.exp(np.r_[0.0, np.cumsum(returns)]),
        index=pd.bdate_range("2020-01-01", periods=321),
    )
    ewma_var = returns[0] ** 2  # pandas starts the EWMA at the first value
    for r in returns[1:]:
        ewma_var = 0.97 * ewma_var + 0.03 * r**2
    long = np.std(returns[-250:], ddof=1)
    fitted = calibration.VolatilityRegime().fit([], None, closes)
    assert fitted.fast_vol == pytest.approx(np.sqrt(ewma_var))
    assert fitted.long_vol == pytest.approx(long)
    assert fitted.factor == pytest.approx((np.sqrt(ewma_var) / long) ** 0.5)
    assert fitted.info() == {
        "method": "regime",
        "yardstick": "daily moves",
        "fast_vol": round(np.sqrt(ewma_var), 6),
        "long_vol": round(long, 6),
        "factor": round(fitted.factor, 4),
    }
    # As it stood at an earlier date: the same rule on the closes up to it.
    day = closes.index[310]
    earlier = calibration.VolatilityRegime().fit([], None, closes.loc[:day])
    assert calibration.DAILY.factors(closes, [day])[0] == pytest.approx(earlier.factor)


def test_recent_corrections_interpolate_between_weighted_paths_by_hand():
    # Origins 52, 26 and 0 weeks before the last: weights 1/4, 1/2, 1 (1/7, 2/7, 4/7 of the
    # total), each spread over its path's tail: two points of 3.0 (1/14 each), two of 0.5 (1/7
    # each), one of 1.0 (4/7; the newest path is shorter). Sorted, the points sit at 1/14,
    # 3/14, 4/7 (1.0), 25/28 (3.0), 27/28; 0.8 lies between 1.0 and 3.0. Kish's count:
    # 1.75 ** 2 / 1.3125 = 2.333 independent paths.
    origins = [pd.Timestamp("2020-01-03") + pd.Timedelta(weeks=w) for w in (0, 26, 52)]
    two = np.array([ROW, ROW])
    paths = [np.array([ROW] * 4), np.array([ROW] * 4), two]
    actuals = [np.full(4, 100 * 1.05**3.0), np.full(4, 100 * 1.05**0.5), np.full(2, 105.0)]
    validation = Validation(7, origins, [4, 4, 2], actuals, [100.0] * 3)
    corrections = calibration.recent_corrections(validation.tails(paths), validation)
    raw = 1.0 + (0.8 - 4 / 7) / (25 / 28 - 4 / 7) * 2.0
    kish = 1.75**2 / 1.3125
    assert corrections["80"] == pytest.approx(np.exp(kish / (kish + 10) * np.log(raw)))


def test_regime_conformal_reports_what_it_applied_rounded():
    paths = [np.array([ROW, ROW])] * 30
    actuals = [np.array([0.0, 100 * 1.05 ** (0.3 + i / 40)]) for i in range(30)]
    origins = list(pd.bdate_range("2021-01-01", periods=30, freq="W-FRI"))
    validation = Validation(7, origins, [2] * 30, actuals, [100.0] * 30)
    rng = np.random.default_rng(2)
    index = pd.bdate_range(end=origins[-1] + pd.Timedelta(days=7), periods=700)
    closes = pd.Series(800 * np.exp(np.cumsum(rng.normal(0, 0.006, 700))), index=index)
    fitted = calibration.RegimeConformal().fit(paths, validation, closes)
    info = fitted.info()
    assert info["correction80"] == round(fitted.corrections["80"], 4)
    assert info["correction95"] == round(fitted.corrections["95"], 4)
    assert info["factor"] == round(fitted.regime.factor, 4) and info["method"] == "regime_conformal"
    assert fitted.corrections["80"] != round(fitted.corrections["80"], 4)
