"""The member cache: members' forecast paths (every validation origin and final forecast) and
the fit of each run's newest validation anchor, on disk under a key of everything they depend
on. A weekly run then computes only what is new, and a backtest run again with another combiner
or calibration computes no member at all. The combiner's fit at each origin is kept too (kind
"combination", under combination_key), so a re-run with another calibration fits no combiner.

A key is the sha256 of: the member's name and hyper-parameters, a digest of its code (its
module and every fxforecast module that imports, transitively) and of the numeric libraries'
versions, the kind (path or fit), the refit anchor, the origin and steps (paths), and a digest
of the cleaned frame's rows up to the origin (a fit: up to its anchor), dates and every column,
NaNs included. A row revised or added on or before the origin changes the key; one after it
does not (members read no later row: tests/engine/test_members.py).

Storage: one SQLite file through the standard library (no new dependency). WAL mode and a busy
timeout let the four services and a backtest read and write it at once; each write is one
transaction, so a reader sees an entry whole or not at all, and a process killed mid-write
leaves nothing behind. Each value keeps its own sha256: an entry that does not match it (or
does not load) is logged and recomputed, never used. Past CACHE_MAX_MB the least recently used
entries go first (checked at a process's first write and after each 1% of the bound it
writes). Each process opens its own connection (a forked child too) and keeps it.
"""

import ast
import hashlib
import importlib.util
import json
import logging
import os
import pickle
import platform
import sqlite3
import sys
import threading
import time
import zlib
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from ..settings import Settings

# Libraries whose versions can change a digit of a forecast (a Dask worker must match them too).
NUMERIC_LIBRARIES = ("numpy", "pandas", "scipy", "statsmodels", "arch", "scikit-learn")
FILE = "members.sqlite"
BUSY_TIMEOUT_S = 60.0  # a writer waits this long for another (writes take milliseconds)
CLEAR_HINT = "`fxforecast cache clear` empties it"
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    member TEXT NOT NULL,
    kind TEXT NOT NULL,
    value BLOB NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    used REAL NOT NULL
);
-- Eviction's total and its order read this index alone, not the rows with their values (a full
-- scan of the file at every write: 21 ms per write on a 56 MB cache).
DROP INDEX IF EXISTS entries_used;
CREATE INDEX IF NOT EXISTS entries_used_size ON entries (used, size);
CREATE TABLE IF NOT EXISTS last_run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    label TEXT NOT NULL,
    finished TEXT NOT NULL,
    hits INTEGER NOT NULL,
    misses INTEGER NOT NULL,
    corrupt INTEGER NOT NULL
);
"""

log = logging.getLogger(__name__)


class CacheUnusable(Exception):
    """The cache file cannot be opened, read or written (a run goes on without it);
    `corrupt`: it is not a readable database at all."""

    def __init__(self, message: str, corrupt: bool = False):
        super().__init__(message)
        self.corrupt = corrupt


@dataclass
class Counts:
    """What one member run (or a sum of them) found in the cache: entries loaded (hits),
    computed because absent (misses), found corrupt and recomputed; the first failure, if any."""

    hits: int = 0
    misses: int = 0
    corrupt: int = 0
    error: str | None = None

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(
            self.hits + other.hits,
            self.misses + other.misses,
            self.corrupt + other.corrupt,
            self.error or other.error,
        )

    def as_dict(self) -> dict:
        out = {"hits": self.hits, "misses": self.misses, "corrupt": self.corrupt}
        return {**out, "error": self.error} if self.error else out


@dataclass(frozen=True)
class MemberCache:
    """The cache file in `folder` (CACHE_DIR), bounded by `max_bytes` of values."""

    folder: Path
    max_bytes: int

    @property
    def path(self) -> Path:
        return self.folder / FILE

    def connect(self) -> sqlite3.Connection:
        """A connection in autocommit mode (writes open their own transaction)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise CacheUnusable(f"cannot open {self.path}: {_why(exc)}") from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable enough for a cache
            connection.executescript(SCHEMA)
        except sqlite3.Error as exc:
            connection.close()
            raise _unusable(self.path, exc) from None
        return connection

    def record_run(self, label: str, counts: Counts) -> None:
        """The last run's counts, for `fxforecast cache info` (a failure is only logged)."""
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            with closing(self.connect()) as connection:
                connection.execute(
                    "INSERT OR REPLACE INTO last_run VALUES (1, ?, ?, ?, ?, ?)",
                    (label, finished, counts.hits, counts.misses, counts.corrupt),
                )
        except (CacheUnusable, sqlite3.Error) as exc:
            log.warning("member cache: last run not recorded (%s)", _why(exc))

    def info(self) -> dict:
        """Entries and bytes per member and kind, the bound, the last run."""
        empty = {"entries": 0, "bytes": 0, "file_bytes": 0, "members": [], "last_run": None}
        if not self.path.exists():  # no run has used it yet: nothing to create
            return {"path": str(self.path), **empty, "max_bytes": self.max_bytes}
        try:
            with closing(self.connect()) as connection:
                rows = connection.execute(
                    "SELECT member, kind, COUNT(*), SUM(size) FROM entries GROUP BY member, kind"
                ).fetchall()
                last = connection.execute(
                    "SELECT label, finished, hits, misses, corrupt FROM last_run"
                ).fetchone()
        except sqlite3.Error as exc:
            raise _unusable(self.path, exc) from None
        files = [self.path, self.path.with_name(FILE + "-wal")]
        return {
            "path": str(self.path),
            "entries": sum(r[2] for r in rows),
            "bytes": sum(r[3] for r in rows),
            "file_bytes": sum(p.stat().st_size for p in files if p.exists()),
            "max_bytes": self.max_bytes,
            "members": [{"member": m, "kind": k, "entries": n, "bytes": b} for m, k, n, b in rows],
            "last_run": None
            if last is None
            else dict(zip(("label", "finished", "hits", "misses", "corrupt"), last, strict=True)),
        }

    def clear(self) -> str:
        """Remove every entry and give the space back; says what went. A file that is not a
        readable database is deleted instead."""
        if not self.path.exists():
            return f"nothing to remove: no {self.path}"
        forgotten = _connections.pop(_connection_key(self.path), None)  # this process starts anew
        if isinstance(forgotten, tuple):
            forgotten[0].close()
        try:
            with closing(self.connect()) as connection:
                entries, size = connection.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
                ).fetchone()
                connection.execute("DELETE FROM entries")
                connection.execute("DELETE FROM last_run")
                connection.execute("VACUUM")
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return f"removed {entries} entries ({size / 1e6:.1f} MB) from {self.path}"
        except CacheUnusable as exc:
            if not exc.corrupt:
                raise
        except sqlite3.Error as exc:
            if not _unusable(self.path, exc).corrupt:  # e.g. locked by a run past the timeout
                raise CacheUnusable(f"cannot clear {self.path}: {_why(exc)}") from None
        for suffix in ("", "-wal", "-shm"):  # not a database: nobody can be using it
            self.path.with_name(FILE + suffix).unlink(missing_ok=True)
        return f"removed {self.path}, which was not a readable database"


