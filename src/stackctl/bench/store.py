"""The local results store: SQLite under the XDG data dir, one JSON document per row.

The schema version lives in SQLite's user_version; a store written by a newer stackctl is
refused before anything is written to it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from stackctl.bench.models import CheckReport, StoredResult, Tuning
from stackctl.errors import InputError

STORE_SCHEMA = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    hardware TEXT,
    backend TEXT NOT NULL,
    engine TEXT NOT NULL,
    model TEXT,
    date TEXT NOT NULL,
    lock_hash TEXT,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checks (id INTEGER PRIMARY KEY, date TEXT, lock_hash TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS sweeps (id INTEGER PRIMARY KEY, date TEXT, hardware TEXT, data TEXT);
"""


class StoreError(InputError):
    code = "store-invalid"


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stackctl"


def default_store_path() -> Path:
    return Path(os.environ.get("STACKCTL_STORE") or data_dir() / "bench.sqlite")


@contextmanager
def open_store(path: Path | None = None) -> Iterator[sqlite3.Connection]:
    path = path or default_store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > STORE_SCHEMA:
            raise StoreError(
                f"{path}: results store schema {version} is newer than this stackctl reads "
                f"({STORE_SCHEMA}); nothing was changed",
                hint="upgrade stackctl, or point STACKCTL_STORE at another file",
            )
        if version < STORE_SCHEMA:
            conn.executescript(_TABLES)
            conn.execute(f"PRAGMA user_version = {STORE_SCHEMA}")
        with conn:
            yield conn
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a readable results store: {exc}") from None
    finally:
        conn.close()


def add_results(conn: sqlite3.Connection, results: Iterable[StoredResult]) -> int:
    rows = [
        (
            r.kind,
            r.row.hardware.key,
            r.row.backend,
            r.engine,
            r.row.model,
            r.date,
            r.lock_hash,
            r.model_dump_json(),
        )
        for r in results
    ]
    conn.executemany(
        "INSERT INTO results (kind, hardware, backend, engine, model, date, lock_hash, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def all_results(conn: sqlite3.Connection) -> list[StoredResult]:
    cursor = conn.execute("SELECT data FROM results ORDER BY id")
    return [StoredResult.model_validate_json(data) for (data,) in cursor]


def _add(conn: sqlite3.Connection, table: str, key: str | None, date: str, doc: BaseModel) -> None:
    column = "lock_hash" if table == "checks" else "hardware"
    conn.execute(
        f"INSERT INTO {table} (date, {column}, data) VALUES (?, ?, ?)",
        (date, key, doc.model_dump_json()),
    )


def add_check(conn: sqlite3.Connection, report: CheckReport, date: str) -> None:
    _add(conn, "checks", report.lock_hash, date, report)


def add_sweep(conn: sqlite3.Connection, tuning: Tuning) -> None:
    _add(conn, "sweeps", tuning.hardware, tuning.measured_on, tuning)


def all_checks(conn: sqlite3.Connection) -> list[tuple[str, CheckReport]]:
    cursor = conn.execute("SELECT date, data FROM checks ORDER BY id")
    return [(date, CheckReport.model_validate_json(data)) for date, data in cursor]


def all_sweeps(conn: sqlite3.Connection) -> list[Tuning]:
    cursor = conn.execute("SELECT data FROM sweeps ORDER BY id")
    return [Tuning.model_validate_json(data) for (data,) in cursor]
