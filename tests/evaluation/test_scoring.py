"""The scorer against numbers worked out by hand (see the comments)."""

import math

import numpy as np
import pandas as pd
import pytest
from fxforecast.evaluation.scoring import diebold_mariano, loss_diebold_mariano, score, wql

OFFSETS = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])  # q0.025 .. q0.975 around the median


def _rows(model, medians, actuals, horizon=7):
    rows = []
    for i, (median, actual) in enumerate(zip(medians, actuals, strict=True)):
        q = median + OFFSETS
        origin = (pd.Timestamp("2020-01-03") + pd.Timedelta(weeks=i)).date().isoformat()
        rows.append(
            {
                "model": model,
                "origin": origin,
                "horizon_days": horizon,
                "target_date": "x",
                "steps": 5,
                "q0.025": q[0],
                "q0.1": q[1],
                "q0.5": q[2],
                "q0.9": q[3],
                "q0.975": q[4],
                "last_close": 100.0,
                "actual": actual,
            }
        )
    return rows


ACTUALS = [102.0, 98.0, 101.0, 97.0]


@pytest.fixture
def metrics():
    frame = pd.DataFrame(
        _rows("m", [101, 99, 100, 100], ACTUALS)
        + _rows("random_walk", [100, 100, 100, 100], ACTUALS)
    )
    return score(frame).set_index("model")


def test_point_metrics_by_hand(metrics):
    m = metrics.loc["m"]
    # errors median - actual: -1, 1, -1, 3; no-change errors: -2, 2, -1, 3
    assert m["n"] == 4
    assert m["mae"] == pytest.approx(1.5)
    assert m["rmse"] == pytest.approx(math.sqrt(3))
    assert m["mape"] == pytest.approx((1 / 102 + 1 / 98 + 1 / 101 + 3 / 97) / 4 * 100)
    assert m["rel_mae"] == pytest.approx(1.5 / 2.0)
    # direction: rows 3 and 4 predict no move and are excluded; rows 1 and 2 are right
    assert m["directional_accuracy"] == pytest.approx(1.0)


def test_interval_metrics_by_hand(metrics):
    m = metrics.loc["m"]
    # 80% [m-2, m+2]: 102 in [99,103], 98 in [97,101], 101 in [98,102], 97 not in [98,102]
    assert m["coverage80"] == pytest.approx(0.75)
    assert m["coverage95"] == pytest.approx(1.0)
    assert m["width80"] == pytest.approx(4.0) and m["width95"] == pytest.approx(8.0)


def test_wql_by_hand(metrics):
    # pinball sums per row: 1.1, 1.1, 1.1, 3.1 (model) and 1.6, 1.6, 1.1, 3.1 (random walk)
    assert metrics.loc["m", "wql"] == pytest.approx(2 / 5 * 6.4 / 398)
    assert metrics.loc["random_walk", "wql"] == pytest.approx(2 / 5 * 7.4 / 398)
    assert metrics.loc["m", "rel_wql"] == pytest.approx(6.4 / 7.4)
    assert metrics.loc["random_walk", "rel_mae"] == pytest.approx(1.0)


def test_wql_single_row_independent_formula():
    q = np.array([[96.0, 98.0, 100.0, 102.0, 104.0]])
    # actual 97: losses .025*1 + .9*1 + .5*3 + .1*5 + .025*7 = 3.1
    assert wql(q, np.array([97.0])) == pytest.approx(0.4 * 3.1 / 97)


def test_diebold_mariano_by_hand_no_lag(metrics):
    # d = e^2 - e_nc^2 = -3, -3, 0, 0; mean -1.5; variance 2.25; DM = -1.5 / sqrt(2.25/4) = -2
    # HLN with h=1: -2 * sqrt((4 + 1 - 2) / 4) = -1.7321; two-sided t(3) p-value = 0.18169
    assert metrics.loc["m", "dm_pvalue"] == pytest.approx(0.18169, abs=1e-5)
    assert math.isnan(metrics.loc["random_walk", "dm_pvalue"])  # identical to no-change


def test_diebold_mariano_by_hand_with_hac_lag():
    errors = np.array([3.0, 1, 2, 0, 2, 1])
    benchmark = np.array([1.0, 1, 1, 1, 1, 2])
    # d = 8, 0, 3, -1, 3, -3; mean 5/3; gamma0 = 12.5556, gamma1 = -4.3519; LRV = 3.8519
    # DM = (5/3) / sqrt(3.8519 / 6) = 2.0801; HLN h=2: * sqrt((6 + 1 - 4 + 2/6) / 6) = 1.5504
    # two-sided t(5) p-value = 0.18173
    assert diebold_mariano(errors, benchmark, lag=1) == pytest.approx(0.18173, abs=1e-5)


def test_diebold_mariano_on_any_loss_by_hand():
    # The same differentials as above given as losses (a width variant's pinball loss against
    # today's): d = 8, 0, 3, -1, 3, -3, so the same p-value, 0.18173.
    loss = np.array([9.0, 1, 4, 0, 4, 1])
    benchmark = np.array([1.0, 1, 1, 1, 1, 4])
    assert loss_diebold_mariano(loss, benchmark, lag=1) == pytest.approx(0.18173, abs=1e-5)


def test_horizon_sets_the_hac_lag():
    rng = np.random.default_rng(3)
    actuals = list(100 + rng.normal(0, 3, 40))
    medians = list(100 + 0.5 * (np.array(actuals) - 100) + rng.normal(0, 1, 40))
    frame = pd.DataFrame(
        _rows("m", medians, actuals, 30) + _rows("random_walk", [100] * 40, actuals, 30)
    )
    got = score(frame).set_index("model").loc["m", "dm_pvalue"]
    e = np.array(medians) - np.array(actuals)
    b = 100.0 - np.array(actuals)
    assert got == pytest.approx(diebold_mariano(e, b, lag=math.ceil(30 / 7) - 1))
    assert got != pytest.approx(diebold_mariano(e, b, lag=0))