def describe(info: dict) -> str:
    """`fxforecast cache info`'s lines."""
    mb = 1e6
    lines = [
        f"member cache: {info['path']}",
        f"entries: {info['entries']}, {info['bytes'] / mb:.1f} MB "
        f"(file {info['file_bytes'] / mb:.1f} MB; evicted past {info['max_bytes'] / mb:.0f} MB)",
    ]
    for row in info["members"]:
        lines.append(
            f"  {row['member']} {row['kind']}s: {row['entries']}, {row['bytes'] / mb:.1f} MB"
        )
    last = info["last_run"]
    if last is None:
        lines.append("last run: none recorded")
    else:
        lines.append(
            f"last run: {last['label']}, finished {last['finished']}: {last['hits']} hits, "
            f"{last['misses']} misses, {last['corrupt']} corrupt"
        )
    return "\n".join(lines)


def member_cache(settings: Settings) -> MemberCache | None:
    """The cache CACHE_DIR names, or None when it is empty (off)."""
    if settings.cache_dir is None:
        return None
    return MemberCache(settings.cache_dir, settings.cache_max_mb * 1_000_000)


# This process's connection to each cache file, opened on first use and kept: opening and closing
# one per member run cost a WAL checkpoint at every close (about 10 ms, four per backtest origin).
# By process id, so a forked child opens its own and leaves the one it inherited untouched
# (SQLite forbids using a connection across a fork); threads share it under its lock. A file
# that failed is not tried again by this process: a reason instead of a connection.
_connections: dict[tuple[int, Path], tuple[sqlite3.Connection, threading.Lock] | str] = {}


# Bytes this process wrote to each cache file since it last checked the bound: it checks at its
# first write, then once they reach EVICT_EVERY of the bound (summing the sizes costs about a
# millisecond, and a backtest writes a small combination at every origin). The file may so pass
# its bound by that share for each process writing at once.
EVICT_EVERY = 0.01
_unchecked: dict[tuple[int, Path], int] = {}


def _connection_key(path: Path) -> tuple[int, Path]:
    # The absolute path: CACHE_DIR is relative to the folder a run starts in, and one process
    # (the tests, a library user) may work in several.
    return os.getpid(), path.absolute()


