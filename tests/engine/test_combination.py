"""The combiners and calibrations a setting can pick (issue 9): ensemble selection follows a
clearly better member, the drift enters by its evidence, and widths follow the regime."""

import numpy as np
import pandas as pd
import pytest
from fxforecast.engine import calibration, combiner, ensemble
from fxforecast.engine.members import configured_members
from fxforecast.engine.validation import Validation
from fxforecast.errors import ConfigError
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import clean
from fxforecast.settings import CHOICES, Settings, load_settings

Z = np.array([-1.96, -1.2816, 0.0, 1.2816, 1.96])


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


def _members_around(actual_moves, rng):
    """'sharp' centred on the realised path with the right spread; 'biased' 1% off with the
    same spread; 'wide' centred on no change, three times too wide."""
    sd = 0.004 * np.sqrt(np.arange(1, 6))
    sharp, biased, wide, actuals = [], [], [], []
    for move in actual_moves:
        centre = 100 * np.exp(move * np.arange(1, 6) / 5)
        actuals.append(centre * np.exp(sd * rng.standard_normal(5)))
        sharp.append(centre[:, None] * np.exp(sd[:, None] * Z))
        biased.append(1.01 * centre[:, None] * np.exp(sd[:, None] * Z))
        wide.append(100 * np.exp(3 * sd[:, None] * Z) * np.ones((5, 1)))
    return {"wide": wide, "biased": biased, "sharp": sharp}, actuals


def test_selection_follows_a_clearly_better_member():
    rng = np.random.default_rng(3)
    paths, actuals = _members_around(rng.normal(0, 0.01, 60), rng)
    weights = select(paths, _validation(actuals))
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["sharp"] >= 0.9
    # Inverse loss shrunk toward equal weights keeps a quarter of the weight on the others.
    old = combiner.InverseLossCombiner().fit(paths, _validation(actuals)).weights
    assert old["sharp"] < weights["sharp"] and old["wide"] >= combiner.WEIGHT_SHRINK / 3


def test_selection_weights_are_whole_rounds():
    rng = np.random.default_rng(4)
    paths, actuals = _members_around(rng.normal(0, 0.01, 30), rng)
    weights = select(paths, _validation(actuals))
    counts = np.array(list(weights.values())) * combiner.SELECTION_ROUNDS
    assert np.allclose(counts, np.round(counts))


def _drift_case(rng, real: float, n=80, days=90):
    """Members' drift d per path; the realised move is real * d plus noise."""
    paths, actuals = [], []
    sd = 0.004 * np.sqrt(np.arange(1, 6))
    for _ in range(n):
        d = rng.normal(0, 0.02)
        paths.append((100 * np.exp(d * np.arange(1, 6) / 5))[:, None] * np.exp(sd[:, None] * Z))
        actuals.append(100 * np.exp(real * d * np.arange(1, 6) / 5 + sd * rng.normal(size=5)))
    return paths, _validation(actuals, days=days)


def test_drift_share_follows_its_evidence_continuously():
    rng = np.random.default_rng(5)
    strong = on_tails(combiner.evidence_share, *_drift_case(rng, real=1.0, n=300))
    fewer_paths = on_tails(combiner.evidence_share, *_drift_case(rng, real=1.0, n=60))
    none = on_tails(combiner.evidence_share, *_drift_case(rng, real=0.0))
    assert strong > 0.9
    assert 0.3 < fewer_paths < strong  # the same drift on less evidence keeps less of it
    assert none == 0.0


def test_greedy_keeps_the_drift_whole_up_to_30_days_and_weighs_it_beyond():
    rng = np.random.default_rng(6)
    paths, validation = _drift_case(rng, real=0.0, days=30)
    assert combiner.GreedyCombiner().fit({"m": paths}, validation).drift_share == 1.0
    paths, validation = _drift_case(rng, real=0.0, days=90)
    assert combiner.GreedyCombiner().fit({"m": paths}, validation).drift_share == 0.0


def _closes(calm_days, turbulent_days, calm_first=True, seed=7):
    rng = np.random.default_rng(seed)
    calm = rng.normal(0, 0.003, calm_days)
    turbulent = rng.normal(0, 0.015, turbulent_days)
    returns = np.r_[calm, turbulent] if calm_first else np.r_[turbulent, calm]
    index = pd.bdate_range("2020-01-01", periods=len(returns) + 1)
    return pd.Series(800 * np.exp(np.r_[0.0, np.cumsum(returns)]), index=index)


