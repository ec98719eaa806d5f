"""Signals a run must not forecast through silently (marketdata/signals.py), each through
`fxforecast run` on an edited copy of the snapshot: a level shift taken for bad ticks, a USD/CLP
feed stuck while the other series move, closes missing at the end; and none of them fires on
the snapshot's own history at any weekly origin the backtest may use."""

import json

import numpy as np
import pandas as pd
import pytest
from fxforecast.errors import DataError
from fxforecast.evaluation.backtest import weekly_origins
from fxforecast.marketdata import signals
from fxforecast.marketdata.clean import BAD_TICK_LOG_JUMP, clean, implausible
from fxforecast.marketdata.signals import STOPPED_REFUSE_BDAYS, STOPPED_WARN_BDAYS
from helpers import edit_rows, error_line, metrics_lines

EXOGENOUS = "Copper, DXY, Oil, SP500, VIX"


def edit_usdclp(path, rows: int, value) -> None:
    """USDCLP of the last `rows` rows through `value(close, row)` (the file's text cell)."""

    def edit(lines):
        for i in range(len(lines) - rows, len(lines)):
            cells = lines[i].split(",")
            cells[1] = value(float(cells[1]), lines[i])
            lines[i] = ",".join(cells)
        return lines

    edit_rows(path, edit)


def usdclp(path, back: int) -> tuple[str, float]:
    """The date and close `back` rows before the end of the file (1: the last row)."""
    cells = path.read_text().splitlines()[-back].split(",")
    return cells[0], float(cells[1])


def bdays(start: str, end: str) -> int:
    return len(pd.bdate_range(start, end)) - 1


@pytest.mark.parametrize("factor, rows", [(10, 60), (0.01, 2), (1.3, 5), (100, 400)])
def test_a_persistent_level_shift_is_refused_naming_dates_and_factor(
    cli, data_copy, tmp_path, factor, rows
):
    """Today the ten-times case drops 62 closes as bad ticks and forecasts from 6 September."""
    market = data_copy / "market_daily.csv"
    first, _ = usdclp(market, rows)
    edit_usdclp(market, rows, lambda close, _: repr(close * factor))
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    line = error_line(err)
    assert f"the USDCLP closes from {first} to 2024-11-29 ({rows} in a row)" in line
    assert f" are {factor:g}x the level before them (" in line and "a level shift" in line
    assert line.startswith(f"error: {market}: ")
    [record] = metrics_lines(tmp_path / "metrics.jsonl")
    assert record["status"] == "failed" and "a level shift" in record["error"]
    assert not (tmp_path / "output/forecaster_7d").exists()


def test_the_unit_slip_of_the_table_is_named_exactly(cli, data_copy):
    edit_usdclp(data_copy / "market_daily.csv", 60, lambda close, _: repr(close * 10))
    _, _, err = cli(DATA_DIR=data_copy)
    assert error_line(err) == (
        f"error: {data_copy / 'market_daily.csv'}: the USDCLP closes from 2024-09-09 to "
        "2024-11-29 (60 in a row) are 10x the level before them (928.3, the median of the 5 "
        "closes to 2024-09-06): a level shift, not bad ticks (a unit slip in the feed, or a move "
        "too large to take on trust); fix or remove those closes"
    )


def test_a_jump_at_the_newest_close_alone_degrades_the_run_and_says_so(cli, data_copy, tmp_path):
    market = data_copy / "market_daily.csv"
    previous_date, previous = usdclp(market, 2)
    edit_usdclp(market, 1, lambda close, _: repr(close * 10))
    code, out, err = cli(DATA_DIR=data_copy)
    assert code == 0, err
    assert out.startswith("forecaster_7d: degraded;")
    payload = json.loads((tmp_path / "output/forecaster_7d/2024-11-29/forecast.json").read_text())
    assert payload["status"] == "degraded" and payload["last_close"] == pytest.approx(previous)
    [warning] = [w for w in payload["warnings"] if "newest USDCLP close" in w]
    assert warning.startswith("the newest USDCLP close (2024-11-29: 9774.4) is 10x")
    assert "the forecast starts from the close before it" in warning
    [record] = metrics_lines(tmp_path / "metrics.jsonl")
    assert record["status"] == "degraded" and warning in record["warnings"]


@pytest.mark.parametrize("rows", [90, 400])
def test_a_usdclp_feed_stuck_for_months_is_refused(cli, data_copy, tmp_path, rows):
    """Today the forecast's median is the frozen value, status ok, no warning."""
    market = data_copy / "market_daily.csv"
    since, frozen = usdclp(market, rows + 1)
    edit_usdclp(market, rows, lambda *_: repr(frozen))
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    assert error_line(err) == (
        f"error: {market}: USDCLP stuck at {frozen:.6g} since {since}: unchanged for "
        f"{bdays(since, '2024-11-29')} business days to 2024-11-29 while {EXOGENOUS} moved (a "
        f"stuck feed); more than {STOPPED_REFUSE_BDAYS} is too old to forecast from: fix the "
        f"feed or the file, or run with --as-of {since}"
    )
    assert not (tmp_path / "output/forecaster_7d").exists()


def test_a_feed_stuck_for_three_weeks_degrades_the_run_with_a_named_warning(
    cli, data_copy, tmp_path
):
    market = data_copy / "market_daily.csv"
    since, frozen = usdclp(market, 16)
    assert STOPPED_WARN_BDAYS < bdays(since, "2024-11-29") <= STOPPED_REFUSE_BDAYS
    edit_usdclp(market, 15, lambda *_: repr(frozen))
    code, out, err = cli(DATA_DIR=data_copy)
    assert code == 0, err
    assert out.startswith("forecaster_7d: degraded;")
    [record] = metrics_lines(tmp_path / "metrics.jsonl")
    assert record["status"] == "degraded"
    assert (
        f"USDCLP stuck at {frozen:.6g} since {since}: unchanged for 15 business days"
        in (record["warnings"][0])
    )


