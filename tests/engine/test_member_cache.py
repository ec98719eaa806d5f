"""The member cache (engine/member_cache.py): its key follows exactly the rows a member may read,
a warm run equals a cold one, entries that are corrupt are recomputed, the size is bounded, and
the file survives runs writing at once."""

import hashlib
import logging
import pickle
import sqlite3
import zlib
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
from fxforecast.engine import combiner, ensemble, member_cache
from fxforecast.engine.member_cache import (
    MemberCache,
    RowDigests,
    Session,
    _own_imports,
    combination_key,
    entry_key,
)
from fxforecast.engine.members import configured_members
from fxforecast.engine.members.forest import RandomForest
from fxforecast.engine.members.random_walk import RandomWalk
from fxforecast.engine.members.var import VectorAutoregression
from fxforecast.engine.runner import FitCache
from fxforecast.engine.validation import validation_set
from fxforecast.horizons import horizon_params
from fxforecast.marketdata.clean import clean
from fxforecast.settings import Settings

AS_OF = pd.Timestamp("2023-06-30")
PARAMS = horizon_params(7)
# Fast members with a fit that learns (VAR) and one that does not (the walk).
MEMBERS = [(RandomWalk(), True), (VectorAutoregression(lookback=750, max_lags=5), True)]


def revised(raw, date, column="USDCLP", factor=1.002):
    """The raw data with one value changed a little (not enough to be a bad tick)."""
    market = raw.market.copy()
    market.loc[date, column] = market.loc[date, column] * factor
    return type(raw)(market, raw.rates, raw.source)


def forecast(raw, store, members=MEMBERS, as_of=AS_OF):
    return ensemble.forecast(clean(raw, as_of), PARAMS, members, 120, cache=FitCache(store))


def entries(store) -> dict[str, str]:
    """Every stored key and its value's digest."""
    with closing(sqlite3.connect(store.path)) as connection:
        return dict(connection.execute("SELECT key, digest FROM entries").fetchall())


def test_a_row_revised_before_an_origin_changes_its_key_and_one_after_does_not(raw):
    origin = pd.Timestamp("2022-03-04")
    before = pd.Timestamp("2022-03-01")

    def key(data, at=origin):
        (digest,) = RowDigests(data.frame).of([at])
        return entry_key("member", "path", pd.Timestamp("2022-01-07"), at, 5, digest)

    first = clean(raw, "2022-06-30")
    assert key(clean(raw, "2024-11-29")) == key(first)  # rows appended after the origin
    assert key(clean(revised(raw, "2022-03-08"), "2022-06-30")) == key(first)  # revised after
    assert key(clean(revised(raw, before), "2022-06-30")) != key(first)
    assert key(clean(revised(raw, before, "Copper"), "2022-06-30")) != key(first)  # any column
    # A close that is now missing (NaNs are part of the rows too)...
    missing = raw.market.copy()
    missing.loc[before, "USDCLP"] = np.nan
    assert key(clean(type(raw)(missing, raw.rates, raw.source), "2022-06-30")) != key(first)
    # ... and every NaN is the same NaN, whatever its bits (an operation can flip its sign).
    flipped = first.frame.copy()
    assert flipped["usdclp"].loc[:origin].isna().any()
    flipped["usdclp"] = np.where(flipped["usdclp"].isna(), -np.nan, flipped["usdclp"])
    assert np.signbit(flipped["usdclp"].to_numpy()).any()
    assert key(type(first)(flipped, first.report, first.source)) == key(first)
    # The rows before the revised one keep their key.
    earlier = pd.Timestamp("2022-02-25")
    assert key(clean(revised(raw, before), "2022-06-30"), earlier) == key(first, earlier)


def test_digests_carried_from_an_earlier_frame_are_those_of_this_one(raw):
    """A backtest's next origin keeps the digests of the frame before it where that frame's
    rows lead this one bit for bit: each equal to the one computed afresh. A row revised (or a
    NaN's bits, a column more) anywhere in the earlier frame carries nothing, whatever date."""
    dates = [pd.Timestamp(d) for d in ("2021-01-08", "2022-03-04", "2022-06-30")]
    later = clean(raw, "2022-07-08").frame

    def carried(earlier_frame):
        earlier = RowDigests(earlier_frame)
        earlier.of(dates)
        return RowDigests(later, earlier)

    kept = carried(clean(raw, "2022-06-30").frame)
    assert kept._found.keys() == {date.value for date in dates}
    assert kept.of(dates) == RowDigests(later).of(dates)
    for frame in (
        clean(revised(raw, "2022-06-29"), "2022-06-30").frame,
        clean(revised(raw, "2020-01-02", "Copper"), "2022-06-30").frame,
        clean(raw, "2022-06-30").frame.assign(extra=1.0),
    ):
        assert carried(frame)._found == {}
    # A date after the earlier frame's end read fewer rows there: not carried.
    end = pd.Timestamp("2022-07-04")
    earlier = RowDigests(clean(raw, "2022-06-30").frame)
    earlier.of([end])
    assert end.value not in RowDigests(later, earlier)._found


