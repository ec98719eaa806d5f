"""The validation set's rules against positions and counts worked out by hand on a synthetic
calendar: one distinct close per business day, members refitted at each origin (so an origin at
position p has p + 1 closes up to its refit date)."""

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fxforecast.engine.validation import Validation, segment_means, validation_set
from fxforecast.errors import DataError
from fxforecast.horizons import horizon_params, refit_anchor
from fxforecast.marketdata.clean import CleaningReport, MarketData, clean
from fxforecast.quantiles import LEVELS

PARAMS = replace(horizon_params(7), validation_origins=20, refit_weeks=0)


def synthetic(rows: int, drop=()) -> MarketData:
    """`rows` business days from Monday 2018-01-01, closes 100, 101, ... (all genuine), less
    the positions in `drop`."""
    index = pd.bdate_range("2018-01-01", periods=rows)
    frame = pd.DataFrame({"usdclp": 100.0 + np.arange(rows)}, index=index)
    return MarketData(frame.drop(index[list(drop)]), CleaningReport(), "synthetic")


def test_the_oldest_origin_is_the_first_with_250_closes_up_to_its_refit():
    """305 rows, the as-of at position 304 (a Monday): origins at 299, 294, ..., and 249 has
    exactly 250 closes up to itself: the oldest kept (244 has 245)."""
    data = synthetic(305)
    validation = validation_set(data, PARAMS)
    index = data.frame.index
    assert validation.origins == [index[p] for p in range(249, 300, 5)]
    assert validation.steps == [5] * 11
    assert validation.last_closes == [100.0 + p for p in range(249, 300, 5)]
    np.testing.assert_array_equal(validation.actuals[0], 100.0 + np.arange(250, 255))


def test_a_path_with_a_missing_row_has_four_steps_and_keeps_its_place():
    """Position 262 missing: the origin at 259 has a 4-step path (260, 261, 263, 264); steps
    stay in the origins' order."""
    data = synthetic(305, drop=[262])
    validation = validation_set(data, PARAMS)
    steps = dict(zip(validation.origins, validation.steps, strict=True))
    assert steps.pop(pd.Timestamp("2018-12-28")) == 4  # position 259
    assert set(steps.values()) == {5}
    assert validation.steps == [len(actual) for actual in validation.actuals]


def test_too_few_origins_names_the_closes_the_as_of_date_needs():
    """280 rows (as-of at 279): origins 274 down to 249 (6 of them). The oldest of 8 would be
    at 239, with 250 closes needed up to it and the 40 after it: 290 in all."""
    data = synthetic(280)
    with pytest.raises(DataError) as error:
        validation_set(data, PARAMS)
    assert str(error.value) == (
        "history too short for the 7-day horizon: 280 closes up to 2019-01-25, need 290 (250 up "
        "to 2018-11-30, the refit date of the oldest of 8 validation origins, and the 40 after "
        "it); use data that starts earlier"
    )


def test_too_few_origins_when_the_oldest_needed_lies_before_the_data():
    """30 rows (as-of Friday 2018-02-09): the oldest of 8 weekly origins would be 2017-12-15,
    before the first row; every one of the 30 closes lies after it."""
    with pytest.raises(DataError) as error:
        validation_set(synthetic(30), PARAMS)
    assert str(error.value) == (
        "history too short for the 7-day horizon: 30 closes up to 2018-02-09, need 280 (250 up "
        "to 2017-12-15, the refit date of the oldest of 8 validation origins, and the 30 after "
        "it); use data that starts earlier"
    )


def test_the_oldest_needed_origin_on_a_missing_row_is_the_row_before_it():
    """As 280 rows, with position 239 (the oldest needed origin, Friday 2018-11-30) missing:
    the refit date is the row before it, Thursday 2018-11-29, with 40 closes after it."""
    with pytest.raises(DataError) as error:
        validation_set(synthetic(280, drop=[239]), PARAMS)
    assert "need 290 (250 up to 2018-11-29," in str(error.value)
    assert "and the 40 after it)" in str(error.value)


def test_origins_lost_in_a_gap_are_counted_in_the_error(raw):
    """Every one of the 78 weekly origins of the 7-day run falls back to 2022-12-30, the last
    row before a gap up to the as-of date: none has a realised path."""
    market = raw.market.drop(pd.bdate_range("2023-01-02", "2024-11-28"))
    data = clean(type(raw)(market, raw.rates, raw.source))
    with pytest.raises(DataError) as error:
        validation_set(data, horizon_params(7))
    assert str(error.value) == (
        "only 0 validation origins up to 2024-11-29 have a realised 7-day path (78 fall in gaps "
        "of the data), need 8; fill the missing rows or use a later --as-of"
    )