def test_closes_missing_far_behind_the_as_of_date_are_refused(cli, data_copy):
    market = data_copy / "market_daily.csv"
    newest, _ = usdclp(market, 31)
    edit_usdclp(market, 30, lambda *_: "")
    code, _, err = cli(DATA_DIR=data_copy)
    assert code == 3
    assert error_line(err).startswith(
        f"error: {market}: the newest genuine USDCLP close ({newest}) is 30 business days "
        "before the as-of date 2024-11-29; more than 20 is too old to forecast from"
    )


def test_the_snapshots_longest_genuine_flat_stretch_is_no_signal(raw):
    """563.5 from 2014-05-01 to 05-12: 7 business days without a new close."""
    data = clean(raw, "2014-05-12")
    assert data.closes().index[-1] == pd.Timestamp("2014-05-01")
    assert data.report.warnings == []


def test_no_signal_fires_at_any_weekly_origin_of_the_snapshot(raw):
    """The backtest cleans the data at every origin: a limit that fired on genuine history
    would stop it (or degrade what it scores)."""
    origins = weekly_origins(raw.market.index, "2012-01-01", "2024-11-29")
    assert len(origins) == 674
    fired = {}
    for origin in origins:
        try:
            warnings = clean(raw, origin).report.warnings
        except Exception as exc:  # noqa: BLE001 (every refusal is collected and shown)
            warnings = [str(exc)]
        if warnings:
            fired[str(origin.date())] = warnings
    assert fired == {}


# The rules themselves on small frames, each expectation counted by hand: business days from
# Monday 2024-01-01, USD/CLP 900, 901, ... and the other series moving every day.


def _market(rows: int) -> pd.DataFrame:
    index = pd.bdate_range("2024-01-01", periods=rows)
    market = pd.DataFrame({"USDCLP": 900.0 + np.arange(rows)}, index=index)
    for i, column in enumerate(signals.OTHER_SERIES):
        market[column] = 10.0 * (i + 1) + np.arange(rows)
    return market


def _stopped(market: pd.DataFrame, newest: int) -> str | None:
    """stopped_close with the genuine closes ending at position `newest`."""
    close = market["USDCLP"].where(np.arange(len(market)) <= newest)
    return signals.stopped_close(market, close, "m.csv")


@pytest.mark.parametrize("behind", [STOPPED_WARN_BDAYS, STOPPED_WARN_BDAYS + 1, 20, 21])
def test_a_close_more_than_10_business_days_old_is_said_and_more_than_20_refused(behind):
    market = _market(40)
    newest = 39 - behind
    since = market.index[newest].date()
    said = (
        f"the newest genuine USDCLP close ({since}) is {behind} business days before the as-of "
        "date 2024-02-23"
    )
    if behind <= STOPPED_WARN_BDAYS:
        assert _stopped(market, newest) is None
    elif behind <= STOPPED_REFUSE_BDAYS:
        assert _stopped(market, newest) == f"{said}; the forecast starts from that close"
    else:
        with pytest.raises(DataError) as error:
            _stopped(market, newest)
        assert str(error.value) == (
            f"m.csv: {said}; more than 20 is too old to forecast from: fix the feed or the file, "
            f"or run with --as-of {since}"
        )


def test_a_stuck_feed_is_named_when_most_rows_after_it_repeat_the_value():
    """12 rows after the newest close (position 27, 2024-02-07): 7 repeating its value is a
    stuck feed, 6 of 12 (the others blank) is not said to be one. Copper flat since then did
    not move; DXY took two values, so it did."""
    market = _market(40)
    market.loc[market.index[27] :, "Copper"] = 5.0
    market.loc[market.index[28] :, "DXY"] = 99.0
    after = market.index[28:]
    stuck = market.copy()
    stuck.loc[after, "USDCLP"] = [927.0] * 7 + [np.nan] * 5
    assert _stopped(stuck, 27) == (
        "USDCLP stuck at 927 since 2024-02-07: unchanged for 12 business days to 2024-02-23 "
        "while DXY, Oil, SP500, VIX moved (a stuck feed); the forecast starts from that close"
    )
    half = market.copy()
    half.loc[after, "USDCLP"] = [927.0] * 6 + [np.nan] * 6
    assert _stopped(half, 27).startswith("the newest genuine USDCLP close (2024-02-07) is 12")


def test_a_level_shift_inside_the_data_is_named_with_the_level_before_it():
    """Positions 20-22 x10, then the old level again: the three are a level shift (not the
    newest close), measured against the median of the five closes before them (915..919)."""
    market = _market(30)
    market.iloc[20:23, 0] *= 10
    bad = implausible(market["USDCLP"], BAD_TICK_LOG_JUMP)
    assert bad.tolist() == [False] * 20 + [True] * 3 + [False] * 7
    with pytest.raises(DataError) as error:
        signals.level_shift(market, bad, "m.csv")
    assert str(error.value) == (
        "m.csv: the USDCLP closes from 2024-01-29 to 2024-01-31 (3 in a row) are 10x the level "
        "before them (917, the median of the 5 closes to 2024-01-26): a level shift, not bad "
        "ticks (a unit slip in the feed, or a move too large to take on trust); fix or remove "
        "those closes"
    )
