"""Asynchronous (regularized, or aging) evolution, Real et al. 2019: no generation barrier. A
child is made whenever the executor has room, from the population as it is then (its parent
chosen by the run's strategies: a tournament by default), and accepted the moment its result
arrives: counted, the best so far when it is, and added to the population, whose oldest
member dies. A generation is ``children`` children accepted (its checkpoint, logbook line and
the strategies' ``generation_end``); children still training then go on into the next one,
and the checkpoint names them, so that a resumed run trains them first.

With one worker each child is made, trained and accepted before the next is made: the run is
the same every time, and the same after a stop and resume. With more, which results arrive
first decides which population the next child is drawn from, so two runs differ; each is
still resumable (docs/asynchronous.md). This is one of the engine's own steps: it changes the
run's state as the engine's generation does.
"""

from __future__ import annotations

from typing import Any

import operators as ops
from genomics import dumps, loads

from .candidate import Candidate, Phase
from .checks import KNOWN, WAIT, budget_reached, max_epochs, queued, refused, replayed, reused
from .costs import refused_by_limits
from .roles import EngineRole
from .state import Reporter
from .tasks import cut_by_budget, judge_for
from .variation import crossing, proposed, vary


def birth(ind: ops.Individual) -> tuple[int, int]:
    """When ``ind`` was made: its generation, then its index in it (``gG_I``); the oldest
    has the smallest."""
    return ind.generation, int(str(ind.id).rpartition("_")[2])


def in_flight_rows(candidates: list[Candidate]) -> list[dict[str, Any]]:
    """What a checkpoint keeps of the children still training: enough to make them again."""
    return [
        {
            "id": c.id,
            "genome": dumps(c.individual.genome, compact=True),
            "parents": list(c.individual.parents),
            "operators": list(c.individual.operators),
            "generation": c.individual.generation,
            "failure": None,  # a child still training was made without one
        }
        for c in candidates
    ]


def carried(engine: EngineRole, rows: list[dict[str, Any]]) -> list[Candidate]:
    """The children a checkpoint names as still training, made again from their genomes."""
    found = []
    for row in rows:
        genome, parents = loads(row["genome"]), list(row["parents"])
        ind = engine.individual(genome, row["id"], parents, row["generation"])
        ind.operators = list(row["operators"])
        found.append(Candidate(ind))
    return found