def test_widths_follow_a_regime_change():
    path = 900 * np.exp(0.01 * np.sqrt(np.arange(1, 6))[:, None] * Z)
    calm_then_storm = calibration.VolatilityRegime().fit([], None, _closes(400, 40))
    storm_then_calm = calibration.VolatilityRegime().fit([], None, _closes(40, 400, False))
    steady = calibration.VolatilityRegime().fit([], None, _closes(600, 0))
    assert calm_then_storm.factor > 1.25  # the storm's first 40 days already widen the bands
    assert storm_then_calm.factor < 0.9  # and a calm after it narrows them
    assert steady.factor == pytest.approx(1.0, abs=0.15)
    widened, narrowed = calm_then_storm.apply(path), storm_then_calm.apply(path)
    assert np.allclose(widened[:, 2], path[:, 2]) and np.allclose(narrowed[:, 2], path[:, 2])
    width = path[:, 4] - path[:, 0]
    assert np.all(widened[:, 4] - widened[:, 0] > width)
    assert np.all(narrowed[:, 4] - narrowed[:, 0] < width)
    info = calm_then_storm.info()
    assert (
        info["method"] == "regime"
        and info["fast_vol"] > info["long_vol"]
        and info["yardstick"] == "daily moves"
    )


def _walk(days, step_sd, noise_sd=0.0, seed=11):
    """A random walk in log price (daily step_sd) seen through noise of noise_sd: noise makes
    daily closes reverse within days, as USD/CLP's do, without moving the rate over weeks."""
    rng = np.random.default_rng(seed)
    log_price = np.cumsum(rng.normal(0, step_sd, days)) + rng.normal(0, noise_sd, days)
    return pd.Series(800 * np.exp(log_price), index=pd.bdate_range("2016-01-01", periods=days))


def test_the_yardstick_measures_how_far_the_rate_moves_over_its_days():
    """Per close, the spread of 5- and 21-day moves: below daily volatility when closes reverse
    within days (so widths grow slower than daily volatility x sqrt(steps) says), the same
    without reversal."""
    reverting, walk = _walk(3000, 0.004, noise_sd=0.004), _walk(3000, 0.004)
    for days in (5, 21):
        yardstick = calibration.Yardstick(days, 0.97, 750)
        for closes, expected in ((reverting, 0.004 / np.sqrt(0.004**2 + 2 * 0.004**2)), (walk, 1)):
            long_k = yardstick.volatility(closes)[1].iloc[-1]
            long_daily = calibration.Yardstick(1, 0.97, 750).volatility(closes)[1].iloc[-1]
            # Noise of variance v adds 2v to every move's variance, spread over `days` closes.
            ratio = np.sqrt((0.004**2 + 2 * 0.004**2 / days) / (0.004**2 + 2 * 0.004**2))
            assert long_k / long_daily == pytest.approx(ratio if expected != 1 else 1, rel=0.12)
    assert calibration.DAILY.label() == "daily moves"
    assert calibration.Yardstick(21, 0.99, 250).label() == "21-day moves"


def test_daily_swings_that_reverse_within_the_week_do_not_widen_the_intervals():
    """The 2024 case: daily closes swing more while weekly moves stay as they were. Measured on
    daily returns the regime widens every interval; on the weekly yardstick it does not. Swings
    that do move the rate widen both."""
    calm = _walk(600, 0.004)
    log_calm = np.log(calm.to_numpy())
    rng = np.random.default_rng(3)
    index = pd.bdate_range(calm.index[0], periods=660)
    swinging = np.r_[log_calm, log_calm[-1] + rng.normal(0, 0.008, 60)]  # noise around a level
    moving = np.r_[log_calm, log_calm[-1] + np.cumsum(rng.normal(0, 0.01, 60))]
    weekly = calibration.Yardstick(5, 0.97, 250)

    def factor(yardstick, log_closes):
        closes = pd.Series(np.exp(log_closes), index=index)
        return calibration.VolatilityRegime(yardstick).fit([], None, closes).factor

    daily, weekly_factor = factor(calibration.DAILY, swinging), factor(weekly, swinging)
    assert daily > 1.25 and weekly_factor - 1 < (daily - 1) / 2
    daily, weekly_factor = factor(calibration.DAILY, moving), factor(weekly, moving)
    assert daily > 1.25 and weekly_factor == pytest.approx(daily, rel=0.1)