def _validation(n: int, days: int) -> Validation:
    origins = list(pd.bdate_range("2020-01-03", periods=n, freq="W-FRI"))
    return Validation(days, origins, [1] * n, [np.ones(1)] * n, [1.0] * n)


@pytest.mark.parametrize(
    "n, days, origins, expected",
    [
        (52, 7, None, 52.0),  # weekly 7-day paths do not overlap
        (52, 30, None, 52 * 7 / 30),  # 30-day paths: about one in 30/7 independent
        (52, 3, None, 52.0),  # paths shorter than a week overlap nothing either
        (1, 30, None, 2.0),  # never fewer than 2
        (2, 90, None, 2.0),
        (52, 14, 10.0, 5.0),  # an effective count of weighted origins
    ],
)
def test_independent_paths_by_hand(n, days, origins, expected):
    assert _validation(n, days).independent_paths(origins) == pytest.approx(expected)


def test_the_tail_is_the_second_half_of_a_path():
    """Paths of 5, 6 and 1 steps: rows 2-4, 3-5 and 0 of each, stacked in origin order."""
    origins = list(pd.date_range("2020-01-03", periods=3, freq="7D"))
    actuals = [np.arange(5.0), np.arange(6.0), np.arange(1.0)]
    validation = Validation(7, origins, [5, 6, 1], actuals, [1.0, 1.0, 1.0])
    assert validation.tails(actuals).tolist() == [2, 3, 4, 3, 4, 5, 0]
    assert validation.tail_lengths.tolist() == [3, 3, 1]


def test_a_score_needs_one_path_per_origin():
    validation = _validation(3, 7)
    with pytest.raises(ValueError):
        validation.score([np.ones((1, 5))] * 2)


def test_the_oldest_needed_origin_after_the_first_row_is_refitted_on_that_row():
    """One row on 2017-12-01, then 30 from 2018-01-01: the oldest of 8 origins, 2017-12-15,
    falls after the first row, so its refit date is that row's."""
    data = synthetic(30)
    first = pd.DataFrame({"usdclp": [99.0]}, index=pd.DatetimeIndex(["2017-12-01"]))
    data = MarketData(pd.concat([first, data.frame]), CleaningReport(), "synthetic")
    with pytest.raises(DataError) as error:
        validation_set(data, PARAMS)
    assert "31 closes up to 2018-02-09, need 280 (250 up to 2017-12-01," in str(error.value)


def test_exactly_eight_origins_are_enough():
    """290 rows: origins 284 down to 249, eight of them."""
    assert len(validation_set(synthetic(290), PARAMS).origins) == 8


def test_exactly_eight_origins_are_enough_after_a_gap():
    """300 rows less the week at positions 285-289: the origins of that week and the one
    before fall back to Friday 284, whose path is empty (2 skipped); 294 and 279 down to 249
    are left: eight."""
    validation = validation_set(synthetic(300, drop=range(285, 290)), PARAMS)
    assert len(validation.origins) == 8 and validation.steps[-1] == 5


def test_an_origin_repeated_by_a_gap_is_used_once():
    """Friday 2019-02-22 to Thursday 02-28 missing (positions 299-303): the weeks (Thursdays,
    15 days before the as-of Friday 04-19) of 02-21 and 02-28 both find Thursday 02-21 as their
    origin; it is used once, with its 15-day path (rows from 03-01)."""
    params = replace(horizon_params(15), validation_origins=20, refit_weeks=0)
    data = synthetic(340, drop=range(299, 304))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pandas deprecation here breaks the next pandas
        validation = validation_set(data, params)
    gap_origin = pd.Timestamp("2019-02-21")
    assert validation.origins.count(gap_origin) == 1
    assert len(set(validation.origins)) == len(validation.origins)


def test_the_score_is_the_mean_pinball_loss_over_the_origins():
    """One path exactly right (loss 0); one whose every quantile is 1 CLP under the actual:
    each level's loss is its level x 1, 0.5 on average over the symmetric levels."""
    actuals = [np.array([100.0, 101.0]), np.array([102.0, 103.0])]
    validation = Validation(7, [pd.Timestamp("2024-01-05")] * 2, [2, 2], actuals, [99.0, 101.0])
    paths = [np.repeat(a[:, None], len(LEVELS), axis=1) for a in actuals]
    paths[1] = paths[1] - 1.0
    assert validation.score(paths) == pytest.approx(0.25)


