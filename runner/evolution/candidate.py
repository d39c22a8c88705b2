"""One candidate of the generation being evaluated (:class:`Candidate`): its individual, where
it is on its way (:class:`Phase`), its task once it has one and its evaluation once known.

A candidate goes ``new`` -> ``refused`` (its mutation failed, or a limit refuses it before
training), ``reused`` (an earlier training of the same genome, trained the same way, gives its
result), ``replayed`` (a run stopped before stored it) or ``queued`` (its task made) ->
``running`` (handed to the executor) -> ``arrived`` (trained and stored); every one then
``accepted``, in candidate order: counted, and the best so far when it is.
"""

from __future__ import annotations

import enum

import attrs

import operators as ops

from ..records import Evaluation, Task


class Phase(str, enum.Enum):
    NEW = "new"
    REFUSED = "refused"
    REUSED = "reused"
    REPLAYED = "replayed"
    QUEUED = "queued"
    RUNNING = "running"
    ARRIVED = "arrived"
    ACCEPTED = "accepted"


#: The phases each phase may go on to.
NEXT: dict[Phase, frozenset[Phase]] = {
    Phase.NEW: frozenset({Phase.REFUSED, Phase.REUSED, Phase.REPLAYED, Phase.QUEUED}),
    # A candidate waiting for an identical training under way may take its result.
    Phase.QUEUED: frozenset({Phase.RUNNING, Phase.REUSED}),
    Phase.RUNNING: frozenset({Phase.ARRIVED}),
    Phase.REFUSED: frozenset({Phase.ACCEPTED}),
    Phase.REUSED: frozenset({Phase.ACCEPTED}),
    Phase.REPLAYED: frozenset({Phase.ACCEPTED}),
    Phase.ARRIVED: frozenset({Phase.ACCEPTED}),
    Phase.ACCEPTED: frozenset(),
}

#: Phases whose evaluation is known (stored), waiting to be accepted in candidate order.
KNOWN = frozenset({Phase.REFUSED, Phase.REUSED, Phase.REPLAYED, Phase.ARRIVED})


@attrs.define
class Candidate:
    """One candidate: ``individual`` (what the strategies see, with its ``evaluation`` once
    accepted), ``phase``, ``task``, ``evaluation`` (stored, not yet accepted), ``reused``
    (its result is another's: reused now, or when the replayed run stored it)."""

    individual: ops.Individual
    phase: Phase = Phase.NEW
    task: Task | None = None
    evaluation: Evaluation | None = None
    reused: bool = False
    #: The failed evaluation of a child whose crossover or mutation raised: never trained.
    failure: Evaluation | None = None
    #: Layers a proposal copied (gene duplication): their weights start as the originals'.
    copies: dict[str, str] = attrs.Factory(dict)
    #: A promotion (rungs): the candidate's evaluation at the rung it goes on from.
    previous: Evaluation | None = None

    @property
    def id(self) -> str:
        return self.individual.id

    @property
    def in_flight(self) -> bool:
        return self.phase == Phase.RUNNING

    def advance(self, phase: Phase) -> None:
        """Go on to ``phase``; a step out of order is a bug in the loop, not a user's error."""
        if phase not in NEXT[self.phase]:
            raise AssertionError(f"{self.id}: {self.phase.value} -> {phase.value}")
        self.phase = phase

    def promotion(self) -> Candidate:
        """The same individual on to the next rung, from this evaluation."""
        return Candidate(self.individual, previous=self.evaluation)


def attach(ind: ops.Individual, evaluation: Evaluation, reused: bool) -> None:
    """Give ``ind`` its accepted evaluation: what strategies read (``ind.evaluation``,
    ``ind.reused``, ``ind.fitness``)."""
    ind.fitness.values = tuple(evaluation.fitness)
    ind.evaluation = evaluation
    ind.reused = reused


def of(individuals: list[ops.Individual]) -> list[Candidate]:
    """Candidates of individuals with no proposal or mutation behind them (the first
    population)."""
    return [Candidate(ind) for ind in individuals]