def test_the_default_calibration_measures_the_regime_on_the_horizons_yardstick():
    closes = _walk(1500, 0.004, noise_sd=0.002)
    for days, label in (
        (7, "5-day moves"),
        (15, "5-day moves"),
        (30, "21-day moves"),
        (90, "21-day moves"),
    ):
        params = horizon_params(days)
        paths, validation = _coverage_case(lambda age: 1.0, n=60, days=days)
        closes.index = pd.bdate_range(
            end=validation.origins[-1] + pd.Timedelta(days=days), periods=1500
        )
        fitted = calibration.CALIBRATIONS["regime_conformal"](params).fit(paths, validation, closes)
        daily = calibration.CALIBRATIONS["regime_conformal_daily"](params).fit(
            paths, validation, closes
        )
        assert fitted.info()["yardstick"] == label and daily.info()["yardstick"] == "daily moves"
        expected = (
            calibration.Yardstick.of(params).ratio(closes)[2] ** calibration.REGIME_ELASTICITY
        )
        assert fitted.regime.factor == pytest.approx(expected)


def _coverage_case(spread_by_age, n=150, days=7, seed=8):
    """Weekly validation paths of one member with a fixed spread; the realised moves' spread is
    spread_by_age(weeks before the last origin) times the member's."""
    rng = np.random.default_rng(seed)
    sd = 0.004 * np.sqrt(np.arange(1, 6))
    paths = [100 * np.exp(sd[:, None] * Z) for _ in range(n)]
    actuals = [
        100 * np.exp(spread_by_age(n - 1 - i) * sd * rng.standard_normal(5)) for i in range(n)
    ]
    return paths, _validation(actuals, days=days)


def _recent_corrections(paths, validation):
    return calibration.recent_corrections(validation.tails(paths), validation)


def test_recent_coverage_corrects_the_widths_and_older_misses_fade():
    too_wide_lately = _recent_corrections(*_coverage_case(lambda age: 0.5 if age < 60 else 1.0))
    too_narrow_lately = _recent_corrections(*_coverage_case(lambda age: 2.0 if age < 60 else 1.0))
    missed_long_ago = _recent_corrections(
        *_coverage_case(lambda age: 3.0 if age >= 4 * calibration.RECENT_HALF_LIFE_WEEKS else 1.0)
    )
    assert too_wide_lately["80"] < 0.8 and too_wide_lately["95"] < 0.8
    assert too_narrow_lately["80"] > 1.3 and too_narrow_lately["95"] > 1.3
    assert missed_long_ago["80"] == pytest.approx(1.0, abs=0.12)
    # The same evidence on 30-day paths overlaps more, so it moves the correction less.
    wide_30 = _recent_corrections(*_coverage_case(lambda age: 0.5 if age < 60 else 1.0, days=30))
    assert too_wide_lately["80"] < wide_30["80"] < 1.0


def test_regime_conformal_widths_are_the_regimes_times_the_correction():
    paths, validation = _coverage_case(lambda age: 0.5, n=120)
    closes = _closes(400, 40)
    closes.index = pd.bdate_range(end=validation.origins[-1] + pd.Timedelta(days=7), periods=441)
    fitted = calibration.RegimeConformal().fit(paths, validation, closes)
    regime = calibration.VolatilityRegime().fit(paths, validation, closes)
    assert fitted.regime.factor == pytest.approx(regime.factor) and regime.factor > 1.25
    # The validation paths are widened by the regime as of their own (calm) origins: too wide
    # for moves of half the spread, so the correction narrows.
    assert fitted.corrections["80"] < 0.8
    path = paths[0]
    out = fitted.apply(path)
    assert np.allclose(out[:, 2], path[:, 2])
    half_width = np.log(out[:, 3] / out[:, 2]) / np.log(path[:, 3] / path[:, 2])
    assert np.allclose(half_width, regime.factor * fitted.corrections["80"])
    info = fitted.info()
    assert info["method"] == "regime_conformal"
    assert {"yardstick", "fast_vol", "long_vol", "factor", "correction80", "correction95"} <= set(
        info
    )


