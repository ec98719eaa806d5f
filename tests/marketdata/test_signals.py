"""Signals a run must not forecast through silently (marketdata/signals.py), each through
`fxforecast run` on an edited copy of the snapshot: a level shift taken for bad ticks, a USD/CLP
feed stuck while the other series move, closes missing at the end; and none of them fires on
the snapshot's own history at any weekly origin the backtest may use."""

import json

import pandas as pd
import pytest
from fxforecast.evaluation.backtest import weekly_origins
from fxforecast.marketdata.clean import clean
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
