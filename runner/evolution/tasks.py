"""A candidate's training as the executor gets it: its :class:`~runner.records.Task` (epochs,
seed, the weights it starts from, its teacher, its rung) and the per-epoch judge of the
generation (:class:`~runner.execution.Judge`)."""

from __future__ import annotations

import math
import time

import attrs

import operators as ops
import strategies as st
from genomics import canonical_hash

from .. import faults
from .. import rng as rngs
from ..execution import Judge
from ..judge import JudgeSnapshot, time_stop
from ..records import MAX_EPOCHS, TIME_BUDGET, Evaluation, Status, Task
from . import rungs as rs
from .candidate import Candidate
from .roles import LoopRole


def task_for(loop: LoopRole, candidate: Candidate) -> Task:
    """``candidate``'s training: the plan's epochs (an inheriting child's share of them), or
    with rungs, those to the rung being evaluated, a promotion from its own rung weights."""
    engine, ind = loop.engine, candidate.individual
    context = engine.context
    with engine.events.deciding(ind.id):
        advice = engine.search.training(ind, context)
    seed = rngs.seed_for(engine.experiment.seed, ind.id)
    epochs, schedule, rung = engine.state.plan.epochs, loop.schedule, loop.rung
    if schedule is not None and rung > 0:
        parent = rs.snapshot(ind.id, rung - 1)
        epochs = schedule.epochs[rung] - schedule.epochs[rung - 1]
        seed = rngs.seed_for(engine.experiment.seed, f"{ind.id}@{rung}")
    else:
        parent = weights_parent(loop, ind)
    if schedule is not None and rung == 0:
        epochs = schedule.epochs[0]  # an inheriting child's too: the rungs decide
    elif parent is not None and schedule is None:
        # A quarter by default: bench/inheritance_search.py measured a quarter better than
        # half (docs/benchmarks.md).
        wanted = engine.experiment.inherit_epochs or math.ceil(epochs / 4)
        epochs = max(1, min(wanted, epochs))
    rung_fields = {}
    if schedule is not None:
        rung_fields = {
            "data_fraction": schedule.fractions[rung],
            "data_seed": rngs.seed_for(engine.experiment.seed, "rungs"),
            "schedule": schedule.key,
            "rung": rung,
        }
    task = Task(
        ind.id,
        ind.genome,
        canonical_hash(ind.genome),
        ind.generation,
        seed,
        epochs,
        parents=ind.parents,
        operators=ind.operators,
        phase=ind.phase,
        inherit_from=parent,
        copies=tuple(sorted(candidate.copies.items())) if parent and not rung else (),
        # In the reuse key: a user evaluation's result never stands for a training's.
        evaluation=engine.experiment.evaluation,
        **rung_fields,
    )
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


def weights_parent(loop: LoopRole, ind: ops.Individual) -> str | None:
    """The individual whose weights ``ind`` inherits (``inherit``): its first parent, unless
    that one failed (a failed training or mutation leaves no weights) or has no weight file.
    Decided from the stored evaluations and the population's files, which every worker count
    and a resumed run find alike; a parent whose result was reused has the weights of the
    training it reused, when they were still kept."""
    engine = loop.engine
    if not engine.experiment.inherit or not ind.parents:
        return None
    first = ind.parents[0]
    # A proposal may come from the best so far, whose weights are kept, population or not.
    known = [*engine.state.population, engine.context.best]
    parent = next((p for p in known if p is not None and p.id == first), None)
    if parent is None:
        return None
    evaluation = getattr(parent, "evaluation", None)
    if evaluation is None or evaluation.status == Status.FAILED:
        return None
    # Without a file (a reused parent whose source's weights were not kept, a file lost) the
    # child trains from scratch: for the full epochs, not an inheriting child's few.
    if not engine.files.weights_of(first).is_file():
        why = {"parent": first, "reason": "no weights kept for it"}
        engine.events.of(ind.id, "not_inherited", "engine", why)
        return None
    return first


def judge_for(loop: LoopRole, candidate: Candidate, others: bool) -> Judge:
    """The per-epoch judge of ``candidate``'s training: the strategies' decision
    (extinction), then the time budget's: never after the last epoch, nor while the run has
    no best and no other training is under way (``others``) that may give it one, so that one
    training at a time is spared, as with one worker. ``local`` judges in this process with
    the live strategies, ``snapshot`` elsewhere."""
    engine = loop.engine
    ind = candidate.individual
    # With rungs only the run's first training is spared (a best comes only from the last
    # rung): the same one for any worker count, the first accepted or the first sent.
    spared = loop.schedule is None or not engine.state.budget.evaluations
    cut = engine.state.best is not None or others or not spared

    def local(task: Task, epoch: int, epochs: int, val_accuracy: float) -> st.Stop | None:
        faults.reached("epoch")
        with engine.events.deciding(task.individual):
            stop = engine.search.on_epoch(ind, epoch, epochs, val_accuracy, engine.context)
        if stop is None and epoch < epochs and cut and engine.state.budget.time_up():
            engine.stop(TIME_BUDGET)
            stop = time_stop(epoch)
        return stop

    remaining = engine.state.budget.remaining()
    snapshot = JudgeSnapshot(
        strategy=engine.experiment.strategy,
        options=engine.experiment.strategies,
        seed=engine.experiment.seed + 1,
        state=engine.search.save_state(),
        context={
            f.name: getattr(engine.context, f.name)
            for f in attrs.fields(st.Context)
            if f.name not in ("recorder", "known")
        },
        deadline=None if remaining is None else time.time() + remaining,
        cut=cut,
    )
    return Judge(snapshot, local)


def cut_by_budget(evaluation: Evaluation) -> bool:
    """Whether the run's time budget or ``max_epochs`` ended this training before its last
    epoch."""
    return evaluation.metrics.get("stopped_by") in (TIME_BUDGET, MAX_EPOCHS)


def reusable(evaluation: Evaluation) -> bool:
    """Whether a later candidate with the same reuse key may take this result: a finished
    training, or a failure bound to repeat (as ``Store.reusable`` decides for stored ones)."""
    if evaluation.metrics.get("stage") == "mutation":
        return False
    return evaluation.ok or (evaluation.status == Status.FAILED and not evaluation.transient)