def test_the_settings_name_exactly_the_registered_methods(tmp_path):
    assert set(CHOICES["COMBINER"]) == set(combiner.COMBINERS)
    assert set(CHOICES["CALIBRATION"]) == set(calibration.CALIBRATIONS)
    env = tmp_path / ".env"
    env.write_text("COMBINER=stacking\n")
    with pytest.raises(ConfigError, match="COMBINER='stacking' .* expected one of greedy"):
        load_settings(env, environ={})


# The default and the oldest pair; the regime factor alone is covered above.
@pytest.mark.parametrize(
    "method", [("greedy", "regime_conformal"), ("inverse_loss", "split_conformal")]
)
def test_every_method_gives_a_monotone_forecast_on_real_data(raw, method):
    params = horizon_params(7)
    result = ensemble.forecast(
        clean(raw, "2022-07-29"),
        params,
        configured_members(Settings(), params),
        120,
        0,
        None,
        *method,
    )
    assert np.all(np.isfinite(result.quantiles)) and np.all(np.diff(result.quantiles, axis=1) > 0)
    assert sum(m.weight for m in result.members.values()) == pytest.approx(1.0)
    assert result.calibration.info()["method"] == method[1]


def _drift_right(right: int, wrong: int) -> tuple[list, Validation]:
    """Two-step paths whose median drifts +1% from 100; the drift is right (the close ends at
    101) on `right` paths and wrong (it stays at 100) on `wrong` ones."""
    path = np.array([[99.0, 100.0, 101.0, 102.0, 103.0]] * 2)
    actuals = [np.full(2, 101.0)] * right + [np.full(2, 100.0)] * wrong
    return [path] * (right + wrong), _validation(actuals)


def _evidence_z(right: int, wrong: int) -> float:
    """By hand: keeping share s of the drift moves each tail error by -d_s on a right path and
    +d_s on a wrong one (d_s the kept drift in CLP), so for every share the gain over no
    change in standard errors is (2p - 1) / (2 sqrt(p(1 - p)) sqrt(n / (n - 1))) * sqrt(n),
    p the share of right paths, n the (independent, 7-day) paths."""
    n = right + wrong
    p = right / n
    return (2 * p - 1) / (2 * np.sqrt(p * (1 - p)) * np.sqrt(n / (n - 1))) * np.sqrt(n)


def test_inverse_loss_keeps_a_drift_only_on_one_sided_5_percent_evidence():
    """23 right of 40 beat no change on average, at z 0.95 < 1.645: no drift kept; 28 of 40
    (z 2.7) keep it whole (the largest gain)."""
    assert 0.9 < _evidence_z(23, 17) < 1.0 and _evidence_z(28, 12) > 2.6
    assert on_tails(combiner.choose_drift_share, *_drift_right(23, 17)) == 0.0
    assert on_tails(combiner.choose_drift_share, *_drift_right(28, 12)) == 1.0


def test_the_evidence_rule_at_its_edge_and_at_any_scale():
    """20 right of 31: z = 1.662 (with the sample standard deviation), just past 1.645: kept.
    Ten times the drift (+10%) moves the gain and its standard error alike: 23 of 40 still
    keeps nothing."""
    assert 1.645 < _evidence_z(20, 11) < 1.67
    assert on_tails(combiner.choose_drift_share, *_drift_right(20, 11)) == 1.0
    paths, validation = _drift_right(23, 17)
    wide = [100 + 10 * (path - 100) for path in paths]
    actuals = [100 + 10 * (actual - 100) for actual in validation.actuals]
    assert on_tails(combiner.choose_drift_share, wide, _validation(actuals)) == 0.0


def test_a_quarter_of_the_drift_is_kept_when_a_quarter_of_it_came_true():
    """Median +4% on every path, the close ending +1% each time: keeping 0.25 of the drift
    errs least (by hand: 100 * 1.04 ** 0.25 = 100.985)."""
    path = np.array([[99.0, 102.0, 104.0, 106.0, 109.0]] * 2)
    actuals = [np.full(2, 101.0)] * 20
    assert on_tails(combiner.choose_drift_share, [path] * 20, _validation(actuals)) == 0.25
