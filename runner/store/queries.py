"""The store's queries of a run under way: what the engine and a resumed run ask of it (an
evaluation, the de-duplication cache, the champion, the totals, latencies, the last checkpoint).
Only reads; :class:`runner.store.Store` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..records import Checkpoint, Evaluation, counters_from, evaluation_key
from .history import History, evaluation_of, individual_of


class Queries(History):
    """The store's reads for a run under way (mixed into :class:`runner.store.Store`, which holds
    ``db`` and ``path``)."""

    path: Path

    def evaluation(self, evaluation_id: int) -> Evaluation:
        row = self.db.execute("SELECT * FROM evaluations WHERE id = ?", (evaluation_id,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no evaluation {evaluation_id}")
        return evaluation_of(row)

    def rung_evaluation(self, individual: str, rung: int) -> Evaluation | None:
        """The last evaluation stored for ``individual`` at ``rung`` of a rung schedule
        (``metrics.rung``; one without, such as a failed mutation's, is of rung 0)."""
        row = self.db.execute(
            "SELECT * FROM evaluations WHERE individual = ?"
            " AND coalesce(json_extract(metrics, '$.rung'), 0) = ? ORDER BY id DESC LIMIT 1",
            (individual, rung),
        ).fetchone()
        return None if row is None else evaluation_of(row)

    def reusable(self) -> dict[tuple, tuple[str, Evaluation]]:
        """The de-duplication cache: for each reuse key (genome hash, planned epochs,
        teacher, inherited weights), the first evaluation a run may reuse and the individual
        it was made for. Left out: children whose mutation failed (never trained), failures
        that may not repeat, and trainings cut short (extinct or stopped: they say little of
        the genome trained in full; so are candidates stopped at a rung)."""
        rows = self.db.execute(
            "SELECT * FROM evaluations WHERE status IN ('ok', 'failed')"
            " AND json_extract(metrics, '$.stage') IS NOT 'mutation' ORDER BY id DESC"
        ).fetchall()
        found = {}
        for row in rows:
            evaluation = evaluation_of(row)
            if not evaluation.transient:
                found[evaluation_key(row["genome_hash"], evaluation)] = (
                    row["individual"],
                    evaluation,
                )
        return found

    def individual(self, individual_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM individuals WHERE id = ?", (individual_id,)).fetchone()
        return None if row is None else individual_of(row)

    def hashes_before(self, generation: int) -> set[str]:
        """Genome hashes of the individuals of generations before ``generation``."""
        rows = self.db.execute(
            "SELECT genome_hash FROM individuals WHERE generation < ?", (generation,)
        )
        return {row[0] for row in rows}

    def recently_trained(self, count: int) -> list[str]:
        """The last ``count`` individuals to get an evaluation that did not fail (each once:
        with rungs, a promotion is another evaluation of the same individual)."""
        rows = self.db.execute(
            "SELECT individual FROM evaluations WHERE status != 'failed' GROUP BY individual"
            " ORDER BY max(id) DESC LIMIT ?",
            (count,),
        )
        return [row[0] for row in rows]

    def totals_up_to(self, generation: int) -> tuple[int, int]:
        """Evaluations and training epochs of the generations up to ``generation`` (for stores
        whose checkpoints did not count them)."""
        return tuple(
            self.db.execute(
                "SELECT count(*), coalesce(sum(epochs), 0) FROM evaluations WHERE individual IN"
                " (SELECT id FROM individuals WHERE generation <= ?)",
                (generation,),
            ).fetchone()
        )

    def champion(self) -> str | None:
        """The best individual ever trained: the highest validation accuracy of a finished
        evaluation, then the fewest parameters, then the first in candidate order (generation,
        then index: not the order trainings arrived in, which depends on the workers); None
        when nothing finished. The engine's best, for a store whose checkpoints do not name
        it."""
        row = self.db.execute(
            "SELECT i.id FROM individuals i JOIN evaluations e ON e.id = i.evaluation"
            " WHERE e.status = 'ok' AND NOT i.reused ORDER BY e.val_accuracy DESC,"
            " e.params ASC, i.generation ASC,"
            " CAST(substr(i.id, instr(i.id, '_') + 1) AS INTEGER) ASC, i.rowid ASC LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    def totals(self) -> dict[str, int]:
        """What a run's summary counts: individuals, ``dedup_hits`` (individuals that reused
        an evaluation), ``failures``, ``extinct`` and ``epochs_saved`` (by extinction)."""
        individuals, reused = self.db.execute(
            "SELECT count(*), coalesce(sum(reused), 0) FROM individuals"
        ).fetchone()
        failures, extinct, saved = self.db.execute(
            "SELECT coalesce(sum(status = 'failed'), 0), coalesce(sum(status = 'extinct'), 0),"
            " coalesce(sum(json_extract(metrics, '$.epochs_saved')), 0) FROM evaluations"
        ).fetchone()
        return {
            "individuals": individuals,
            "dedup_hits": reused,
            "failures": failures,
            "extinct": extinct,
            "epochs_saved": saved,
        }

    def latencies(self, device: str) -> dict[str, float]:
        """Every latency measured on ``device``, by genome hash."""
        rows = self.db.execute(
            "SELECT genome_hash, latency_ms FROM latencies WHERE device = ?", (device,)
        )
        return {row[0]: row[1] for row in rows}

    def last_checkpoint(self) -> Checkpoint | None:
        row = self.db.execute(
            "SELECT * FROM checkpoints ORDER BY generation DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(
            generation=row["generation"],
            population=json.loads(row["population"]),
            hall_of_fame=json.loads(row["hall_of_fame"]),
            logbook=json.loads(row["logbook"]),
            rng=json.loads(row["rng"]),
            counters=counters_from(json.loads(row["counters"])),
            strategy=json.loads(row["strategy"]),
        )
