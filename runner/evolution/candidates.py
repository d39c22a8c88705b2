"""The evaluation loop of a generation's candidates, in candidate order: each candidate checked
before training (``runner.evolution.checks``: replayed, promoted, refused, reused, within the
limits), handed to the executor as far as it has room and as the candidates before allow an
exact decision, stored the moment its result arrives, and accepted in candidate order by the
engine's ``tell``. So any number of workers decides what one worker, training one candidate
after another, decides.

With a rung schedule (the ``rungs`` strategy: ``runner.evolution.rungs``) a generation is
evaluated rung by rung: every candidate to the first rung, then, once a rung is complete, its
best share on to the next, each promotion decided, trained, stored and accepted as a
candidate is.
"""

from __future__ import annotations

import math

import attrs

import operators as ops
import strategies as st
from genomics import canonical_hash, dumps

from ..execution import Outcome
from ..records import TIME_BUDGET, Evaluation, Status, evaluation_key
from . import rungs as rs
from .candidate import KNOWN, Candidate, Phase
from .checks import STOP, TRAIN, WAIT, decide
from .costs import refused_by_limits
from .roles import EngineRole
from .state import Reporter
from .tasks import cut_by_budget, judge_for, reusable


class Candidates:
    """The engine's evaluation of a generation's candidates, with the de-duplication cache
    (reuse key -> the individual first evaluated with it and its evaluation)."""

    def __init__(self, engine: EngineRole) -> None:
        self.engine = engine
        self.cache: dict[tuple, tuple[str, Evaluation]] = engine.store.reusable()
        #: Candidates stored but not accepted yet: their weights must stay.
        self.unaccepted: set[str] = set()
        #: The generation being evaluated: with inheritance its weights stay until survivors
        #: are chosen.
        self.current: set[str] = set()
        #: The generation's rung schedule (None: every candidate trains the plan's epochs),
        #: the rung being evaluated, and the promotions trained so far in the generation.
        self.schedule: rs.Schedule | None = None
        self.rung = 0
        self.promoted = 0

    def evaluate(self, candidates: list[Candidate], reporter: Reporter) -> list[ops.Individual]:
        """Evaluate ``candidates`` until a limit is reached; returns the individuals evaluated,
        in order. The rest of the generation is dropped (its evaluated part is kept); the
        first population always gets one evaluation, so that every run has a best (with
        rungs, a run whose limit comes before any candidate reached the last rung has none).

        With a rung schedule, the candidates evaluated are trained to the first rung, then the
        promotions of each rung in turn (:meth:`_promotions`), until the last rung or a limit;
        each individual ends with the evaluation of the highest rung it finished."""
        engine = self.engine
        engine.sync_context(
            engine.state.generation
        )  # as the evaluations begin, for every one of them
        self.current = {c.id for c in candidates}
        self.schedule, self.rung, self.promoted = rs.Schedule.of(engine.state.plan), 0, 0
        # Latency measured with no training under way: the same load for any worker count.
        engine.costs.measure_ahead(
            (c.individual.genome, canonical_hash(c.individual.genome))
            for c in candidates
            if c.failure is None
        )
        # A training the time budget cut short is kept in the store, but takes no part in the
        # generation's decisions: its accuracy is that of an unfinished training. A candidate
        # refused for a limit was never trained: never a parent.
        done = [
            c.individual
            for c in self._evaluate(candidates, reporter)
            if not cut_by_budget(c.evaluation) and not refused_by_limits(c.evaluation)
        ]
        if self.schedule is not None:
            for rung in range(1, self.schedule.last + 1):
                candidates = self._promotions(candidates, rung)
                if not candidates:
                    break
                self.rung = rung
                candidates = self._evaluate(candidates, reporter)
        return done

    def _promotions(self, candidates: list[Candidate], rung: int) -> list[Candidate]:
        """The promotions to ``rung`` from ``candidates`` (those of the rung before, all of
        them in): the ``promote`` share of those that trained to it and finished it, the most
        accurate (ties in candidate order), in candidate order; none once a limit is reached.
        Decided here, after the rung is complete, so any worker count promotes the same
        candidates."""
        engine = self.engine
        if engine.stop(engine.state.budget.exhausted()):  # every candidate is accepted
            return []
        finished = [c for c in candidates if not c.reused and rs.finished(c.evaluation, rung - 1)]
        count = st.promoted_count(len(finished), self.schedule.promote)
        ranked = sorted(finished, key=lambda c: c.evaluation.val_accuracy, reverse=True)
        chosen = {id(c) for c in ranked[:count]}
        promoted = [c.promotion() for c in finished if id(c) in chosen]
        engine.events.record(
            "promoted",
            "engine",
            None,
            {
                "rung": rung,
                "epochs": self.schedule.epochs[rung],
                "finished": [c.id for c in finished],
                "promoted": [c.id for c in promoted],
                "val_accuracy": [c.previous.val_accuracy for c in promoted],
            },
        )
        return promoted

    def _evaluate(self, candidates: list[Candidate], reporter: Reporter) -> list[Candidate]:
        """Decide, train and accept ``candidates`` in candidate order until a limit is
        reached; returns those accepted, in order."""
        engine = self.engine
        in_flight: dict[str, Candidate] = {}
        done: list[Candidate] = []
        decided = accepted = 0
        stopping = False

        def accept_ready() -> None:
            nonlocal accepted
            while accepted < decided and candidates[accepted].phase in KNOWN:
                candidate = candidates[accepted]
                self.accept(candidate, reporter)
                done.append(candidate)
                accepted += 1

        while True:
            accept_ready()
            while (
                not stopping
                and decided < len(candidates)
                and len(in_flight) < engine.executor.capacity
            ):
                verdict = decide(self, candidates, decided, accepted, reporter)
                if verdict == WAIT:
                    break
                if verdict == STOP:
                    stopping = True
                    break
                candidate = candidates[decided]
                if verdict == TRAIN:
                    candidate.advance(Phase.RUNNING)
                    in_flight[candidate.id] = candidate
                    engine.executor.submit(
                        candidate.task, judge_for(self, candidate, len(in_flight) > 1)
                    )
                decided += 1
                accept_ready()
            if not in_flight:
                if stopping or decided == len(candidates):
                    return done
                continue
            outcome = engine.executor.next()
            self.arrived(in_flight.pop(outcome.task.individual), outcome)

    def kept_alike(self) -> set[str]:
        """Individuals whose weights are kept however the generation's trainings interleave."""
        engine = self.engine
        best = engine.context.best
        population = {p.id for p in engine.state.population}
        return population | self.current | ({best.id} if best else set())

    def arrived(self, candidate: Candidate, outcome: Outcome) -> None:
        """A training finished: keep its weights (when it may be needed: the best so far,
        ``keep_weights``) and store it at once, so a stop loses only trainings under way."""
        engine, task = self.engine, candidate.task
        evaluation = engine.costs.annotate(outcome.evaluation, task.genome_hash)
        if self.schedule is not None:
            evaluation = rs.at_rung(evaluation, task, candidate.previous, self.schedule)
        evaluation = self.with_fitness(evaluation)
        if outcome.events:
            engine.events.extend(candidate.id, outcome.events)
        if evaluation.metrics.get("stopped_by") == TIME_BUDGET:
            engine.stop(TIME_BUDGET)
        # With inheritance every trained network may become a parent: kept until it leaves
        # the population (``Engine.kept_weights``). A promotion that did not get to its rung
        # leaves its candidate with the rung before, and that rung's weights.
        kept = candidate.previous is None or not rs.unfinished(evaluation)
        wanted = kept and (
            engine.experiment.keep_weights
            or engine.experiment.inherit
            or (evaluation.ok and engine.better(candidate.individual, evaluation))
        )
        names = [candidate.id] if wanted else []
        if rs.finished(evaluation, self.rung):  # a promotion would start from these
            names.append(rs.snapshot(candidate.id, self.rung))
        for name in names:
            if outcome.model is not None:
                engine.files.save_weights(name, candidate.individual.genome, outcome.model)
            elif outcome.model_bytes is not None:
                engine.files.write_weights(name, outcome.model_bytes)
        candidate.advance(Phase.ARRIVED)
        self.store(candidate, evaluation)
        if reusable(candidate.evaluation):
            key = evaluation_key(task.genome_hash, candidate.evaluation)  # as the store keys it
            self.cache.setdefault(key, (candidate.id, candidate.evaluation))

    def store(self, candidate: Candidate, evaluation: Evaluation) -> None:
        """Store ``candidate``'s individual, its evaluation and events in one transaction."""
        engine, ind = self.engine, candidate.individual
        row = {
            "id": ind.id,
            "generation": ind.generation,
            "genome_hash": canonical_hash(ind.genome),
            "genome": dumps(ind.genome, compact=True),
            "parents": ind.parents,
            "operators": ind.operators,
            "phase": ind.phase,
        }
        current = None
        if candidate.previous is not None and rs.unfinished(evaluation):
            current = candidate.previous.id  # the candidate stays at the rung before
        candidate.evaluation = engine.store.record(
            row,
            evaluation,
            candidate.reused,
            engine.events.take(ind.id),
            current=current,
            seconds=engine.seconds,
        )
        self.unaccepted.add(ind.id)

    def accept(self, candidate: Candidate, reporter: Reporter) -> None:
        """Hand ``candidate`` to the engine's ``tell``, in candidate order: a promotion that
        did not get to its rung is counted, but stays at the rung before."""
        accepted = candidate.evaluation
        if candidate.previous is not None:
            self.promoted += 1
            if rs.unfinished(accepted):
                accepted = candidate.previous
        self.unaccepted.discard(candidate.id)  # its weights are the run's to keep or prune
        self.engine.tell(candidate, accepted, reporter)

    def with_fitness(self, evaluation: Evaluation) -> Evaluation:
        """The fitness selection compares: validation accuracy, then the run's costs. A failed
        candidate's costs are all infinite (the worst), whatever was measured before it
        failed, so that no front keeps it."""
        values = [evaluation.fitness[0]]
        for cost in self.engine.objectives[1:]:
            value = None if evaluation.status == Status.FAILED else evaluation[cost]
            values.append(float(value) if value is not None else math.inf)
        return attrs.evolve(evaluation, fitness=tuple(values))
