"""What a report shows, read from a run directory without changing it.

The store is opened read-only (:class:`runner.store.Store`, ``readonly=True``) and read in one
short read transaction, so a report of a running search sees one consistent state of it and
never blocks its writer. Nothing here imports matplotlib or torch.
"""

from __future__ import annotations

import collections
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import tomllib
from ..errors import StoreError
from ..store import FILENAME, Store

COSTS = ("params", "size_bytes", "flops", "latency_ms")


@dataclass
class Individual:
    id: str
    generation: int
    parents: list[str]
    operators: list[str]
    phase: str
    reused: bool
    genome: str
    evaluation: int | None
    status: str = "unknown"
    reason: str = ""
    val_accuracy: float | None = None
    params: int | None = None
    size_bytes: int | None = None
    flops: int | None = None
    latency_ms: float | None = None
    epochs: int = 0
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """The accuracy it counts with: a failed one has the worst, 0."""
        if self.status == "failed" or self.val_accuracy is None:
            return 0.0
        return self.val_accuracy

    @property
    def mutation_failed(self) -> bool:
        return self.metrics.get("stage") == "mutation"


@dataclass
class Generation:
    """One checkpoint: a finished generation."""

    generation: int
    population: list[str]
    hall_of_fame: list[str]
    seconds: float
    epochs: int
    phase: str
    best: str | None


@dataclass
class Run:
    run_dir: Path
    meta: dict[str, str]
    config: str
    summary: dict[str, Any] | None
    individuals: dict[str, Individual]
    generations: list[Generation]
    events: list[dict[str, Any]]

    # --- what the run is ---

    @property
    def status(self) -> str:
        return self.meta.get("status", "unknown")

    @property
    def experiment(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.config)
        except tomllib.TOMLDecodeError:
            return {}

    @property
    def objectives(self) -> list[str]:
        """Validation accuracy, then the costs a multi-objective run minimised."""
        if self.summary and self.summary.get("objectives"):
            return list(self.summary["objectives"])
        for event in reversed(self.events):
            if event["kind"] == "pareto" and event["data"].get("front"):
                return [k for k in event["data"]["front"][0] if k != "id"]
        return ["val_accuracy"]

    @property
    def summary_is_current(self) -> bool:
        """summary.json describes the run as it is (it is rewritten only when a run finishes;
        a resumed run that goes on has an older one)."""
        return self.summary is not None and self.status == "complete"

    # --- individuals ---

    def evaluated(self) -> list[Individual]:
        """One individual per evaluation actually run (no de-duplication hits)."""
        return [i for i in self.individuals.values() if not i.reused]

    def best_id(self) -> str | None:
        if self.summary_is_current:
            return self.summary["best"]["id"]
        for generation in reversed(self.generations):
            if generation.best in self.individuals:
                return generation.best
        ok = [i for i in self.evaluated() if i.status == "ok"]
        if not ok:
            return None
        return max(ok, key=lambda i: (i.accuracy, -(i.params or 0))).id

    def lineage(self, individual_id: str) -> list[Individual]:
        """The individual's ancestors from generation 0 down to it (first parents)."""
        chain: list[Individual] = []
        seen: set[str] = set()
        current = self.individuals.get(individual_id)
        while current is not None and current.id not in seen:
            chain.append(current)
            seen.add(current.id)
            current = self.individuals.get(current.parents[0]) if current.parents else None
        return chain[::-1]

    def final_population(self) -> list[str]:
        return list(self.generations[-1].population) if self.generations else []

    def ancestry(self, ids: list[str]) -> set[str]:
        """``ids`` and all of their ancestors (every parent)."""
        found: set[str] = set()
        todo = [i for i in ids if i in self.individuals]
        while todo:
            current = todo.pop()
            if current in found:
                continue
            found.add(current)
            todo.extend(p for p in self.individuals[current].parents if p in self.individuals)
        return found

    def in_progress(self) -> list[Individual]:
        """Individuals of a generation not finished yet (a running or stopped search)."""
        last = self.generations[-1].generation if self.generations else -1
        return [i for i in self.individuals.values() if i.generation > last]

    # --- per generation ---

    def population_accuracies(self, generation: Generation) -> list[float]:
        return [
            self.individuals[i].accuracy for i in generation.population if i in self.individuals
        ]

    def progress(self) -> list[dict[str, Any]]:
        """Per finished generation: best and median accuracy of its population, the accuracies
        of the candidates it evaluated, cumulative epochs and seconds, the phase it was made in,
        its extinctions and failures."""
        rows = []
        for g in self.generations:
            accuracies = self.population_accuracies(g) or [0.0]
            made = [i for i in self.individuals.values() if i.generation == g.generation]
            # The phase its individuals were made in (a checkpoint keeps the next one's).
            phases = collections.Counter(i.phase for i in made).most_common(1)
            rows.append(
                {
                    "generation": g.generation,
                    "best": max(accuracies),
                    "median": statistics.median(accuracies),
                    "candidates": [i.accuracy for i in made if not i.reused],
                    "epochs": g.epochs,
                    "seconds": g.seconds,
                    "phase": phases[0][0] if phases else "",
                    "extinct": sum(1 for i in made if i.status == "extinct" and not i.reused),
                    "failed": sum(1 for i in made if i.status == "failed" and not i.reused),
                }
            )
        return rows

    # --- operators ---

    def operator_statistics(self) -> dict[str, dict[str, int]]:
        """Per mutation: how often a child was made with it (``applied``), how many of those
        children were trained and beat their parent's accuracy (``improved``) and how many
        failed (``failed``)."""
        table: dict[str, dict[str, int]] = {}
        for child in self.individuals.values():
            if not child.operators:
                continue
            parent = self.individuals.get(child.parents[0]) if child.parents else None
            improved = (
                parent is not None and child.status == "ok" and child.accuracy > parent.accuracy
            )
            for name in dict.fromkeys(child.operators):
                row = table.setdefault(name, {"applied": 0, "improved": 0, "failed": 0})
                row["applied"] += 1
                row["improved"] += improved
                row["failed"] += child.status == "failed"
        return dict(sorted(table.items(), key=lambda kv: (-kv[1]["applied"], kv[0])))

    # --- Pareto fronts ---

    def pareto_front(self, cost: str) -> list[Individual]:
        """The evaluated individuals not dominated in (accuracy up, ``cost`` down), cheapest
        first."""
        points = sorted(
            (i for i in self.evaluated() if i.status == "ok" and getattr(i, cost) is not None),
            key=lambda i: (getattr(i, cost), -i.accuracy),
        )
        front: list[Individual] = []
        for ind in points:
            if not front or ind.accuracy > front[-1].accuracy:
                front.append(ind)
        return front


