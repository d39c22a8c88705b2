"""The run store's file: its SQL schema and version, the migration from older versions, and
the checks a file must pass before SQLite opens it. docs/run-store.md documents the tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import StoreError

SCHEMA_VERSION = 3
FILENAME = "ecogen.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS config (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    toml       TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id           INTEGER PRIMARY KEY,
    individual   TEXT NOT NULL,
    genome_hash  TEXT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    fitness      TEXT NOT NULL,
    val_accuracy REAL,
    params       INTEGER,
    size_bytes   INTEGER,
    flops        INTEGER,
    epochs       INTEGER NOT NULL DEFAULT 0,
    seconds      REAL NOT NULL DEFAULT 0,
    history      TEXT NOT NULL DEFAULT '[]',
    metrics      TEXT NOT NULL DEFAULT '{}',
    created_at   REAL NOT NULL,
    latency_ms   REAL
);
CREATE INDEX IF NOT EXISTS evaluations_hash ON evaluations (genome_hash);
CREATE TABLE IF NOT EXISTS individuals (
    id          TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL,
    genome_hash TEXT NOT NULL,
    genome      TEXT NOT NULL,
    parents     TEXT NOT NULL DEFAULT '[]',
    operators   TEXT NOT NULL DEFAULT '[]',
    evaluation  INTEGER REFERENCES evaluations (id),
    reused      INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    phase       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS individuals_generation ON individuals (generation);
CREATE TABLE IF NOT EXISTS checkpoints (
    generation   INTEGER PRIMARY KEY,
    population   TEXT NOT NULL,
    hall_of_fame TEXT NOT NULL,
    logbook      TEXT NOT NULL,
    rng          TEXT NOT NULL,
    counters     TEXT NOT NULL,
    created_at   REAL NOT NULL,
    strategy     TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    generation  INTEGER NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    individual  TEXT,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);
CREATE TABLE IF NOT EXISTS latencies (
    genome_hash TEXT NOT NULL,
    device      TEXT NOT NULL,
    latency_ms  REAL NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (genome_hash, device)
);
"""

# Version 1 stores (before strategies) gain the new columns and the events table on open.
MIGRATE_FROM_1 = """
ALTER TABLE evaluations ADD COLUMN size_bytes INTEGER;
ALTER TABLE individuals ADD COLUMN phase TEXT NOT NULL DEFAULT '';
ALTER TABLE checkpoints ADD COLUMN strategy TEXT NOT NULL DEFAULT '{}';
"""
# Version 2 stores (before latency) gain the latency column and table on open.
MIGRATE_FROM_2 = """
ALTER TABLE evaluations ADD COLUMN latency_ms REAL;
"""
#: The tables each version adds (created from SCHEMA when a store is migrated to it).
NEW_TABLES = {2: ("events",), 3: ("latencies",)}


def migrate(db: sqlite3.Connection, version: int) -> None:
    """Upgrade the store ``db`` of schema ``version``, one version after the other, in one
    transaction: its new columns and tables, then the version."""
    steps = {1: MIGRATE_FROM_1, 2: MIGRATE_FROM_2}
    with db:
        db.execute("BEGIN IMMEDIATE")
        for old in range(version, SCHEMA_VERSION):
            for statement in steps[old].strip().splitlines():
                db.execute(statement)
            for statement in SCHEMA.split(";"):  # the new tables and their indexes
                if any(
                    f"EXISTS {table} " in statement or f" ON {table} " in statement
                    for table in NEW_TABLES[old + 1]
                ):
                    db.execute(statement)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


_HEADER = b"SQLite format 3\x00"


def check_file(path: Path) -> None:
    """Refuse (StoreError) what cannot be a whole run store, before SQLite opens it: a missing
    or empty file, another kind of file, a file shorter than its own header says (truncated)."""
    if not path.is_file():
        raise StoreError(f"{path}: no run store here (is this a run directory?)")
    with path.open("rb") as f:
        header = f.read(100)
    size = path.stat().st_size
    if not header:
        raise StoreError(f"{path}: empty file, not an ecogen run store")
    if not header.startswith(_HEADER) or len(header) < 100:
        raise StoreError(f"{path}: not an SQLite database (damaged, or not a run store)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid only while its two change counters agree (SQLite's
    # file format, section 1.3.7), and only says what the file holds once the write-ahead log
    # is folded in: a process killed while folding it leaves the rest to SQLite's recovery.
    log = path.with_name(path.name + "-wal")
    folded = not log.exists() or log.stat().st_size == 0
    if folded and header[24:28] == header[92:96] and pages and size < pages * page_size:
        raise StoreError(
            f"{path}: truncated ({size} bytes, its header says {pages * page_size});"
            " restore it from a copy or start a new run"
        )