def test_an_actual_on_an_interval_bound_is_covered():
    """By hand: medians 100, bounds 98/102 (80%) and 96/104 (95%); actuals on each bound. The
    80% interval holds 98 and 102 (2 of 4), the 95% one all four."""
    actuals = [98.0, 102.0, 96.0, 104.0]
    frame = pd.DataFrame(_rows("m", [100] * 4, actuals) + _rows("random_walk", [100] * 4, actuals))
    m = score(frame).set_index("model").loc["m"]
    assert m["coverage80"] == 0.5 and m["coverage95"] == 1.0


def test_diebold_mariano_has_no_answer_without_enough_evidence():
    # Two rows, or errors equal to the benchmark's: no p-value.
    assert math.isnan(diebold_mariano(np.array([1.0, 2.0]), np.array([2.0, 1.0]), lag=0))
    assert math.isnan(diebold_mariano(np.ones(5), -np.ones(5), lag=0))
    # d = 2, -2, 2, -2, 2, -2: gamma0 = 4, gamma1 = 5 * -4 / 6; with lag 1 the long-run
    # variance 4 - 2 * 20 / 6 is negative (no p-value); with lag 0 the mean 0 gives p = 1.
    errors = np.sqrt(2) * np.array([1.0, 0, 1, 0, 1, 0])
    benchmark = np.sqrt(2) * np.array([0.0, 1, 0, 1, 0, 1])
    assert math.isnan(diebold_mariano(errors, benchmark, lag=1))
    assert diebold_mariano(errors, benchmark, lag=0) == pytest.approx(1.0)


def test_directional_accuracy_needs_a_predicted_move():
    frame = pd.DataFrame(
        _rows("m", [100] * 3, [101, 99, 102]) + _rows("random_walk", [100] * 3, [101, 99, 102])
    )
    assert math.isnan(score(frame).set_index("model").loc["m", "directional_accuracy"])


def test_models_are_scored_on_the_origins_they_share_with_the_random_walk():
    """By hand: the model has a fifth origin the random walk lacks (left out); two horizons,
    rows sorted by horizon then model."""
    rows = _rows("m", [101, 99, 100, 100, 500], [*ACTUALS, 100.0])
    rows += _rows("random_walk", [100] * 4, ACTUALS)
    rows += _rows("m", [100, 100], [101.0, 99.0], horizon=30)
    rows += _rows("random_walk", [100, 100], [101.0, 99.0], horizon=30)
    metrics = score(pd.DataFrame(rows))
    assert metrics[["horizon_days", "model", "n"]].values.tolist() == [
        [7, "m", 4],
        [7, "random_walk", 4],
        [30, "m", 2],
        [30, "random_walk", 2],
    ]
    assert metrics.loc[0, "mae"] == pytest.approx(1.5)  # as in test_point_metrics_by_hand


def test_diebold_mariano_at_its_edges():
    # Three rows are enough: d = 3, -1, 1 (mean 1, gamma0 8/3), DM = 1 / sqrt(8/9) = 1.0607;
    # HLN h=1: * sqrt(2/3) = 0.8660; two-sided t(2) p-value 0.4778.
    errors, benchmark = np.array([2.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0])
    assert diebold_mariano(errors, benchmark, lag=0) == pytest.approx(0.4778, abs=1e-4)
    # A constant difference has no variance: no p-value.
    assert math.isnan(diebold_mariano(np.full(5, 2.0), np.ones(5), lag=0))
    # Differences all near 1 but not equal still have one (a tiny variance: p near 0).
    near_one = np.sqrt(1 + np.array([1e-6, -1e-6, 2e-6, 0.0, 1e-6]))
    assert diebold_mariano(near_one, np.zeros(5), lag=0) < 1e-6
    # The test does not depend on the unit: errors a tenth as large, the same p-value.
    errors = np.array([3.0, 1, 2, 0, 2, 1])
    benchmark = np.array([1.0, 1, 1, 1, 1, 2])
    assert diebold_mariano(errors / 10, benchmark / 10, lag=1) == pytest.approx(0.18173, abs=1e-5)


def test_directions_count_every_decided_forecast():
    """By hand: up and predicted up (right), down and predicted up (wrong): 0.5."""
    frame = pd.DataFrame(
        _rows("m", [101, 101], [102, 98]) + _rows("random_walk", [100, 100], [102, 98])
    )
    assert score(frame).set_index("model").loc["m", "directional_accuracy"] == 0.5


def test_an_actual_beyond_the_95_percent_interval_is_not_covered():
    frame = pd.DataFrame(
        _rows("m", [100, 100], [110.0, 101.0]) + _rows("random_walk", [100, 100], [110.0, 101.0])
    )
    m = score(frame).set_index("model").loc["m"]
    assert m["coverage95"] == 0.5 and m["coverage80"] == 0.5


def test_the_table_has_one_row_per_model_and_horizon_and_no_index_column():
    rows = _rows("m", [101, 99, 100, 100], ACTUALS) + _rows("random_walk", [100] * 4, ACTUALS)
    metrics = score(pd.DataFrame(rows))
    assert list(metrics.columns[:3]) == ["model", "horizon_days", "n"]
    assert "index" not in metrics.columns and list(metrics.index) == [0, 1]