def read_run(run_dir: str | Path) -> Run:
    """Everything a report needs from ``run_dir``, without writing to it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StoreError(f"{run_dir}: no such run directory")
    with Store(run_dir / FILENAME, readonly=True) as store, store.snapshot():
        meta = store.meta()
        config = store.config()
        evaluations = {e.id: e for e in store.evaluations()}
        rows = list(store.individuals())
        checkpoints = store.checkpoints()
        events = store.all_events()
    individuals = {row["id"]: _individual(row, evaluations) for row in rows}
    summary = None
    summary_file = run_dir / "summary.json"
    if summary_file.is_file():
        try:
            summary = json.loads(summary_file.read_text())
        except (OSError, ValueError):
            summary = None
    return Run(
        run_dir=run_dir,
        meta=meta,
        config=config,
        summary=summary,
        individuals=individuals,
        generations=_generations(checkpoints, individuals),
        events=events,
    )


def _individual(row: dict[str, Any], evaluations: dict[int, dict[str, Any]]) -> Individual:
    ind = Individual(
        id=row["id"],
        generation=row["generation"],
        parents=row["parents"],
        operators=row["operators"],
        phase=row.get("phase") or "",
        reused=bool(row["reused"]),
        genome=row["genome"],
        evaluation=row["evaluation"],
    )
    evaluation = evaluations.get(row["evaluation"])
    if evaluation is not None:
        ind.status = evaluation["status"]
        ind.reason = evaluation["reason"]
        ind.val_accuracy = evaluation["val_accuracy"]
        ind.params = evaluation["params"]
        ind.size_bytes = evaluation.get("size_bytes")
        ind.flops = evaluation["flops"]
        ind.latency_ms = evaluation.get("latency_ms")
        ind.epochs = evaluation["epochs"]
        ind.seconds = evaluation["seconds"]
        ind.metrics = evaluation["metrics"]
    return ind


def _generations(
    checkpoints: list[dict[str, Any]], individuals: dict[str, Individual]
) -> list[Generation]:
    out = []
    epochs = 0
    for checkpoint in checkpoints:
        counters = checkpoint["counters"]
        g = checkpoint["generation"]
        if "epochs" in counters:
            epochs = counters["epochs"]
        else:  # an older store: the epochs its generations trained, added up
            epochs = sum(
                i.epochs for i in individuals.values() if not i.reused and i.generation <= g
            )
        out.append(
            Generation(
                generation=g,
                population=checkpoint["population"],
                hall_of_fame=checkpoint["hall_of_fame"],
                seconds=float(counters.get("seconds", 0.0)),
                epochs=int(epochs),
                phase=counters.get("phase", "") or "",
                best=counters.get("best"),
            )
        )
    return out