class Session:
    """One member run's use of the cache: reads and writes, and its counts. After a failure
    (file unusable, disk full, locked past the timeout) the run goes on without the cache; the
    process logs it once."""

    def __init__(self, store: MemberCache | None):
        self.store = store
        self.counts = Counts()
        self._used: list[str] = []
        self._wrote = 0  # bytes

    def _open(self) -> tuple[sqlite3.Connection, threading.Lock] | None:
        if self.store is None:
            return None
        key = _connection_key(self.store.path)
        if key not in _connections:
            try:
                _connections[key] = (self.store.connect(), threading.Lock())
            except CacheUnusable as exc:
                self._fail(str(exc))
                return None
        found = _connections[key]
        if isinstance(found, str):
            self.counts.error, self.store = found, None
            return None
        return found

    def _fail(self, reason: str) -> None:
        self.counts.error = reason
        log.warning("member cache not used: %s", reason)
        _connections[_connection_key(self.store.path)] = reason
        self.store = None

    def get(self, kinds: dict[str, str]) -> dict[str, object]:
        """The stored values of these keys (key -> kind); absent ones count as misses."""
        opened = self._open()
        if opened is None or not kinds:
            return {}
        connection, lock = opened
        keys = list(kinds)
        try:
            rows = []
            with lock:
                for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
                    chunk = keys[start : start + 500]
                    rows += connection.execute(
                        f"SELECT key, value, digest FROM entries WHERE key IN "
                        f"({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
        except sqlite3.Error as exc:
            self._fail(f"cannot read {self.store.path}: {_why(exc)}; {CLEAR_HINT}")
            return {}
        found = {}
        for key, value, digest in rows:
            try:
                if hashlib.sha256(value).hexdigest() != digest:
                    raise ValueError("its bytes do not match their digest")
                found[key] = pickle.loads(zlib.decompress(value))
            except Exception as exc:  # truncated, altered, or written by other code: recompute
                self.counts.corrupt += 1
                log.warning("member cache entry %s corrupt (%s); recomputing it", key, exc)
        self._used += found
        self.counts.hits += len(found)
        self.counts.misses += len(kinds) - len(found)
        return found

    def put(self, member: str, kinds: dict[str, str], values: dict[str, object]) -> None:
        """Store these values whole, in one transaction."""
        opened = self._open()
        if opened is None or not values:
            return
        connection, lock = opened
        now = time.time()
        rows = []
        for key, value in values.items():
            blob = zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1)
            digest = hashlib.sha256(blob).hexdigest()
            rows.append((key, member, kinds[key], blob, digest, len(blob), now))
        try:
            with lock, _transaction(connection):
                connection.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )
            self._wrote += sum(row[5] for row in rows)
        except sqlite3.Error as exc:  # disk full, locked past the timeout, ...
            self._fail(f"cannot write {self.store.path}: {_why(exc)}")

    def close(self) -> None:
        """Mark the entries read as used now and, once this process has written EVICT_EVERY of
        the bound since it last checked, evict past the bound."""
        opened = self._open() if self._used or self._wrote else None
        if opened is None:
            return
        key = _connection_key(self.store.path)
        every = EVICT_EVERY * self.store.max_bytes
        unchecked = _unchecked.get(key, every) + self._wrote  # a process's first write checks
        evict = self._wrote > 0 and unchecked >= every
        _unchecked[key] = 0 if evict else unchecked
        if not (self._used or evict):
            return
        connection, lock = opened
        try:
            with lock, _transaction(connection):
                now = time.time()
                connection.executemany(
                    "UPDATE entries SET used = ? WHERE key = ?", [(now, k) for k in self._used]
                )
                if evict:
                    _evict(connection, self.store.max_bytes)
        except sqlite3.Error as exc:
            _unchecked[key] = unchecked
            self._fail(f"cannot update {self.store.path}: {_why(exc)}")


