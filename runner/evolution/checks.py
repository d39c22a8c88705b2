"""What to do with a candidate before any training: the ordered checks of the evaluation loop.

The run's budget comes first (a limit reached stops the generation). Then, on a candidate's
first look, in order: ``replayed`` (a run stopped before stored its evaluation), ``promoted``
(with rungs: its genome already trained, it goes on from its rung's weights), ``refused`` (its
mutation failed, or a limit refuses its genome: ``runner.evolution.costs``), then its task is
made. On every look: ``reused`` (an earlier training of the same genome, trained the same way,
gives its result; one under way makes it wait), then ``max_epochs`` (its training cut to the
epochs the limit leaves). Each check returns a verdict, or None to pass the candidate on.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from genomics import canonical_hash

from ..records import TIME_BUDGET
from .candidate import Candidate, Phase
from .costs import refused_by_limits
from .roles import LoopRole
from .state import Reporter
from .tasks import cut_by_budget, task_for

WAIT, STOP, TRAIN, KNOWN = "wait", "stop", "train", "known"

#: ``check(loop, candidates, j, accepted) -> verdict | None``
Check = Callable[[LoopRole, list[Candidate], int, int], str | None]


def decide(
    loop: LoopRole, candidates: list[Candidate], j: int, accepted: int, reporter: Reporter
) -> str:
    """What to do with candidate ``j``: ``stop`` (a limit is reached), ``wait`` (that depends
    on results not in yet), ``known`` (its evaluation is known without training), or
    ``train`` (its task is made)."""
    engine, candidate = loop.engine, candidates[j]
    limit = budget_reached(loop, candidates, j, accepted)
    if limit == WAIT:
        return WAIT
    # The first training of a run is never refused: every run gets a best.
    if engine.stop(limit) and (j > 0 or engine.state.generation > 0 or loop.rung > 0):
        return STOP
    checks = EVERY_LOOK
    if candidate.phase == Phase.NEW:  # the first look at it (a wait may bring us back)
        reporter.evaluating(engine.snapshot(), candidate.individual)
        checks = FIRST_LOOK + EVERY_LOOK
    for check in checks:
        verdict = check(loop, candidates, j, accepted)
        if verdict is not None:
            return verdict
    raise AssertionError("max_epochs decides every candidate it sees")


def replayed(loop: LoopRole, candidates: list[Candidate], j: int, accepted: int) -> str | None:
    """Its evaluation from the store, when a run stopped before has it (with rungs: at the rung
    being evaluated). A training the time budget cut short is done again when its generation
    is (a resumed run whose budget was raised replays it)."""
    candidate, store = candidates[j], loop.engine.store
    known = store.individual(candidate.id)
    genome_hash = canonical_hash(candidate.individual.genome)
    if known is None or known["genome_hash"] != genome_hash or not known["evaluation"]:
        return None
    if loop.schedule is None or known["reused"]:
        stored = store.evaluation(known["evaluation"])
    else:
        stored = store.rung_evaluation(candidate.id, loop.rung)
        if stored is None:
            return None
    if cut_by_budget(stored):
        return None
    candidate.evaluation, candidate.reused = stored, bool(known["reused"])
    candidate.advance(Phase.REPLAYED)
    return KNOWN


def promoted(loop: LoopRole, candidates: list[Candidate], j: int, accepted: int) -> str | None:
    """A promotion: its genome trained to the rung before; it trains on from those weights."""
    candidate = candidates[j]
    if candidate.previous is None:
        return None
    candidate.task = task_for(loop, candidate)
    candidate.advance(Phase.QUEUED)
    return max_epochs(loop, candidates, j, accepted)


def refused(loop: LoopRole, candidates: list[Candidate], j: int, accepted: int) -> str | None:
    """A child whose mutation failed, or whose genome a limit refuses: never trained."""
    candidate, engine = candidates[j], loop.engine
    failure = candidate.failure
    if failure is None:
        failure = engine.costs.refusal(
            candidate.individual.genome, canonical_hash(candidate.individual.genome)
        )
    if failure is None:
        return None
    candidate.advance(Phase.REFUSED)
    loop.store(candidate, loop.with_fitness(failure))
    return KNOWN


def queued(loop: LoopRole, candidates: list[Candidate], j: int, accepted: int) -> str | None:
    """Its task: what it would train, which the remaining checks look at."""
    candidate = candidates[j]
    candidate.task = task_for(loop, candidate)
    candidate.advance(Phase.QUEUED)
    return None


def reused(loop: LoopRole, candidates: list[Candidate], j: int, accepted: int) -> str | None:
    """The result of an earlier training with the same reuse key (genome, planned epochs,
    teacher, starting weights); ``wait`` while an identical training is under way. A rung
    below the last never gives one (a candidate stopped at a rung is not reused)."""
    engine, candidate = loop.engine, candidates[j]
    key = candidate.task.key
    reusable_rung = loop.schedule is None or loop.schedule.last == 0
    if reusable_rung and any(c.in_flight and c.task.key == key for c in candidates[:j]):
        return WAIT
    hit = loop.cache.get(key)
    if hit is None:
        return None
    source, evaluation = hit
    why = {
        "source": source,
        "reason": "same genome, planned epochs, teacher and starting weights",
        "planned_epochs": key[1],
        "teacher": candidate.task.teacher,
        "inherited_from": candidate.task.inherit_from,
    }
    if loop.schedule is not None:  # the result of the whole schedule: no rungs to train
        why["rungs"] = list(loop.schedule.epochs)
    engine.events.of(candidate.id, "reused", "engine", why)
    # Its children inherit what its result was trained into. Copied only from where every
    # worker count and a resumed run find the file alike: the population, this generation,
    # the best as the generation began (not from the last ``keep_weights`` to arrive).
    if engine.experiment.inherit and source in loop.kept_alike():
        engine.files.copy_weights(source, candidate.id)
    candidate.reused = True
    candidate.advance(Phase.REUSED)
    loop.store(candidate, evaluation)
    return KNOWN


def max_epochs(loop: LoopRole, candidates: list[Candidate], j: int, accepted: int) -> str:
    """``train`` candidate ``j`` (stopping after the epochs ``max_epochs`` leaves, when its
    plan would pass it), or ``wait`` while that depends on trainings under way. A run with no
    best yet trains in full, as the time budget never cuts its training: every run gets a
    best. With rungs only the run's first training is spared: a best comes only from the last
    rung, after many."""
    engine, candidate = loop.engine, candidates[j]
    limit = engine.experiment.max_epochs
    evaluations, epochs, _, more_epochs = spent(loop, candidates, j, accepted)
    if not limit or epochs + more_epochs + candidate.task.epochs <= limit:
        return TRAIN
    if more_epochs:
        return WAIT  # the epochs left depend on where those under way stop
    # Every candidate before this one is accepted by now.
    if engine.state.best is not None or (loop.schedule is not None and evaluations):
        candidate.task = attrs.evolve(candidate.task, stop_after=limit - epochs)
    return TRAIN


FIRST_LOOK: tuple[Check, ...] = (replayed, promoted, refused, queued)
EVERY_LOOK: tuple[Check, ...] = (reused, max_epochs)


def budget_reached(loop: LoopRole, candidates: list[Candidate], j: int, accepted: int) -> str:
    """The budget reached before candidate ``j`` (``""``: none), as a run that evaluates one
    candidate after another would find it; ``wait`` when that depends on trainings still
    under way (each may add one evaluation and its planned epochs)."""
    budget = loop.engine.state.budget
    if budget.time_up():
        return TIME_BUDGET
    evaluations, epochs, more_evaluations, more_epochs = spent(loop, candidates, j, accepted)
    reached = budget.exhausted(evaluations, epochs)
    if reached or not budget.exhausted(evaluations + more_evaluations, epochs + more_epochs):
        return reached
    return WAIT


def spent(
    loop: LoopRole, candidates: list[Candidate], j: int, accepted: int
) -> tuple[int, int, int, int]:
    """Evaluations and epochs certainly spent before candidate ``j``, and the most the
    trainings under way may add to them."""
    budget = loop.engine.state.budget
    evaluations, epochs = budget.evaluations, budget.epochs
    more_evaluations = more_epochs = 0
    for candidate in candidates[accepted:j]:
        if candidate.evaluation is None:
            planned = candidate.task.stop_after or candidate.task.epochs
            more_evaluations, more_epochs = more_evaluations + 1, more_epochs + planned
        elif not candidate.reused and not refused_by_limits(candidate.evaluation):
            evaluations, epochs = evaluations + 1, epochs + candidate.evaluation.trained_epochs
    return evaluations, epochs, more_evaluations, more_epochs
