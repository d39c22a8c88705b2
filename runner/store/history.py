"""Reading a run's whole history from its store, as reports do: every individual, evaluation,
checkpoint and event, in one consistent snapshot however a running search writes meanwhile."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from ..records import Evaluation


class History:
    """The store's reads of everything (mixed into :class:`runner.store.Store`, which holds
    ``db``)."""

    db: sqlite3.Connection

    def individuals(self) -> Iterator[dict[str, Any]]:
        for row in self.db.execute("SELECT * FROM individuals ORDER BY created_at"):
            yield individual_of(row)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM events" + (" WHERE kind = ?" if kind else "") + " ORDER BY id"
        rows = self.db.execute(query, (kind,) if kind else ()).fetchall()
        return [{**dict(row), "data": json.loads(row["data"])} for row in rows]

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

    def evaluations(self) -> list[Evaluation]:
        """Every evaluation, in the order they were made."""
        return [evaluation_of(r) for r in self.db.execute("SELECT * FROM evaluations ORDER BY id")]

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


def individual_of(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["parents"] = json.loads(out["parents"])
    out["operators"] = json.loads(out["operators"])
    return out


def evaluation_of(row: sqlite3.Row) -> Evaluation:
    return Evaluation(
        status=row["status"],
        reason=row["reason"],
        fitness=json.loads(row["fitness"]),
        val_accuracy=row["val_accuracy"],
        params=row["params"],
        size_bytes=row["size_bytes"],
        flops=row["flops"],
        epochs=row["epochs"],
        seconds=row["seconds"],
        history=json.loads(row["history"]),
        metrics=json.loads(row["metrics"]),
        id=row["id"],
        # A store opened read-only is never upgraded: one from before latency has no column.
        latency_ms=row["latency_ms"] if "latency_ms" in row.keys() else None,
    )