def test_cached_paths_follow_the_rows_they_read(raw, tmp_path):
    """Leakage through the cache: rows after the as-of date, changed wildly, change no stored
    entry nor any key (every path is found again); a row revised between the two newest
    validation origins makes exactly what read it be computed again, as a cold run would."""
    store = MemberCache(tmp_path, 10**9)
    cold = forecast(raw, store)
    stored = entries(store)

    market = raw.market.copy()
    later = market.index > AS_OF
    market.loc[later, ["USDCLP", "Copper", "DXY"]] *= 1.7
    again = forecast(type(raw)(market, raw.rates, raw.source), store)
    assert again.cached().misses == 0 and again.cached().hits == 2 * (PARAMS.validation_origins + 1)
    assert entries(store) == stored
    assert again.quantiles.tobytes() == cold.quantiles.tobytes()

    origins = validation_set(clean(raw, AS_OF), PARAMS).origins
    between = clean(raw, AS_OF).frame.index[clean(raw, AS_OF).frame.index < origins[-1]][-1]
    assert between > origins[-2]
    changed = revised(raw, between)
    warm = forecast(changed, store)
    # Per member: the newest validation path, the final path and the final fit read that row;
    # the newest anchor's fit (before it) is found, as are the 77 older paths.
    assert warm.cached().misses == 2 * 3
    assert warm.cached().hits == 2 * (PARAMS.validation_origins - 1 + 1)
    assert warm.quantiles.tobytes() == forecast(changed, None).quantiles.tobytes()


def test_the_combination_is_fitted_once_and_again_when_what_it_reads_changes(
    raw, tmp_path, monkeypatch
):
    """The combiner's fit is kept beside the members' paths: the same run again fits no
    combiner; a revised actual of the newest validation path (a row after its origin, before
    the as-of: no validation path read it) fits it again, as a cold run would."""
    fits = []
    fit = combiner.GreedyCombiner.fit
    monkeypatch.setattr(
        combiner.GreedyCombiner, "fit", lambda self, *a: fits.append(1) or fit(self, *a)
    )
    store = MemberCache(tmp_path, 10**9)
    cold = forecast(raw, store)
    again = forecast(raw, store)
    assert len(fits) == 1 and again.combination == cold.combination
    assert again.quantiles.tobytes() == cold.quantiles.tobytes()
    index = clean(raw, AS_OF).frame.index
    newest = validation_set(clean(raw, AS_OF), PARAMS).origins[-1]
    changed = revised(raw, index[index > newest][0], factor=1.01)
    warm = forecast(changed, store)
    assert len(fits) == 2
    assert warm.quantiles.tobytes() == forecast(changed, None).quantiles.tobytes()


def test_a_combination_key_holds_everything_the_fit_reads(monkeypatch):
    paths = {"random_walk": "k1", "var": "k2"}
    key = combination_key("greedy", paths, "rows")
    assert combination_key("greedy", dict(paths), "rows") == key
    for other in (
        ("inverse_loss", paths, "rows"),
        ("greedy", {"random_walk": "k1", "var": "k3"}, "rows"),
        ("greedy", {"var": "k2", "random_walk": "k1"}, "rows"),  # the order of the members
        ("greedy", {"random_walk": "k1"}, "rows"),
        ("greedy", paths, "other rows"),
    ):
        assert combination_key(*other) != key
    monkeypatch.setattr(member_cache, "code_digest", lambda module: "the combiner changed")
    assert combination_key("greedy", paths, "rows") != key


def test_one_fit_cache_over_a_revised_row_recomputes_what_read_it(raw):
    """A backtest block keeps one FitCache over its origins, each cleaned again: a row revised
    between two runs through it changes the keys of the paths that read it (nothing stale is
    used), as on disk."""
    frame_index = clean(raw, AS_OF).frame.index
    origins = validation_set(clean(raw, AS_OF), PARAMS).origins
    changed = revised(raw, frame_index[frame_index < origins[-1]][-1])
    cache = FitCache()
    ensemble.forecast(clean(raw, AS_OF), PARAMS, MEMBERS, 120, cache=cache)
    again = ensemble.forecast(clean(changed, AS_OF), PARAMS, MEMBERS, 120, cache=cache)
    assert again.quantiles.tobytes() == forecast(changed, None).quantiles.tobytes()


def test_one_process_in_two_folders_writes_each_folders_own_cache(tmp_path, monkeypatch):
    """CACHE_DIR is relative to the folder a run starts in: the same relative path in another
    folder is another file, also for the connection this process keeps open."""
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        session = Session(MemberCache(Path("data/cache"), 10**9))
        session.put("m", {folder: "path"}, {folder: np.zeros(1)})
        session.close()
    for folder in ("first", "second"):
        assert list(entries(MemberCache(tmp_path / folder / "data/cache", 10**9))) == [folder]


def test_a_changed_member_recomputes_only_itself(raw, tmp_path):
    store = MemberCache(tmp_path, 10**9)
    forest = RandomForest(lookback=750, trees=20, steps=5)
    forecast(raw, store, [*MEMBERS, (forest, True)])
    result = forecast(raw, store, [*MEMBERS, (RandomForest(lookback=750, trees=10, steps=5), True)])
    cached = {name: m.cached for name, m in result.members.items()}
    assert cached["random_walk"].misses == cached["var"].misses == 0
    assert cached["random_forest"].hits == 0 and cached["random_forest"].misses > 0