@contextmanager
def _transaction(connection: sqlite3.Connection):
    """BEGIN IMMEDIATE (the write lock, waiting up to the busy timeout) ... COMMIT, or ROLLBACK
    on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _evict(connection: sqlite3.Connection, max_bytes: int) -> None:
    """Least recently used entries go until the rest fit in `max_bytes`."""
    (total,) = connection.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()
    if total <= max_bytes:
        return
    connection.execute(
        "DELETE FROM entries WHERE key IN (SELECT key FROM (SELECT key, SUM(size) OVER "
        "(ORDER BY used DESC, key ROWS UNBOUNDED PRECEDING) AS kept FROM entries) "
        "WHERE kept > ?)",
        (max_bytes,),
    )


def _unusable(path: Path, exc: sqlite3.Error) -> CacheUnusable:
    # An OperationalError (locked, disk full, read-only) is a state, not a damaged file.
    corrupt = isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.OperationalError
    )
    return CacheUnusable(f"{path} is unusable: {_why(exc)}; {CLEAR_HINT}", corrupt)


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


# Keys


def member_identity(member) -> str:
    """A digest of everything about a member that its paths and fits depend on, besides the
    data."""
    module = type(member).__module__
    identity = [member.name, member.hyperparameters(), code_digest(module), _platform()]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def entry_key(identity: str, kind: str, anchor, origin, steps, rows_digest: str) -> str:
    parts = [identity, kind, _day(anchor), _day(origin), str(steps), rows_digest]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def combination_key(combiner: str, paths_keys: dict[str, str], rows_digest: str) -> str:
    """A combiner's fit: the combiner and its code, each working member's validation paths (by
    name, in order) and the rows up to the as-of (which hold the validation's actuals)."""
    parts = [
        combiner,
        code_digest("fxforecast.engine.combiner"),
        json.dumps([_platform(), list(paths_keys.items())]),
        rows_digest,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _day(date: pd.Timestamp | None) -> str:
    return "" if date is None else str(date.value)  # nanoseconds: cheaper than a date string


@cache
def code_digest(module: str) -> str:
    """sha256 of the module's source and of every fxforecast module it imports, transitively."""
    digest = hashlib.sha256()
    for name in sorted(_own_imports(module)):
        digest.update(name.encode() + b"\0" + _file(name).read_bytes())
    return digest.hexdigest()


def _own_imports(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                # `from . import x` names a module or a name in the package; `from .m import x`
                # names names in m.
                names = [base]
                if node.module is None:
                    names = [f"{base}.{a.name}" for a in node.names]
                    names = [n if _is_module(n) else base for n in names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            todo += [n for n in names if n.split(".")[0] == "fxforecast" and n not in seen]
    return seen


def _is_module(name: str) -> bool:
    return name in sys.modules or importlib.util.find_spec(name) is not None


def _file(module: str) -> Path:
    """The module's source file, without importing it (a lazy import may be heavy)."""
    loaded = sys.modules.get(module)
    return Path(loaded.__file__ if loaded else importlib.util.find_spec(module).origin)


@cache
def _platform() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in NUMERIC_LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


class RowDigests:
    """Digests of a frame's leading rows: for a date, the rows dated on or before it."""

    def __init__(self, frame: pd.DataFrame, earlier: "RowDigests | None" = None):
        """`earlier`: another frame's digests, kept where its rows are this frame's leading
        rows bit for bit (a backtest's next origin: the same rows and a week more)."""
        self.frame = frame
        values = np.ascontiguousarray(frame.to_numpy(dtype=np.float64))  # rows in order
        self._values = np.where(np.isnan(values), np.nan, values)  # one NaN, whatever its bits
        self._found: dict[int, str] = {}  # by the date's nanoseconds
        if earlier is not None and self._leads_with(earlier):
            end = earlier.frame.index[-1].value  # a later date's digest read fewer rows than here
            self._found = {stamp: found for stamp, found in earlier._found.items() if stamp <= end}

    def _leads_with(self, earlier: "RowDigests") -> bool:
        """Whether `earlier`'s rows (dates, column names, value bits) are this frame's first
        rows, so that every digest of it holds here. Comparing is far cheaper than hashing."""
        n = len(earlier.frame)
        return (
            0 < n <= len(self.frame)
            and list(earlier.frame.columns) == list(self.frame.columns)
            and np.array_equal(earlier.frame.index.asi8, self.frame.index.asi8[:n])
            and np.array_equal(earlier._values.view(np.uint64), self._values[:n].view(np.uint64))
        )

    def of(self, dates: list[pd.Timestamp]) -> list[str]:
        """The sha256 of the rows up to each date (their dates, column names and values)."""
        stamps = [date.value for date in dates]  # found by nanoseconds: an int hashes fast
        found = self._found
        wanted = sorted({stamp for stamp in stamps if stamp not in found})
        if wanted:
            self._compute(wanted)
        return [found[stamp] for stamp in stamps]

    def _compute(self, wanted: list[int]) -> None:
        """One pass over the rows, stopping at each date (nanoseconds): every prefix's digest."""
        ends = self.frame.index.searchsorted(np.array(wanted, "datetime64[ns]"), side="right")
        stamps = self.frame.index.asi8
        dates_hash = hashlib.sha256()
        values_hash = hashlib.sha256(json.dumps(list(map(str, self.frame.columns))).encode())
        done = 0
        for stamp, end in zip(wanted, ends, strict=True):
            dates_hash.update(stamps[done:end].tobytes())
            values_hash.update(self._values[done:end].tobytes())
            done = end
            pair = dates_hash.digest() + values_hash.digest()
            self._found[stamp] = hashlib.sha256(pair).hexdigest()
