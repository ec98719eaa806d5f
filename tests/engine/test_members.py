import numpy as np
import pandas as pd
import pytest
from fxforecast.engine.members import configured_members
from fxforecast.engine.members.base import max_steps
from fxforecast.engine.members.forest import features
from fxforecast.horizons import future_step_dates, horizon_params
from fxforecast.marketdata.clean import clean
from fxforecast.quantiles import LEVELS
from fxforecast.settings import Settings

# Every member but Chronos, which needs a model (tests/engine/test_chronos.py builds a tiny one).
NAMES = [
    m.name for m, _ in configured_members(Settings(), horizon_params(7)) if m.name != "chronos"
]
EVERY_MEMBER = [m.name for m, _ in configured_members(Settings(), horizon_params(7))]


@pytest.fixture(scope="module")
def snapshot(raw):
    return clean(raw)


@pytest.mark.parametrize("days", [7, 90])
@pytest.mark.parametrize("name", NAMES)
def test_member_quantiles_are_monotone_plausible_clp(snapshot, name, days):
    members = dict((m.name, m) for m, _ in configured_members(Settings(), horizon_params(days)))
    n = len(future_step_dates(snapshot.as_of, days))
    path = members[name].fit(snapshot.frame).forecast(snapshot.frame, [snapshot.as_of], [n])[0]
    last = snapshot.closes().iloc[-1]
    assert path.shape == (n, len(LEVELS))
    assert np.all(np.isfinite(path))
    assert np.all(np.diff(path, axis=1) >= 0), "quantiles must not cross"
    # CLP per USD, near the last close: the median within 5%, the 95% band inside +-30%.
    assert abs(path[-1, 2] / last - 1) < 0.05
    assert 0.7 * last < path[-1, 0] and path[-1, -1] < 1.3 * last
    # Plausible width at the target: USD/CLP moves ~0.7% a day.
    width80 = (path[-1, 3] - path[-1, 1]) / last
    expected = 0.0065 * np.sqrt(n) * 2 * 1.2816
    assert expected / 3 < width80 < expected * 3
    # The 95% interval is wider than the 80% one, and intervals widen with the step.
    assert np.all(path[:, 4] - path[:, 0] > path[:, 3] - path[:, 1])
    assert path[-1, 3] - path[-1, 1] > path[0, 3] - path[0, 1]


def test_max_steps_covers_every_calendar_position():
    for days in (7, 15, 30, 90):
        longest = max(
            len(future_step_dates(pd.Timestamp("2024-01-01") + pd.Timedelta(days=i), days))
            for i in range(7)
        )
        assert longest == max_steps(days)


def test_forest_features_use_only_past_rows(snapshot):
    frame = snapshot.frame
    cut = frame.index[-200]
    before = features(frame.loc[:cut])
    changed = frame.copy()
    changed.loc[changed.index > cut, ["usdclp", "copper", "dxy"]] *= 1.5
    after = features(changed).loc[:cut]
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize("name", EVERY_MEMBER)
def test_no_member_reads_a_row_after_its_origin(snapshot, tiny_bolt, name):
    """Leakage, member by member: fitted and forecast at an origin, then again with every later
    row changed wildly, each member gives the identical forecast."""
    settings = Settings(chronos_model=str(tiny_bolt), chronos_min_available_mb=1)
    members = {m.name: m for m, _ in configured_members(settings, horizon_params(30))}
    frame = snapshot.frame
    origin = frame.index[-300]
    changed = frame.copy()
    later = changed.index > origin
    changed.loc[later, ["usdclp", "copper", "dxy"]] *= 1.7
    changed.loc[later, "rate_differential"] = 12.0

    def forecast(rows):
        member = members[name]
        path = member.fit(rows.loc[:origin]).forecast(rows, [origin], [22])[0]
        member.release()
        return path

    np.testing.assert_array_equal(forecast(frame), forecast(changed))


def test_empirical_random_walk_is_centred_on_no_change_with_the_past_spread(snapshot):
    members = dict((m.name, m) for m, _ in configured_members(Settings(), horizon_params(30)))
    n = len(future_step_dates(snapshot.as_of, 30))
    path = (
        members["random_walk_empirical"]
        .fit(snapshot.frame)
        .forecast(snapshot.frame, [snapshot.as_of], [n])[0]
    )
    closes = snapshot.closes()
    assert np.allclose(path[:, 2], closes.iloc[-1])
    # The 80% band at the target is the past 750 closes' n-day moves' 10%-90% range.
    log_closes = np.log(closes.to_numpy()[-751:])
    moves = log_closes[n:] - log_closes[:-n]
    expected = np.exp(np.quantile(moves, 0.9) - np.quantile(moves, 0.1))
    assert path[-1, 3] / path[-1, 1] == pytest.approx(expected)
