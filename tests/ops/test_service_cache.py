"""The member cache as operators meet it: real service runs (a warm one writes the same forecast
as a cold one and computes only the new week), the four services writing it at once, and
`fxforecast cache info|clear` with the hits and misses in the metrics line."""

import sqlite3
from contextlib import closing
from pathlib import Path

from fxforecast.cli import main
from helpers import FAST_MEMBERS, metrics_lines, run_service, start_service

NEWEST = "2024-11-29"  # the shipped data's last date
SERVICES = ("forecaster_7d", "forecaster_15d", "forecaster_30d", "forecaster_90d")


def forecast_json(workdir, service="forecaster_7d", as_of=NEWEST) -> bytes:
    return (workdir / "output" / service / as_of / "forecast.json").read_bytes()


def test_a_warm_run_computes_only_the_new_week_and_writes_the_cold_runs_forecast(tmp_path):
    """Every default member at 7 days: the cache filled by last week's run, this week's run
    computes per member only its newest validation origin, its final forecast and that
    forecast's fit, and publishes byte for byte what a run without the cache publishes."""
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    runs = [
        start_service("forecaster_7d", cold, CACHE_DIR=""),  # off: today's computation
        start_service("forecaster_7d", warm, "--as-of", "2024-11-22"),  # data/cache in warm/
    ]
    for run in runs:
        assert run.wait(timeout=600) == 0, run.stderr.read()
    done = run_service("forecaster_7d", warm)
    assert done.returncode == 0, done.stderr
    assert forecast_json(warm) == forecast_json(cold)
    last_week, this_week = metrics_lines(warm / "metrics.jsonl")
    members = [n for n, m in this_week["members"].items() if m["status"] == "ok"]
    assert len(members) == 4
    assert last_week["cache"]["hits"] == 0
    assert this_week["cache"]["misses"] == 3 * len(members)
    assert this_week["cache"]["hits"] > 70 * len(members)
    assert "cache" not in metrics_lines(cold / "metrics.jsonl")[0]


def test_four_services_write_one_cache_at_once(tmp_path):
    """Real processes: the four services start together on one cache, twice. The first round
    stores every path whole (the file checks out, no run lost an entry to a lock); the second
    finds them all and writes the same forecasts."""
    cache = tmp_path / "cache"
    fast = {**FAST_MEMBERS, "CACHE_DIR": cache}

    def round_of_four():
        runs = [start_service(service, tmp_path, **fast) for service in SERVICES]
        for run in runs:
            assert run.wait(timeout=600) == 0, run.stderr.read()
        return {s: forecast_json(tmp_path, s) for s in SERVICES}

    first = round_of_four()
    with closing(sqlite3.connect(cache / "members.sqlite")) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = connection.execute("SELECT COUNT(*) FROM entries WHERE kind = 'path'").fetchone()
    second = round_of_four()
    assert second == first
    lines = metrics_lines(tmp_path / "metrics.jsonl")
    assert [line["status"] for line in lines] == ["ok"] * 8
    assert all("error" not in line["cache"] for line in lines)
    first_round, second_round = lines[:4], lines[4:]
    assert all(line["cache"]["misses"] > 0 for line in first_round)
    # Every path of the first round was kept: the second computes nothing and finds them all.
    assert all(line["cache"]["misses"] == 0 for line in second_round)
    assert sum(line["cache"]["hits"] for line in second_round) == stored[0]


def test_cache_info_shows_the_last_run_and_clear_empties_it(cli, tmp_path, capsys, monkeypatch):
    assert cli()[0] == 0
    assert cli()[0] == 0
    cold, warm = metrics_lines(tmp_path / "metrics.jsonl")
    assert cold["cache"]["hits"] == 0 and cold["cache"]["misses"] > 0
    assert warm["cache"]["misses"] == 0 and warm["cache"]["hits"] > 0
    assert warm["cache"]["dir"] == "data/cache"  # beside the data cache, in the run's folder

    assert main(["cache", "info"]) == 0
    info = capsys.readouterr().out
    assert "member cache: data/cache/members.sqlite" in info
    assert f"last run: forecaster_7d as of {NEWEST}" in info
    assert f"{warm['cache']['hits']} hits, 0 misses, 0 corrupt" in info
    assert "random_walk paths: 79" in info  # 78 validation origins and the final forecast
    assert "ensemble combinations: 1" in info  # the combiner's fit: the same in both runs
    # The page's four charts kept by each run's refresh (the first run's, not an hour old yet).
    assert "report charts: 8, " in info and len(list(Path("data/cache/charts").iterdir())) == 8

    assert main(["cache", "clear"]) == 0
    cleared = capsys.readouterr().out
    assert cleared.startswith("removed 81 entries")
    assert "removed 8 report charts from data/cache/charts" in cleared
    assert not Path("data/cache/charts").exists()
    assert main(["cache", "info"]) == 0
    assert "entries: 0," in capsys.readouterr().out
    monkeypatch.setenv("CACHE_DIR", "")
    assert main(["cache", "info"]) == 0
    assert capsys.readouterr().out == "the member cache is off (CACHE_DIR is empty)\n"


def test_cache_info_and_clear_on_a_file_that_is_not_a_database(tmp_path, capsys):
    """An operator's `cache info` names the damaged file and the fix in one line (no traceback),
    and `cache clear` then deletes the file and says so."""
    (tmp_path / "members.sqlite").write_bytes(b"not a database " * 100)
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is unusable: file is not a database" in err
    assert "fxforecast cache clear" in err
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "which was not a readable database" in capsys.readouterr().out
    assert not (tmp_path / "members.sqlite").exists()
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("nothing to remove")