def test_losses_known_from_another_origin_are_those_of_the_same_path_and_actual():
    """A backtest's next origin scores through the losses its block knows: each score equals
    one computed afresh, also where an actual was revised under a path already scored."""
    rng = np.random.default_rng(3)
    origins = list(pd.date_range("2020-01-03", periods=6, freq="7D"))
    actuals = [100 + rng.random(5) for _ in origins]
    paths = [np.sort(100 + rng.random((5, len(LEVELS))), axis=1) for _ in origins]

    def score(first, last, actuals=actuals, known=None):
        known = {} if known is None else known
        n = last - first
        validation = Validation(
            7, origins[first:last], [5] * n, actuals[first:last], [100.0] * n, known
        )
        return validation.score(paths[first:last])

    known = {}
    assert score(0, 5, known=known) == score(0, 5)
    assert score(1, 6, known=known) == score(1, 6)  # four known, one new
    revised = [*actuals[:3], actuals[3] + 0.5, *actuals[4:]]
    assert score(1, 6, revised, known) == score(1, 6, revised) != score(1, 6)


def test_refit_anchors_are_each_origins_own():
    """Computed at once for the set (and kept per cadence): each origin's refit_anchor, on and
    between grid dates, before and after the grid's epoch."""
    origins = list(pd.date_range("1999-11-05", "2001-03-02", freq="7D"))
    n = len(origins)
    validation = Validation(7, origins, [1] * n, [np.ones(1)] * n, [1.0] * n)
    for weeks in (0, 4, 13, 26):
        expected = [refit_anchor(origin, weeks) for origin in origins]
        assert validation.refit_anchors(weeks) == expected
        assert validation.refit_anchors(weeks) == expected


def test_a_validation_set_scores_through_the_known_losses_it_is_given():
    """validation_set(..., known) keeps the losses there (one per member and origin), and two
    members' paths scored against the same actuals keep their own."""
    data = synthetic(305)
    known = {}
    validation, fresh = validation_set(data, PARAMS, known), validation_set(data, PARAMS)
    rng = np.random.default_rng(5)
    members = [
        [
            np.sort(a[:, None] + rng.normal(0, scale, (len(a), len(LEVELS))), axis=1)
            for a in fresh.actuals
        ]
        for scale in (1.0, 3.0)
    ]
    assert [validation.score(paths) for paths in members] == [fresh.score(p) for p in members]
    assert len(known) == 2 * len(validation.origins)


def test_segment_means_are_each_segments_own_mean_to_the_last_bit():
    """What lets the combiners average every validation path at once and publish the same
    numbers as one path at a time: segments of 1 to 70 rows (numpy sums more than 8 values
    pairwise), of one and of five columns, in any order of lengths."""
    rng = np.random.default_rng(4)
    for columns in ((), (5,)):
        lengths = rng.integers(1, 70, size=300)
        values = rng.lognormal(3, 2, size=(lengths.sum(), *columns))
        ends = np.cumsum(lengths)
        alone = [np.mean(values[end - n : end]) for end, n in zip(ends, lengths, strict=True)]
        assert segment_means(values, lengths).tolist() == alone


def test_paths_must_pair_with_the_origins():
    """One path per validation origin: a list one short (or one long) is refused, not scored or
    stacked against the wrong actuals."""
    actuals = [np.full(4, 100.0), np.full(4, 101.0)]
    origins = [pd.Timestamp("2020-01-03"), pd.Timestamp("2020-01-10")]
    validation = Validation(7, origins, [4, 4], actuals, [100.0, 101.0])
    path = np.full((4, 5), 100.0)
    for paths in ([path], [path] * 3):
        with pytest.raises(ValueError):
            validation.tails(paths)
        with pytest.raises(ValueError):
            validation.score(paths)
    assert validation.tails([path] * 2).shape == (4, 5)


def test_tail_rows_and_tail_means_by_hand():
    """Paths of 4 and 5 steps: tails of 2 and 3 rows (the second half, the middle row of an odd
    path in it); a value per origin repeated on its tail's rows; the mean of each tail."""
    origins = [pd.Timestamp("2020-01-03"), pd.Timestamp("2020-01-10")]
    actuals = [np.arange(4.0), np.arange(5.0)]
    validation = Validation(7, origins, [4, 5], actuals, [100.0, 101.0])
    assert validation.tail_lengths.tolist() == [2, 3]
    assert validation.per_tail_row([7.0, 9.0]).tolist() == [7.0, 7.0, 9.0, 9.0, 9.0]
    assert validation.tails(actuals).tolist() == [2.0, 3.0, 2.0, 3.0, 4.0]
    assert validation.tail_means(np.array([1.0, 2.0, 3.0, 4.0, 8.0])).tolist() == [1.5, 5.0]