def test_a_member_key_holds_its_own_code_not_the_combination_or_calibration():
    """A new combiner or calibration (or runner) reuses every member path; a member's own module
    and what it imports (the contract in base.py, the levels) are in its key."""
    for member, _ in configured_members(Settings(), PARAMS):
        module = type(member).__module__
        code = _own_imports(module)
        assert {module, "fxforecast.engine.members.base", "fxforecast.quantiles"} <= code
        assert not code & {
            "fxforecast.engine.calibration",
            "fxforecast.engine.combiner",
            "fxforecast.engine.ensemble",
            "fxforecast.engine.runner",
            "fxforecast.settings",
        }


def test_a_corrupt_or_truncated_entry_is_recomputed_and_logged(raw, tmp_path, caplog):
    store = MemberCache(tmp_path, 10**9)
    cold = forecast(raw, store)
    with closing(sqlite3.connect(store.path)) as connection, connection:
        (truncated, altered) = [
            key
            for (key,) in connection.execute(
                "SELECT key FROM entries WHERE kind = 'path' ORDER BY key LIMIT 2"
            )
        ]
        connection.execute(
            "UPDATE entries SET value = substr(value, 1, size / 2) WHERE key = ?", (truncated,)
        )
        # A well-formed value of other numbers under the old digest: only the digest tells.
        (value,) = connection.execute(
            "SELECT value FROM entries WHERE key = ?", (altered,)
        ).fetchone()
        other = zlib.compress(pickle.dumps(pickle.loads(zlib.decompress(value)) * 1.01))
        connection.execute("UPDATE entries SET value = ? WHERE key = ?", (other, altered))

    with caplog.at_level(logging.WARNING, logger="fxforecast.engine.member_cache"):
        warm = forecast(raw, store)
    assert warm.cached().corrupt == 2
    assert warm.quantiles.tobytes() == cold.quantiles.tobytes()
    logged = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(logged) == 2 and any(truncated in line for line in logged)
    with closing(sqlite3.connect(store.path)) as connection:  # both stored again, whole
        for key in (truncated, altered):
            value, digest = connection.execute(
                "SELECT value, digest FROM entries WHERE key = ?", (key,)
            ).fetchone()
            assert hashlib.sha256(value).hexdigest() == digest
    assert forecast(raw, store).cached().corrupt == 0


def test_a_cache_file_that_is_not_a_database_is_skipped_then_cleared(raw, tmp_path, caplog):
    store = MemberCache(tmp_path, 10**9)
    store.path.write_bytes(b"not a database " * 100)
    with caplog.at_level(logging.WARNING, logger="fxforecast.engine.member_cache"):
        result = forecast(raw, store)
    assert result.quantiles.tobytes() == forecast(raw, None).quantiles.tobytes()
    assert "is unusable: file is not a database" in result.cached().error
    assert "member cache not used" in caplog.text
    store.clear()
    assert forecast(raw, store).cached().error is None
    assert store.info()["entries"] > 0


def test_least_recently_used_entries_are_evicted_past_the_bound(tmp_path):
    """Four entries of ~8 kB under a 25 kB bound: the one neither written nor read last goes."""
    values = {name: np.random.default_rng(i).random(1000) for i, name in enumerate("abcd")}
    size = len(zlib.compress(pickle.dumps(values["a"]), 1))
    store = MemberCache(tmp_path, int(3.2 * size))

    def session_with(action, name):
        session = Session(store)
        if action == "put":
            session.put("m", {name: "path"}, {name: values[name]})
        else:
            assert set(session.get({name: "path"})) == {name}
        session.close()

    for action, name in [("put", "a"), ("put", "b"), ("put", "c"), ("get", "a"), ("put", "d")]:
        session_with(action, name)
    assert set(entries(store)) == {"a", "c", "d"}
    assert store.info()["bytes"] <= store.max_bytes


def test_small_writes_keep_the_file_near_its_bound(tmp_path):
    """A process checks the bound at its first write, then after each EVICT_EVERY of it
    written: 600 entries of ~170 bytes under a 50 kB bound (a check every third write) never
    pass it by more than that share, and the newest entries stay."""
    store = MemberCache(tmp_path, 50_000)
    for k in range(600):
        session = Session(store)
        session.put("m", {f"k{k}": "path"}, {f"k{k}": np.full(8, float(k))})
        session.close()
        size = store.info()["bytes"]
        assert size <= store.max_bytes * (1 + member_cache.EVICT_EVERY), k
    assert "k299" in entries(store) and "k0" not in entries(store)
    # A new process's first write checks at once, however small: here the bound shrank below
    # what is kept.
    member_cache._unchecked.clear()
    store = MemberCache(tmp_path, 40_000)
    session = Session(store)
    session.put("m", {"new": "path"}, {"new": np.zeros(8)})
    session.close()
    assert store.info()["bytes"] <= 40_000
