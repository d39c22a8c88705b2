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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from .. import faults
from ..errors import StoreError
from ..lock import RunLock
from ..records import Checkpoint, Evaluation, converter
from .queries import Queries
from .schema import SCHEMA, SCHEMA_VERSION, check_file, migrate

#: The tables every schema version has (later ones are created when a store is upgraded).
_FIRST_TABLES = ("meta", "config", "evaluations", "individuals", "checkpoints")

__all__ = ["Store"]


class Store(Queries):
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
            # A URI, so its path is percent-encoded: a '#' or '?' in it would end the path.
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, timeout=30)
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
        tables = {
            r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        missing = [t for t in _FIRST_TABLES if t not in tables]
        if missing:  # a meta table alone is not a run store: reading it would fail mid-command
            raise StoreError(f"{self.path}: not an ecogen run store (no {missing[0]} table)")
        if readonly:
            return
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        if int(version) < SCHEMA_VERSION:
            migrate(self.db, int(version))

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

    def add_evaluation(self, individual: str, genome_hash: str, evaluation: Evaluation) -> int:
        """Store ``evaluation`` of ``individual``; returns its id."""
        e = evaluation
        cur = self.db.execute(
            "INSERT INTO evaluations (individual, genome_hash, status, reason, fitness,"
            " val_accuracy, params, size_bytes, flops, epochs, seconds, history, metrics,"
            " created_at, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                individual,
                genome_hash,
                str(e.status),
                e.reason,
                json.dumps(list(e.fitness)),
                e.val_accuracy,
                e.params,
                e.size_bytes,
                e.flops,
                e.epochs,
                e.seconds,
                json.dumps(list(e.history)),
                json.dumps(e.metrics),
                time.time(),
                e.latency_ms,
            ),
        )
        return cur.lastrowid

    def record(
        self,
        individual: dict[str, Any],
        evaluation: Evaluation,
        reused: bool,
        events: Iterable[dict[str, Any]] = (),
        current: int | None = None,
        **meta: Any,
    ) -> Evaluation:
        """An individual (``add_individual``'s fields), its evaluation (added unless
        ``reused``: then it already has an id), the events of its training and ``meta`` in one
        transaction, so a resumed run finds all of them or none. The individual's row names
        this evaluation, or the one ``current`` names (a promotion that did not get to its
        rung leaves its candidate with the rung before). Returns the evaluation with its id."""
        with self.transaction():
            if not reused:
                evaluation = attrs.evolve(
                    evaluation,
                    id=self.add_evaluation(individual["id"], individual["genome_hash"], evaluation),
                )
            faults.reached("record")
            named = evaluation.id if current is None else current
            self.add_individual(**individual, evaluation=named, reused=reused)
            for event in events:
                self.add_event(**event)
            self.set_meta(**meta)
        return evaluation

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

    # --- latencies ---

    def add_latency(self, genome_hash: str, device: str, latency_ms: float) -> None:
        """A latency measured (kept as first measured: a resumed run decides with it again)."""
        self.db.execute(
            "INSERT OR IGNORE INTO latencies (genome_hash, device, latency_ms, created_at)"
            " VALUES (?, ?, ?, ?)",
            (genome_hash, device, latency_ms, time.time()),
        )

    # --- checkpoints ---

    def save_checkpoint(
        self, checkpoint: Checkpoint, events: Iterable[dict[str, Any]] = ()
    ) -> None:
        """One generation's state and ``events`` in one transaction.

        Only the last checkpoint is ever resumed from, so older ones keep their population, hall
        of fame and counters but lose the logbook, generator and strategy states: without that a
        long run's store would grow with the square of its generations (each logbook holds every
        earlier generation).
        """
        c = checkpoint
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO checkpoints (generation, population, hall_of_fame,"
                " logbook, rng, counters, created_at, strategy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    c.generation,
                    json.dumps(list(c.population)),
                    json.dumps(list(c.hall_of_fame)),
                    json.dumps(list(c.logbook)),
                    json.dumps(c.rng),
                    json.dumps(converter.unstructure(c.counters)),
                    time.time(),
                    json.dumps(c.strategy),
                ),
            )
            for event in events:
                self.add_event(**event)
            self.db.execute(
                "UPDATE checkpoints SET logbook = '[]', rng = '{}', strategy = '{}'"
                " WHERE generation < ?",
                (c.generation,),
            )
            faults.reached("checkpoint")

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
