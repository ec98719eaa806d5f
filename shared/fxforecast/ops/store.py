"""Every forecast a service makes, kept in one SQLite file so it can be scored once the actual
rates arrive. One row per (service, as-of date): a re-run for the same as-of date replaces it."""

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from ..errors import FxError

SCHEMA = """
CREATE TABLE IF NOT EXISTS forecasts (
    service TEXT NOT NULL,
    as_of TEXT NOT NULL,            -- yyyy-mm-dd, the last data row the forecast saw
    horizon_days INTEGER NOT NULL,
    target_date TEXT NOT NULL,      -- the last step's date
    last_close REAL NOT NULL,       -- the no-change forecast
    status TEXT NOT NULL,           -- ok or degraded
    steps TEXT NOT NULL,            -- JSON: [{"date": ..., "q0.025": ..., ...}, ...]
    saved_at TEXT NOT NULL,
    PRIMARY KEY (service, as_of)
)
"""
# Concurrent runs of different services write the same file: wait for the other's write.
BUSY_TIMEOUT_S = 30


def _connect(db_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S)
    connection.execute(SCHEMA)
    return connection


def save_forecast(db_path: Path, payload: dict) -> None:
    """Insert or replace the forecast of `payload` (the forecast.json contents)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    row = (
        payload["service"],
        payload["as_of"],
        payload["horizon_days"],
        payload["target_date"],
        payload["last_close"],
        payload["status"],
        json.dumps(payload["steps"]),
        datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with closing(_connect(db_path)) as connection, connection:
        connection.execute("INSERT OR REPLACE INTO forecasts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)


def load_forecasts(db_path: Path) -> list[dict]:
    """Every stored forecast, oldest as-of first, with its steps decoded."""
    if not db_path.is_file():
        raise FxError(
            f"no forecast database at {db_path}; run a service first, or point "
            "FORECAST_DB (or --db) at the file the services write"
        )
    try:
        with closing(_connect(db_path)) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM forecasts ORDER BY service, as_of").fetchall()
    except sqlite3.DatabaseError as exc:
        raise FxError(
            f"{db_path} is not a readable forecast database ({exc}); move it "
            "aside and re-run the services"
        ) from None
    return [{**dict(row), "steps": json.loads(row["steps"])} for row in rows]
