"""How each candidate of a generation gets its evaluation, in candidate order: from the store
(a generation replayed after a stop), from its failed mutation, from the run's limits (refused
before training: ``runner.evolution.costs``), from an earlier training of the same genome
trained the same way (de-duplication), or from the executor; and what follows each one:
counting it, keeping its weights, storing it with its events, and the best so far. With a rung
schedule (the ``rungs`` strategy: ``runner.evolution.rungs``) a generation is evaluated rung by
rung: every candidate to the first rung, then, once a rung is complete, its best share on to
the next, each promotion decided, trained, stored and accepted as a candidate is."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import attrs

import operators as ops
import strategies as st
from genomics import canonical_hash, dumps

from .. import faults
from .. import rng as rngs
from ..execution.base import Judge, Outcome
from ..judge import JudgeSnapshot, time_stop
from ..records import Evaluation, Status, Task, evaluation_key
from . import rungs as rs
from .costs import refused_by_limits

if TYPE_CHECKING:
    from .engine import Engine, Reporter


WAIT, STOP, TRAIN, KNOWN = "wait", "stop", "train", "known"


@attrs.define
class Slot:
    """One candidate of the generation being evaluated: its task once it has one, and its
    evaluation once known (before it is accepted, in candidate order)."""

    ind: ops.Individual
    task: Task | None = None
    evaluation: Evaluation | None = None
    reused: bool = False
    stored: bool = False
    in_flight: bool = False
    #: A promotion: the candidate's evaluation at the rung it goes on from.
    previous: Evaluation | None = None


class Candidates:
    """The engine's evaluation of candidates, with the de-duplication cache (reuse key ->
    the individual first evaluated with it and its evaluation).

    Candidates are decided in order (a budget reached, a result to reuse, a task to train) as
    far as the executor has room and as the candidates before them allow an exact decision;
    each result is stored the moment it arrives; and results are accepted in candidate order
    (counted, the best so far, the failure limit). So any number of workers decides what one
    worker, training one candidate after another, decides.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cache: dict[tuple, tuple[str, Evaluation]] = engine.store.reusable()
        #: Events of a candidate's decisions, stored with its evaluation.
        self.events: dict[str, list[dict[str, Any]]] = {}
        #: The candidate a strategy is deciding about (its events go to ``events``).
        self.deciding_for: str | None = None
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

    def evaluate(self, individuals: list[ops.Individual], reporter: Reporter) -> list:
        """Evaluate ``individuals`` until a limit is reached; returns those evaluated, in
        order. The rest of the generation is dropped (its evaluated part is kept); the first
        population always gets one evaluation, so that every run has a best (with rungs, a
        run whose limit comes before any candidate reached the last rung has none).

        With a rung schedule, the candidates evaluated are trained to the first rung, then the
        promotions of each rung in turn (:meth:`_promotions`), until the last rung or a limit;
        each individual ends with the evaluation of the highest rung it finished."""
        e = self.engine
        e.sync_context(e.generation)  # as the evaluations begin, for every one of them
        slots = [Slot(ind) for ind in individuals]
        self.current = {ind.id for ind in individuals}
        self.schedule, self.rung, self.promoted = rs.Schedule.of(e.plan), 0, 0
        # Latency measured with no training under way: the same load for any worker count.
        e.costs.measure_ahead(
            (ind.genome, canonical_hash(ind.genome))
            for ind in individuals
            if getattr(ind, "mutation_failure", None) is None
        )
        # A training the time budget cut short is kept in the store, but takes no part in the
        # generation's decisions: its accuracy is that of an unfinished training. A candidate
        # refused for a limit was never trained: never a parent.
        done = [
            slot.ind
            for slot in self._evaluate(slots, reporter)
            if not cut_by_budget(slot.evaluation) and not refused_by_limits(slot.evaluation)
        ]
        if self.schedule is not None:
            for rung in range(1, self.schedule.last + 1):
                slots = self._promotions(slots, rung)
                if not slots:
                    break
                self.rung = rung
                slots = self._evaluate(slots, reporter)
        return done

    def _promotions(self, slots: list[Slot], rung: int) -> list[Slot]:
        """The promotions to ``rung`` from ``slots`` (the candidates of the rung before, all
        of them in): the ``promote`` share of those that trained to it and finished it, the
        most accurate (ties in candidate order), in candidate order; none once a limit is
        reached. Decided here, after the rung is complete, so any worker count promotes the
        same candidates."""
        e = self.engine
        e.stopped_by = e.stopped_by or e.budget.exhausted()  # every candidate is accepted
        if e.stopped_by:
            return []
        finished = [s for s in slots if not s.reused and rs.finished(s.evaluation, rung - 1)]
        count = st.promoted_count(len(finished), self.schedule.promote)
        ranked = sorted(finished, key=lambda s: s.evaluation.val_accuracy, reverse=True)
        chosen = {id(s) for s in ranked[:count]}
        promoted = [Slot(s.ind, previous=s.evaluation) for s in finished if id(s) in chosen]
        e._record(
            "promoted",
            "engine",
            None,
            {
                "rung": rung,
                "epochs": self.schedule.epochs[rung],
                "finished": [s.ind.id for s in finished],
                "promoted": [s.ind.id for s in promoted],
                "val_accuracy": [s.previous.val_accuracy for s in promoted],
            },
        )
        return promoted

    def _evaluate(self, slots: list[Slot], reporter: Reporter) -> list[Slot]:
        """Decide, train and accept ``slots`` in candidate order until a limit is reached;
        returns the slots accepted, in order."""
        e = self.engine
        in_flight: dict[str, Slot] = {}
        done: list[Slot] = []
        decided = accepted = 0
        stopping = False

        def accept_ready() -> None:
            nonlocal accepted
            while accepted < decided and slots[accepted].evaluation is not None:
                slot = slots[accepted]
                self._accept(slot, reporter)
                done.append(slot)
                accepted += 1

        while True:
            accept_ready()
            while not stopping and decided < len(slots) and len(in_flight) < e.executor.capacity:
                verdict = self._decide(slots, decided, accepted, reporter)
                if verdict == WAIT:
                    break
                if verdict == STOP:
                    stopping = True
                    break
                slot = slots[decided]
                if verdict == TRAIN:
                    slot.in_flight = True
                    in_flight[slot.ind.id] = slot
                    e.executor.submit(slot.task, self._judge(slot, len(in_flight) > 1))
                decided += 1
                accept_ready()
            if not in_flight:
                if stopping or decided == len(slots):
                    return done
                continue
            outcome = e.executor.next()
            self._arrived(in_flight.pop(outcome.task.individual), outcome)

    def _decide(self, slots: list[Slot], j: int, accepted: int, reporter: Reporter) -> str:
        """What to do with candidate ``j``: ``stop`` (a limit is reached), ``wait`` (that
        depends on results not in yet), ``known`` (its evaluation is known without
        training), or ``train`` (``slot.task`` is set)."""
        e = self.engine
        slot = slots[j]
        limit = self._limit(slots, j, accepted)
        if limit == WAIT:
            return WAIT
        e.stopped_by = e.stopped_by or limit
        if e.stopped_by and (j > 0 or e.generation > 0 or self.rung > 0):
            return STOP
        ind = slot.ind
        if slot.task is None:  # the first look at it (a wait may bring us back)
            reporter.evaluating(e, ind)
            genome_hash = canonical_hash(ind.genome)
            if self._stored(slot, genome_hash):
                return KNOWN
            if slot.previous is not None:  # a promotion: its genome trained, from its weights
                slot.task = self._task(ind, genome_hash)
                return self._within_max_epochs(slots, j, accepted)
            failure = getattr(ind, "mutation_failure", None)
            if failure is None:
                failure = e.costs.refusal(ind.genome, genome_hash)
            if failure is not None:
                self._store(slot, self.with_fitness(failure))
                return KNOWN
            slot.task = self._task(ind, genome_hash)
        # An identical training under way may give a result to reuse; a rung below the last
        # never does (a candidate stopped at a rung is not reused).
        reusable_rung = self.schedule is None or self.schedule.last == 0
        if reusable_rung and any(s.in_flight and s.task.key == slot.task.key for s in slots[:j]):
            return WAIT
        hit = self.cache.get(slot.task.key)
        if hit is None:
            return self._within_max_epochs(slots, j, accepted)
        source, evaluation = hit
        why = {
            "source": source,
            "reason": "same genome, planned epochs, teacher and starting weights",
            "planned_epochs": slot.task.key[1],
            "teacher": slot.task.teacher,
            "inherited_from": slot.task.inherit_from,
        }
        if self.schedule is not None:  # the result of the whole schedule: no rungs to train
            why["rungs"] = list(self.schedule.epochs)
        self.events.setdefault(ind.id, []).append(e.event("reused", "engine", ind.id, why))
        # Its children inherit what its result was trained into. Copied only from where every
        # worker count and a resumed run find the file alike: the population, this generation,
        # the best as the generation began (not from the last ``keep_weights`` to arrive).
        if e.experiment.inherit and source in self._kept_alike():
            e.files.copy_weights(source, ind.id)
        slot.reused = True
        self._store(slot, evaluation)
        return KNOWN

    def _limit(self, slots: list[Slot], j: int, accepted: int) -> str:
        """The budget reached before candidate ``j`` (``""``: none), as a run that evaluates
        one candidate after another would find it; ``wait`` when that depends on trainings
        still under way (each may add one evaluation and its planned epochs)."""
        budget = self.engine.budget
        if budget.time_up():
            return "time budget"
        evaluations, epochs, more_evaluations, more_epochs = self._spent(slots, j, accepted)
        reached = budget.exhausted(evaluations, epochs)
        if reached or not budget.exhausted(evaluations + more_evaluations, epochs + more_epochs):
            return reached
        return WAIT

    def _spent(self, slots: list[Slot], j: int, accepted: int) -> tuple[int, int, int, int]:
        """Evaluations and epochs certainly spent before candidate ``j``, and the most the
        trainings under way may add to them."""
        budget = self.engine.budget
        evaluations, epochs = budget.evaluations, budget.epochs
        more_evaluations = more_epochs = 0
        for slot in slots[accepted:j]:
            if slot.evaluation is None:
                planned = slot.task.stop_after or slot.task.epochs
                more_evaluations, more_epochs = more_evaluations + 1, more_epochs + planned
            elif not slot.reused and not refused_by_limits(slot.evaluation):
                evaluations, epochs = evaluations + 1, epochs + slot.evaluation.trained_epochs
        return evaluations, epochs, more_evaluations, more_epochs

    def _within_max_epochs(self, slots: list[Slot], j: int, accepted: int) -> str:
        """``train`` candidate ``j`` (stopping after the epochs ``max_epochs`` leaves, when its
        plan would pass it), or ``wait`` while that depends on trainings under way. A run with
        no best yet trains in full, as the time budget never cuts its training: every run gets
        a best. With rungs only the run's first training is spared: a best comes only from
        the last rung, after many."""
        e, slot = self.engine, slots[j]
        limit = e.experiment.max_epochs
        evaluations, epochs, _, more_epochs = self._spent(slots, j, accepted)
        if not limit or epochs + more_epochs + slot.task.epochs <= limit:
            return TRAIN
        if more_epochs:
            return WAIT  # the epochs left depend on where those under way stop
        # Every candidate before this one is accepted by now.
        if e.best is not None or (self.schedule is not None and evaluations):
            slot.task = attrs.evolve(slot.task, stop_after=limit - epochs)
        return TRAIN

    def _stored(self, slot: Slot, genome_hash: str) -> bool:
        """Take ``slot``'s evaluation from the store when a run stopped before has it (with
        rungs: its evaluation at the rung being evaluated)."""
        store = self.engine.store
        known = store.individual(slot.ind.id)
        if known is None or known["genome_hash"] != genome_hash or not known["evaluation"]:
            return False
        if self.schedule is None or known["reused"]:
            stored = store.evaluation(known["evaluation"])
        else:
            stored = store.rung_evaluation(slot.ind.id, self.rung)
            if stored is None:
                return False
        # A training the time budget cut short is done again when its generation is (a resumed
        # run whose budget was raised replays it).
        if cut_by_budget(stored):
            return False
        slot.evaluation, slot.reused, slot.stored = stored, bool(known["reused"]), True
        return True

    def _task(self, ind: ops.Individual, genome_hash: str) -> Task:
        """``ind``'s training: the plan's epochs (an inheriting child's share of them), or with
        rungs, those to the rung being evaluated, a promotion from its own rung weights."""
        e = self.engine
        context = e.context
        self.deciding_for = ind.id
        try:
            advice = e.search.training(ind, context)
        finally:
            self.deciding_for = None
        seed = rngs.seed_for(e.experiment.seed, ind.id)
        epochs, schedule, rung = e.plan.epochs, self.schedule, self.rung
        if schedule is not None and rung > 0:
            parent = rs.snapshot(ind.id, rung - 1)
            epochs = schedule.epochs[rung] - schedule.epochs[rung - 1]
            seed = rngs.seed_for(e.experiment.seed, f"{ind.id}@{rung}")
        else:
            parent = self._weights_parent(ind)
        if schedule is not None and rung == 0:
            epochs = schedule.epochs[0]  # an inheriting child's too: the rungs decide
        elif parent is not None and schedule is None:
            # A quarter by default: bench/inheritance_search.py measured a quarter better than
            # half (docs/benchmarks.md).
            wanted = e.experiment.inherit_epochs or math.ceil(epochs / 4)
            epochs = max(1, min(wanted, epochs))
        rung_fields = {}
        if schedule is not None:
            rung_fields = {
                "data_fraction": schedule.fractions[rung],
                "data_seed": rngs.seed_for(e.experiment.seed, "rungs"),
                "schedule": schedule.key,
                "rung": rung,
            }
        task = Task(
            ind.id,
            ind.genome,
            genome_hash,
            ind.generation,
            seed,
            epochs,
            parents=ind.parents,
            operators=ind.operators,
            phase=ind.phase,
            inherit_from=parent,
            copies=tuple(sorted(getattr(ind, "copies", {}).items())) if parent and not rung else (),
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

    def _kept_alike(self) -> set[str]:
        """Individuals whose weights are kept however the generation's trainings interleave."""
        e = self.engine
        best = e.context.best
        return {p.id for p in e.population} | self.current | ({best.id} if best else set())

    def _weights_parent(self, ind: ops.Individual) -> str | None:
        """The individual whose weights ``ind`` inherits (``inherit``): its first parent,
        unless that one failed (a failed training or mutation leaves no weights) or has no
        weight file. Decided from the stored evaluations and the population's files, which
        every worker count and a resumed run find alike; a parent whose result was reused has
        the weights of the training it reused, when they were still kept."""
        e = self.engine
        if not e.experiment.inherit or not ind.parents:
            return None
        first = ind.parents[0]
        # A proposal may come from the best so far, whose weights are kept, population or not.
        known = [*e.population, e.context.best]
        parent = next((p for p in known if p is not None and p.id == first), None)
        if parent is None:
            return None
        evaluation = getattr(parent, "evaluation", None)
        if evaluation is None or evaluation.status == Status.FAILED:
            return None
        # Without a file (a reused parent whose source's weights were not kept, a file lost)
        # the child trains from scratch: for the full epochs, not an inheriting child's few.
        if not e.files.weights_of(first).is_file():
            why = {"parent": first, "reason": "no weights kept for it"}
            self.events.setdefault(ind.id, []).append(
                e.event("not_inherited", "engine", ind.id, why)
            )
            return None
        return first

    def _judge(self, slot: Slot, others: bool) -> Judge:
        """The per-epoch judge of ``slot``'s training: the strategies' decision (extinction),
        then the time budget's: never after the last epoch, nor while the run has no best and
        no other training is under way (``others``) that may give it one, so that one
        training at a time is spared, as with one worker. ``local`` judges in this process
        with the live strategies, ``snapshot`` elsewhere."""
        e = self.engine
        ind = slot.ind
        # With rungs only the run's first training is spared (a best comes only from the last
        # rung): the same one for any worker count, the first accepted or the first sent.
        spared = self.schedule is None or not e.budget.evaluations
        cut = e.best is not None or others or not spared

        def local(task: Task, epoch: int, epochs: int, val_accuracy: float) -> st.Stop | None:
            faults.reached("epoch")
            self.deciding_for = task.individual
            try:
                stop = e.search.on_epoch(ind, epoch, epochs, val_accuracy, e.context)
            finally:
                self.deciding_for = None
            if stop is None and epoch < epochs and cut and e.budget.time_up():
                e.stopped_by = "time budget"
                stop = time_stop(epoch)
            return stop

        remaining = e.budget.remaining()
        snapshot = JudgeSnapshot(
            strategy=e.experiment.strategy,
            options=e.experiment.strategies,
            seed=e.experiment.seed + 1,
            state=e.search.save_state(),
            context={
                f.name: getattr(e.context, f.name)
                for f in attrs.fields(st.Context)
                if f.name not in ("recorder", "known")
            },
            deadline=None if remaining is None else time.time() + remaining,
            cut=cut,
        )
        return Judge(snapshot, local)

    def _arrived(self, slot: Slot, outcome: Outcome) -> None:
        """A training finished: keep its weights (when it may be needed: the best so far,
        ``keep_weights``) and store it at once, so a stop loses only trainings under way."""
        e = self.engine
        slot.in_flight = False
        evaluation = e.costs.annotate(outcome.evaluation, slot.task.genome_hash)
        if self.schedule is not None:
            evaluation = rs.at_rung(evaluation, slot.task, slot.previous, self.schedule)
        evaluation = self.with_fitness(evaluation)
        if outcome.events:
            self.events.setdefault(slot.ind.id, []).extend(outcome.events)
        if evaluation.metrics.get("stopped_by") == "time budget":
            e.stopped_by = e.stopped_by or "time budget"
        # With inheritance every trained network may become a parent: kept until it leaves
        # the population (``Engine.kept_weights``). A promotion that did not get to its rung
        # leaves its candidate with the rung before, and that rung's weights.
        kept = slot.previous is None or not rs.unfinished(evaluation)
        wanted = kept and (
            e.experiment.keep_weights
            or e.experiment.inherit
            or (evaluation.ok and e.better(slot.ind, evaluation))
        )
        names = [slot.ind.id] if wanted else []
        if rs.finished(evaluation, self.rung):  # a promotion would start from these
            names.append(rs.snapshot(slot.ind.id, self.rung))
        for name in names:
            if outcome.model is not None:
                e.files.save_weights(name, slot.ind.genome, outcome.model)
            elif outcome.model_bytes is not None:
                e.files.write_weights(name, outcome.model_bytes)
        self._store(slot, evaluation)
        if reusable(slot.evaluation):
            key = evaluation_key(slot.task.genome_hash, slot.evaluation)  # as the store keys it
            self.cache.setdefault(key, (slot.ind.id, slot.evaluation))

    def _store(self, slot: Slot, evaluation: Evaluation) -> None:
        """Store ``slot``'s individual, its evaluation and events in one transaction."""
        e, ind = self.engine, slot.ind
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
        current = None
        if slot.previous is not None and rs.unfinished(evaluation):
            current = slot.previous.id  # the candidate stays at the rung before
        slot.evaluation = e.store.record(
            row, evaluation, slot.reused, events, current=current, seconds=e.seconds
        )
        self.unaccepted.add(ind.id)

    def _accept(self, slot: Slot, reporter: Reporter) -> None:
        """Take ``slot``'s evaluation as its individual's, in candidate order: count it, and
        make it the best so far when it is."""
        e, ind, evaluation = self.engine, slot.ind, slot.evaluation
        if not slot.reused:
            e.budget.count(ind.id, evaluation)
        if slot.previous is not None:
            self.promoted += 1
            if rs.unfinished(evaluation):
                evaluation = slot.previous  # counted, but the candidate stays at its rung
        e.attach(ind, evaluation, slot.reused)
        self.unaccepted.discard(ind.id)
        if not slot.reused and evaluation.ok and e.better(ind):
            e.best = ind
            e.files.promote(ind.id, ind.genome)
        e.files.prune(e.kept_weights(closing=False))
        faults.reached("evaluation")
        reporter.evaluated(e, ind, slot.evaluation)
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


def cut_by_budget(evaluation: Evaluation) -> bool:
    """Whether the run's time budget or ``max_epochs`` ended this training before its last
    epoch."""
    return evaluation.metrics.get("stopped_by") in ("time budget", "epochs")


def reusable(evaluation: Evaluation) -> bool:
    """Whether a later candidate with the same reuse key may take this result: a finished
    training, or a failure bound to repeat (as ``Store.reusable`` decides for stored ones)."""
    if evaluation.metrics.get("stage") == "mutation":
        return False
    return evaluation.ok or (evaluation.status == Status.FAILED and not evaluation.transient)
