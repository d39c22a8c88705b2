"""How each candidate of a generation gets its evaluation, in candidate order: from the store
(a generation replayed after a stop), from its failed mutation, from the run's limits (refused
before training: ``runner.costs``), from an earlier training of the same genome trained the same
way (de-duplication), or from the evaluator; and what follows each one: counting it, keeping its
weights, storing it with its events, and the best so far."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

import operators as ops
import strategies as st
from genomics import canonical_hash, dumps

from . import faults
from . import rng as rngs
from .costs import refused_by_limits
from .evaluation import failed_evaluation
from .records import Evaluation, Status, Task

if TYPE_CHECKING:
    from .engine import Engine, Reporter


class Candidates:
    """The engine's evaluation of candidates, with the de-duplication cache (reuse key ->
    the individual first evaluated with it and its evaluation)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cache: dict[tuple, tuple[str, Evaluation]] = engine.store.reusable()
        #: Events of a candidate's decisions, stored with its evaluation.
        self.events: dict[str, list[dict[str, Any]]] = {}
        #: The candidate a strategy is deciding about (its events go to ``events``).
        self.deciding_for: str | None = None

    def evaluate(self, individuals: list[ops.Individual], reporter: Reporter) -> list:
        """Evaluate ``individuals`` in order until a limit is reached; returns those evaluated.
        The rest of the generation is dropped (its evaluated part is kept); the first
        population always gets one evaluation, so that every run has a best."""
        e = self.engine
        done: list[ops.Individual] = []
        training: dict[str, ops.Individual] = {}

        def tasks() -> Iterator[Task]:
            for ind in individuals:
                e.stopped_by = e.stopped_by or e.budget.exhausted()
                if e.stopped_by and (done or training or e.generation > 0):
                    return
                reporter.evaluating(e, ind)
                task = self._settle(ind, reporter)
                if task is None:
                    if not refused_by_limits(ind.evaluation):  # never trained, never a parent
                        done.append(ind)
                else:
                    training[ind.id] = ind
                    yield task

        for outcome in e.evaluator.evaluate(tasks(), self._judge(training)):
            ind = training.pop(outcome.task.individual)
            self._accept(ind, outcome.evaluation, reporter, model=outcome.model, task=outcome.task)
            # A training the time budget cut short is kept in the store, but takes no part in
            # the generation's decisions: its accuracy is that of an unfinished training.
            if not cut_by_budget(ind.evaluation):
                done.append(ind)
        order = {ind.id: i for i, ind in enumerate(individuals)}
        return sorted(done, key=lambda ind: order[ind.id])

    def _settle(self, ind: ops.Individual, reporter: Reporter) -> Task | None:
        """Evaluate ``ind`` without training when its result is known (stored before a stop,
        a failed mutation, a result to reuse); otherwise the task that trains it."""
        store = self.engine.store
        genome_hash = canonical_hash(ind.genome)
        known = store.individual(ind.id)
        if known is not None and known["genome_hash"] == genome_hash and known["evaluation"]:
            stored = store.evaluation(known["evaluation"])
            # A training the time budget cut short is done again when its generation is (a
            # resumed run whose budget was raised replays it).
            if not cut_by_budget(stored):
                self._accept(ind, stored, reporter, stored=True, reused=bool(known["reused"]))
                return None
        failure = getattr(ind, "mutation_failure", None)
        if failure is None:
            failure = self.engine.costs.refusal(ind.genome, genome_hash)
        if failure is not None:
            self._accept(ind, self.with_fitness(failure), reporter)
            return None
        task = self._task(ind, genome_hash)
        hit = self.cache.get(task.key)
        if hit is None:
            return task
        source, evaluation = hit
        why = {
            "source": source,
            "evaluation": evaluation.id,
            "reason": "same genome, planned epochs and teacher",
            "planned_epochs": task.epochs,
            "teacher": task.teacher,
        }
        self.events.setdefault(ind.id, []).append(
            self.engine.event("reused", "engine", ind.id, why)
        )
        self._accept(ind, evaluation, reporter, reused=True)
        return None

    def _task(self, ind: ops.Individual, genome_hash: str) -> Task:
        e = self.engine
        context = e.sync_context(ind.generation)
        self.deciding_for = ind.id
        try:
            advice = e.search.training(ind, context)
        finally:
            self.deciding_for = None
        seed = rngs.seed_for(e.experiment.seed, ind.id)
        task = Task(ind.id, ind.genome, genome_hash, ind.generation, seed, e.plan.epochs)
        if advice is None:
            return task
        best = context.best
        if best is None or advice.teacher != best.id:
            raise st.StrategyError(
                f"strategy asked for teacher {advice.teacher}, but only the best so far"
                f" ({best.id if best else 'none yet'}) has weights to teach with"
            )
        return attrs.evolve(
            task,
            teacher=advice.teacher,
            distill_temperature=advice.temperature,
            distill_weight=advice.weight,
        )

    def _judge(self, training: dict[str, ops.Individual]) -> Any:
        """The per-epoch decision about a training: the strategies' (extinction), then the
        time budget's (never before the run has a best, nor after the last epoch)."""
        e = self.engine

        def judge(task: Task, epoch: int, epochs: int, val_accuracy: float) -> st.Stop | None:
            faults.reached("epoch")
            context = e.sync_context(task.generation)
            self.deciding_for = task.individual
            try:
                individual = training[task.individual]
                stop = e.search.on_epoch(individual, epoch, epochs, val_accuracy, context)
            finally:
                self.deciding_for = None
            if stop is None and epoch < epochs and e.best is not None and e.budget.time_up():
                e.stopped_by = "time budget"
                stop = st.Stop(
                    f"time budget reached after epoch {epoch}",
                    details={"stopped_by": "time budget"},
                )
            return stop

        return judge

    def _accept(
        self,
        ind: ops.Individual,
        evaluation: Evaluation,
        reporter: Reporter,
        *,
        model: Any = None,
        task: Task | None = None,
        reused: bool = False,
        stored: bool = False,
    ) -> None:
        """Take ``evaluation`` as ``ind``'s: count it, keep its weights, store it with its
        events (unless it came from the store), and make it the best so far when it is."""
        e = self.engine
        if task is not None:
            evaluation = self.with_fitness(e.costs.annotate(evaluation, task.genome_hash))
        if not reused:
            e.budget.count(ind.id, evaluation)
        new_best = not reused and evaluation.ok and evaluation.fitness[0] > e.best_fitness
        if not stored:
            if model is not None and (new_best or e.experiment.keep_weights):
                e.files.save_weights(ind.id, ind.genome, model)
            row = {
                "id": ind.id,
                "generation": ind.generation,
                "genome_hash": canonical_hash(ind.genome),
                "genome": dumps(ind.genome, compact=True),
                "parents": ind.parents,
                "operators": ind.operators,
                "phase": ind.phase,
            }
            events = self.events.pop(ind.id, [])
            evaluation = e.store.record(row, evaluation, reused, events, seconds=e.seconds)
            if task is not None and reusable(evaluation):
                self.cache.setdefault(task.key, (ind.id, evaluation))
        e.attach(ind, evaluation, reused)
        if new_best:
            e.best, e.best_fitness = ind, evaluation.fitness[0]
            e.files.promote(ind.id, ind.genome)
        e.files.prune(e.kept_weights(closing=False))
        faults.reached("evaluation")
        reporter.evaluated(e, ind, evaluation)
        e.budget.check_failures(e.run_dir)

    def with_fitness(self, evaluation: Evaluation) -> Evaluation:
        """The fitness selection compares: validation accuracy, then the run's costs. A failed
        candidate's costs are all infinite (the worst), whatever was measured before it
        failed, so that no front keeps it."""
        values = [evaluation.fitness[0]]
        for cost in self.engine.objectives[1:]:
            value = None if evaluation.status == Status.FAILED else evaluation[cost]
            values.append(float(value) if value is not None else math.inf)
        return attrs.evolve(evaluation, fitness=tuple(values))


def mutation_failure(exc: Exception) -> Evaluation:
    """The evaluation of a child whose mutation raised: it is never trained."""
    return failed_evaluation(
        exc, time.perf_counter(), metrics={"stage": "mutation"}, prefix="mutation: "
    )


def cut_by_budget(evaluation: Evaluation) -> bool:
    """Whether the run's time budget ended this training before its last epoch."""
    return evaluation.metrics.get("stopped_by") == "time budget"


def reusable(evaluation: Evaluation) -> bool:
    """Whether a later candidate with the same reuse key may take this result: a finished
    training, or a failure bound to repeat (as ``Store.reusable`` decides for stored ones)."""
    if evaluation.metrics.get("stage") == "mutation":
        return False
    return evaluation.ok or (evaluation.status == Status.FAILED and not evaluation.transient)