class Steady:
    """One asynchronous generation of the engine."""

    def __init__(self, engine: EngineRole, loop: Any, reporter: Reporter) -> None:
        self.engine, self.loop, self.reporter = engine, loop, reporter
        self.in_flight: dict[str, Candidate] = {}
        #: Children waiting for trainings under way: an identical one (its result to reuse),
        #: or those whose epochs decide how many ``max_epochs`` leaves.
        self.deferred: list[Candidate] = []
        self.count = 0  # children accepted in this generation
        self.parents: list[ops.Individual] = []  # those of them that may be parents
        self.made = 0
        self.proposals: list[Candidate] = []

    def run(self, gen: int, carried_over: list[Candidate]) -> tuple[list, list[Candidate]]:
        """Generation ``gen``: make, train and accept children until ``children`` of them
        are accepted; in the last generation, or once a limit is reached, until none is
        under way. Returns the individuals accepted that may be parents, and the children
        still training or waiting to (carried into the next generation)."""
        e, s = self.engine, self.engine.state
        wanted = s.plan.children
        last = gen >= e.experiment.generations
        self.loop.current = {c.id for c in carried_over}
        self.loop.schedule, self.loop.rung = None, 0
        for candidate in carried_over:
            if candidate.phase == Phase.RUNNING:  # still training since the last generation
                self.in_flight[candidate.id] = candidate
            elif candidate.phase == Phase.QUEUED:  # waiting for a training then under way
                self._go_on(candidate)
            else:  # named by the checkpoint a resumed run starts from
                self._decide(candidate)
        # The strategies' proposals (gene duplication) are the generation's first children.
        self.proposals = proposed(e, gen, e.sync_context(gen), wanted)
        self.made = len(self.proposals)
        while True:
            if self.count >= wanted and not (last or s.stopped_by):
                return self.parents, self._flying()
            self._retry_deferred()
            while self._room() and self.count + (self._waiting() if last else 0) < wanted:
                flying = self._flying()
                verdict = budget_reached(self.loop, flying, len(flying), 0)
                if verdict == WAIT or e.stop(verdict):
                    break
                self._decide(self._child(gen))
            if not self.in_flight:
                if not self.deferred:
                    return self.parents, []
                continue  # nothing under way: the deferred go on now
            outcome = e.executor.next()
            candidate = self.in_flight.pop(outcome.task.individual)
            self.loop.arrived(candidate, outcome)
            self._accept(candidate)

    def _room(self) -> bool:
        return not self.engine.state.stopped_by and (
            len(self.in_flight) + len(self.deferred) < self.engine.executor.capacity
        )

    def _waiting(self) -> int:
        return len(self.in_flight) + len(self.deferred)

    def _flying(self) -> list[Candidate]:
        return [*self.in_flight.values(), *self.deferred]

    def _child(self, gen: int) -> Candidate:
        """The next child: a proposal of the strategies while there is one, else a child of
        the population as it is now, crossed with a mate at ``crossover_rate``, then
        mutated (``runner.evolution.variation``)."""
        if self.proposals:
            return self.proposals.pop(0)
        e = self.engine
        context, population = e.sync_context(gen), e.state.population
        if crossing(e.rng, e.experiment.crossover_rate, 1)[0]:
            parent, mate = e.search.select_mates(population, 1, context)[0]
        else:
            parent, mate = e.search.select_parents(population, 1, context)[0], None
        child = e.individual(parent.genome, f"g{gen}_{self.made}", [parent.id], gen)
        self.made += 1
        mutations = e.state.plan.mutations
        failure = vary(child, mate, e.rng, e.mutation_config, e.experiment, mutations)
        return Candidate(child, failure=failure)

    def _decide(self, candidate: Candidate) -> None:
        """The checks before training (``runner.evolution.checks``) for one child: what is
        known is accepted at once; the rest is trained, or waits for trainings under way."""
        self.loop.current.add(candidate.id)
        self.reporter.evaluating(self.engine.snapshot(), candidate.individual)
        flying = [*self._flying(), candidate]
        for check in (replayed, refused, queued):
            if check(self.loop, flying, len(flying) - 1, 0) == KNOWN:
                self._accept(candidate)
                return
        self._go_on(candidate)

    def _go_on(self, candidate: Candidate) -> None:
        flying = [*self._flying(), candidate]
        j = len(flying) - 1
        verdict = reused(self.loop, flying, j, 0)
        if verdict == KNOWN:
            self._accept(candidate)
        elif verdict == WAIT or max_epochs(self.loop, flying, j, 0) == WAIT:
            self.deferred.append(candidate)
        else:
            candidate.advance(Phase.RUNNING)
            self.in_flight[candidate.id] = candidate
            judge = judge_for(self.loop, candidate, len(self.in_flight) > 1)
            self.engine.executor.submit(candidate.task, judge)

    def _retry_deferred(self) -> None:
        waiting, self.deferred = self.deferred, []
        for candidate in waiting:
            self._go_on(candidate)

    def _accept(self, candidate: Candidate) -> None:
        """Accept ``candidate`` (the engine's ``tell``); a child that may be a parent joins
        the population, and the oldest dies. A training the time budget or ``max_epochs``
        cut short, and a child refused for a limit, may not."""
        self.loop.accept(candidate, self.reporter)
        self.count += 1
        if cut_by_budget(candidate.evaluation) or refused_by_limits(candidate.evaluation):
            return
        s = self.engine.state
        s.population.append(candidate.individual)
        self.parents.append(candidate.individual)
        while len(s.population) > s.plan.population:
            s.population.remove(min(s.population, key=birth))
