"""The run store: one SQLite file per run (``RUN_DIR/ecogen.sqlite``), in WAL mode.

Every write is committed before the run goes on, and the writes that belong together (an
evaluation with its individual and events, a checkpoint) are one transaction, so a run killed at
any moment keeps everything it had computed and never half of a step. A store opened for writing
holds the run directory's lock (:mod:`runner.lock`). The schema is documented in
docs/run-store.md; all structured values are JSON text, so the ``sqlite3`` shell reads everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import faults
from .lock import RunLock

SCHEMA_VERSION = 2
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
    created_at   REAL NOT NULL
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
"""

# Version 1 stores (before strategies) gain the new columns and the events table on open.
_MIGRATE_FROM_1 = """
ALTER TABLE evaluations ADD COLUMN size_bytes INTEGER;
ALTER TABLE individuals ADD COLUMN phase TEXT NOT NULL DEFAULT '';
ALTER TABLE checkpoints ADD COLUMN strategy TEXT NOT NULL DEFAULT '{}';
"""


class StoreError(Exception):
    """The run store is missing, damaged, from another version, or not an ecogen store."""


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


class Store:
    """Typed access to one run's SQLite file.

    Opened for writing (the default) it takes the run directory's lock (or keeps ``lock``,
    already taken) and upgrades an older schema; ``readonly=True`` checks every page and reads
    without writing a byte of the file or taking the lock. :meth:`create` makes a new store.
    """

    def __init__(
        self, path: str | Path, *, readonly: bool = False, lock: RunLock | None = None
    ) -> None:
        self.path = Path(path)
        self.lock: RunLock | None = None
        check_file(self.path)
        if not readonly:
            self.lock = lock if lock is not None else RunLock(self.path.parent)
        try:
            self._open(readonly)
        except BaseException:
            self.close()
            raise

    def _open(self, readonly: bool) -> None:
        if readonly:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            # isolation_level=None: autocommit, with explicit transactions where writes belong
            # together; each statement alone is durable as soon as it returns.
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        if readonly:
            self._check_integrity()
        version = self.get_meta("schema_version")
        if version is None or not version.isdigit():
            raise StoreError(f"{self.path}: not an ecogen run store")
        if int(version) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: run store schema {version} was written by a newer ecogen (this"
                f" one reads up to {SCHEMA_VERSION}); upgrade ecogen to open it"
            )
        if readonly:
            return
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        if int(version) == 1:
            with self.transaction():
                for statement in _MIGRATE_FROM_1.strip().splitlines():
                    self.db.execute(statement)
                for statement in SCHEMA.split(";"):
                    if "events" in statement:
                        self.db.execute(statement)
                self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", ("2",))

    def _check_integrity(self) -> None:
        # Reads every page (SQLite's quick_check): a damaged store is refused before a run
        # writes to it. Done on the read-only look every resume takes first, not again after.
        try:
            damage = self.db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a readable run store ({exc})") from None
        if damage != "ok":
            raise StoreError(f"{self.path}: the run store is damaged ({damage})")

    @classmethod
    def create(
        cls, path: str | Path, toml: str, meta: dict[str, Any], lock: RunLock | None = None
    ) -> Store:
        """A new store holding the configuration ``toml`` and ``meta``, opened for writing.

        Built under a temporary name and renamed into place, so a process killed while creating
        it leaves either no store or a whole one.
        """
        path = Path(path)
        lock = lock if lock is not None else RunLock(path.parent)
        partial = path.with_name(path.name + ".new")
        for leftover in (partial, *(partial.with_name(partial.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        db = sqlite3.connect(partial, isolation_level=None)
        try:
            db.executescript(f"BEGIN;{SCHEMA}COMMIT;")
            with db:
                db.execute("BEGIN")
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()]
                )
                db.execute("INSERT INTO config VALUES (1, ?, ?)", (toml, time.time()))
        finally:
            db.close()
        os.replace(partial, path)
        return cls(path, lock=lock)

    def close(self) -> None:
        """Close the file and give the run directory's lock back."""
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def fold_log(self) -> None:
        """Move the write-ahead log into the file and empty it, so that the file's size is the
        store's (SQLite otherwise does this at 1000 pages and when the last connection closes)."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together or not at all (rolled back on any exception)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            yield

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta and config ---

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an ecogen run store ({exc})") from None
        return row[0] if row else default

    def set_meta(self, **values: Any) -> None:
        self.db.executemany(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(k, str(v)) for k, v in values.items()],
        )

    def save_config(self, toml: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO config VALUES (1, ?, ?)", (toml, time.time()))

    def config(self) -> str:
        row = self.db.execute("SELECT toml FROM config WHERE id = 1").fetchone()
        if row is None:
            raise StoreError(f"{self.path}: the run store holds no configuration")
        return row[0]

    # --- evaluations and individuals ---

    def add_evaluation(self, individual: str, genome_hash: str, result: dict[str, Any]) -> int:
        cur = self.db.execute(
            "INSERT INTO evaluations (individual, genome_hash, status, reason, fitness,"
            " val_accuracy, params, size_bytes, flops, epochs, seconds, history, metrics,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                individual,
                genome_hash,
                result["status"],
                result.get("reason", ""),
                json.dumps(result["fitness"]),
                result.get("val_accuracy"),
                result.get("params"),
                result.get("size_bytes"),
                result.get("flops"),
                result.get("epochs", 0),
                result.get("seconds", 0.0),
                json.dumps(result.get("history", [])),
                json.dumps(result.get("metrics", {})),
                time.time(),
            ),
        )
        return cur.lastrowid

    def evaluation(self, evaluation_id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM evaluations WHERE id = ?", (evaluation_id,)).fetchone()
        return _evaluation(row)

    def evaluations_by_hash(self) -> dict[str, dict[str, Any]]:
        """The first evaluation of every genome hash (the de-duplication cache). A child whose
        mutation failed was never trained, so its row says nothing about its genome."""
        rows = self.db.execute(
            "SELECT * FROM evaluations WHERE json_extract(metrics, '$.stage') IS NOT 'mutation'"
            " ORDER BY id DESC"
        ).fetchall()
        return {row["genome_hash"]: _evaluation(row) for row in rows}

    def add_individual(
        self,
        *,
        id: str,
        generation: int,
        genome_hash: str,
        genome: str,
        parents: list[str],
        operators: list[str],
        evaluation: int,
        reused: bool,
        phase: str = "",
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO individuals (id, generation, genome_hash, genome, parents,"
            " operators, evaluation, reused, created_at, phase)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                id,
                generation,
                genome_hash,
                genome,
                json.dumps(parents),
                json.dumps(operators),
                evaluation,
                int(reused),
                time.time(),
                phase,
            ),
        )

    def individual(self, individual_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM individuals WHERE id = ?", (individual_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["parents"] = json.loads(out["parents"])
        out["operators"] = json.loads(out["operators"])
        return out

    def individuals(self) -> Iterator[dict[str, Any]]:
        for row in self.db.execute("SELECT * FROM individuals ORDER BY created_at"):
            out = dict(row)
            out["parents"] = json.loads(out["parents"])
            out["operators"] = json.loads(out["operators"])
            yield out

    def count(self, table: str, where: str = "1") -> int:
        assert table in ("evaluations", "individuals", "checkpoints", "events")
        return self.db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]

    # --- checkpoints ---

    def save_checkpoint(self, generation: int, **parts: Any) -> None:
        """One generation's state in one transaction: the population ids, hall of fame ids,
        logbook, random-number-generator states, counters and the strategies' state.

        Only the last checkpoint is ever resumed from, so older ones keep their population, hall
        of fame and counters but lose the logbook, generator and strategy states: without that a
        long run's store would grow with the square of its generations (each logbook holds every
        earlier generation).
        """
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO checkpoints (generation, population, hall_of_fame,"
                " logbook, rng, counters, created_at, strategy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    generation,
                    json.dumps(parts["population"]),
                    json.dumps(parts["hall_of_fame"]),
                    json.dumps(parts["logbook"]),
                    json.dumps(parts["rng"]),
                    json.dumps(parts["counters"]),
                    time.time(),
                    json.dumps(parts.get("strategy", {})),
                ),
            )
            for event in parts.get("events", ()):
                self.add_event(**event)
            self.db.execute(
                "UPDATE checkpoints SET logbook = '[]', rng = '{}', strategy = '{}'"
                " WHERE generation < ?",
                (generation,),
            )
            faults.reached("checkpoint")

    def last_checkpoint(self) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM checkpoints ORDER BY generation DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        out = dict(row)
        for key in ("population", "hall_of_fame", "logbook", "rng", "counters", "strategy"):
            out[key] = json.loads(out[key])
        return out

    # --- events ---

    def add_event(
        self,
        generation: int,
        source: str,
        kind: str,
        individual: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """What a strategy or the engine did: a phase change, an extinction, a proposal."""
        self.db.execute(
            "INSERT INTO events (generation, source, kind, individual, data, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (generation, source, kind, individual, json.dumps(data or {}), time.time()),
        )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM events" + (" WHERE kind = ?" if kind else "") + " ORDER BY id"
        rows = self.db.execute(query, (kind,) if kind else ()).fetchall()
        return [{**dict(row), "data": json.loads(row["data"])} for row in rows]

    # --- reading for reports ---

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the store, however a running process writes meanwhile.

        One read transaction, kept only as long as the reads: in WAL mode a reader never blocks
        the writer, but while it lasts the writer cannot fold its log back into the file.
        """
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def meta(self) -> dict[str, str]:
        """Every ``meta`` key with its value (text, as stored)."""
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    def all_evaluations(self) -> dict[int, dict[str, Any]]:
        """Every evaluation by id, JSON columns decoded."""
        rows = self.db.execute("SELECT * FROM evaluations ORDER BY id").fetchall()
        return {row["id"]: _evaluation(row) for row in rows}

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint, oldest first, JSON columns decoded (only the last one keeps its
        logbook, generator and strategy states)."""
        rows = self.db.execute("SELECT * FROM checkpoints ORDER BY generation").fetchall()
        out = []
        for row in rows:
            checkpoint = dict(row)
            for key in ("population", "hall_of_fame", "logbook", "rng", "counters", "strategy"):
                if key in checkpoint:
                    checkpoint[key] = json.loads(checkpoint[key])
            out.append(checkpoint)
        return out

    def all_events(self) -> list[dict[str, Any]]:
        """Every event in the order written; none in a version 1 store (it has no such table,
        and a store opened read-only is never upgraded)."""
        known = self.db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'"
        ).fetchone()[0]
        return self.events() if known else []


def _evaluation(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in ("fitness", "history", "metrics"):
        out[key] = json.loads(out[key])
    return out
