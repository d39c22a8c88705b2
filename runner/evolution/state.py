"""The run's state (:class:`RunState`), owned by the engine and written only by it and its
``tell`` step; the read-only :class:`Snapshot` of it that the display, the reports and the
summary read; and the :class:`Reporter` protocol they are told through."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import attrs
from deap import tools

import operators as ops
import strategies as st

from .budget import Budget


@attrs.define
class RunState:
    """Where the run is: its generation and phase, population, hall of fame, best, logbook,
    the generation's plan, its budget, and why it stopped (``""`` while it goes on)."""

    budget: Budget
    hall_of_fame: Any
    plan: st.GenerationPlan
    generation: int = -1
    phase: str = ""
    stopped_by: str = ""
    population: list[ops.Individual] = attrs.Factory(list)
    #: The best so far by the run's ranking, the first in candidate order among equals: the
    #: run's one best (reported, trained again, best/, exported) and mimicry's teacher.
    best: ops.Individual | None = None
    logbook: tools.Logbook = attrs.Factory(tools.Logbook)
    #: Asynchronous evolution: the children still training as a generation ends.
    in_flight: list[Any] = attrs.Factory(list)

    def stop(self, reason: str) -> str:
        """Stop the run for ``reason`` (a limit's name) unless it already stopped: the first
        reason stays. Returns the reason the run stops for (``""``: it goes on)."""
        self.stopped_by = self.stopped_by or reason
        return self.stopped_by

    def front(self, objectives: tuple[str, ...]) -> list[dict[str, Any]]:
        """The Pareto front (the hall of fame of a multi-objective run), each member's id and
        objectives; a failed candidate's costs are infinite: it is on no front worth
        reporting."""
        return [
            {"id": i.id, **dict(zip(objectives, i.fitness.values, strict=True))}
            for i in self.hall_of_fame
            if all(math.isfinite(v) for v in i.fitness.values)
        ]


@attrs.frozen
class Snapshot:
    """The run as its reporter, the display, the live report and the summary see it: copies,
    taken when they are told something, that nothing they do changes."""

    experiment: Any
    run_dir: Path
    device: str
    strategies: tuple[str, ...]
    objectives: tuple[str, ...]
    #: What ranks the best (``strategies.Ranking``): its ``key`` orders individuals.
    ranking: st.Ranking
    generation: int
    phase: str
    stopped_by: str
    seconds: float
    remaining: float | None
    evaluations: int
    epochs_spent: int
    population: tuple[ops.Individual, ...]
    hall_of_fame: tuple[ops.Individual, ...]
    best: ops.Individual | None
    front: tuple[dict[str, Any], ...] | None
    #: The executor: candidates it trains at once, which each worker trains now, its stats.
    capacity: int
    busy: dict[str, str]
    executor_stats: dict[str, Any]


def snapshot(engine: Any) -> Snapshot:
    """``engine``'s run as it is now, for those who report on it."""
    s, multi = engine.state, len(engine.objectives) > 1
    return Snapshot(
        experiment=engine.experiment,
        run_dir=engine.run_dir,
        device=engine.device,
        strategies=tuple(engine.search.names),
        objectives=tuple(engine.objectives),
        ranking=engine.ranking,
        generation=s.generation,
        phase=s.phase,
        stopped_by=s.stopped_by,
        seconds=s.budget.seconds,
        remaining=s.budget.remaining(),
        evaluations=s.budget.evaluations,
        epochs_spent=s.budget.epochs,
        population=tuple(s.population),
        hall_of_fame=tuple(s.hall_of_fame),
        best=s.best,
        front=tuple(s.front(engine.objectives)) if multi else None,
        capacity=engine.executor.capacity,
        busy=dict(engine.executor.busy()),
        executor_stats=dict(engine.executor.stats()),
    )


class Reporter(Protocol):
    """What the engine tells its display (the CLI's is rich; tests use a silent one)."""

    def started(self, run: Snapshot) -> None: ...
    def evaluating(self, run: Snapshot, individual: ops.Individual) -> None: ...
    def evaluated(self, run: Snapshot, individual: ops.Individual, result: Any) -> None: ...
    def generation_done(self, run: Snapshot, record: dict) -> None: ...
    def final_training(self, run: Snapshot, genome: Any) -> None: ...


class SilentReporter:
    """A reporter that shows nothing."""

    def started(self, run: Snapshot) -> None:
        pass

    def evaluating(self, run: Snapshot, individual: ops.Individual) -> None:
        pass

    def evaluated(self, run: Snapshot, individual: ops.Individual, result: Any) -> None:
        pass

    def generation_done(self, run: Snapshot, record: dict) -> None:
        pass

    def final_training(self, run: Snapshot, genome: Any) -> None:
        pass
