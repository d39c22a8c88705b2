"""The evolution loop: generations whose decisions (parents, children, survivors, training,
phases) come from the run's strategies, with candidates handed to an executor.

De-duplication, failure isolation, the limits (parameters, time, evaluations, epochs) and the
checkpoints live here, outside any one search algorithm, so every strategy gets them. Resuming
is replaying: the engine restores the last checkpoint and runs the next generation again,
deciding exactly as before; each individual the store already holds is taken from it instead of
being trained (docs/reliability.md).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from deap import tools

import operators as ops
import strategies as st
from genomics import Genome, canonical_hash, loads

from .. import config as cfg
from .. import faults
from .. import rng as rngs
from ..errors import FailureLimit, StoreError
from ..execution import make_executor
from ..execution.base import Executor
from ..files import RunFiles
from ..records import Checkpoint, Evaluation, Status
from ..store import Store
from . import costs, rungs, variation
from .budget import Budget
from .candidates import Candidates
from .population import initial_genomes
from .summary import finish

__all__ = ["Engine", "FailureLimit", "Reporter", "SilentReporter"]


class Reporter(Protocol):
    """What the engine tells its display (the CLI's is rich; tests use a silent one)."""

    def started(self, engine: Engine) -> None: ...
    def evaluating(self, engine: Engine, individual: ops.Individual) -> None: ...
    def evaluated(self, engine: Engine, individual: ops.Individual, result: Evaluation) -> None: ...
    def generation_done(self, engine: Engine, record: dict) -> None: ...
    def final_training(self, engine: Engine, genome: Genome) -> None: ...


class SilentReporter:
    def started(self, engine: Engine) -> None:
        pass

    def evaluating(self, engine: Engine, individual: ops.Individual) -> None:
        pass

    def evaluated(self, engine: Engine, individual: ops.Individual, result: Evaluation) -> None:
        pass

    def generation_done(self, engine: Engine, record: dict) -> None:
        pass

    def final_training(self, engine: Engine, genome: Genome) -> None:
        pass


def _stats() -> tools.Statistics:
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    stats.register("mean", lambda v: float(np.mean(v)))
    stats.register("min", min)
    return stats


class Engine:
    """One run: its configuration, store, data, strategies, population and counters."""

    def __init__(
        self,
        experiment: cfg.Experiment,
        run_dir: Path,
        store: Store,
        data: Any,
        executor: Executor | None = None,
    ) -> None:
        from phenotypes import TrainSpec, resolve_device

        self.experiment, self.run_dir, self.store, self.data = experiment, run_dir, store, data
        self.files = RunFiles(run_dir)
        self.mutation_config = experiment.mutation_config()
        experiment.check_weights(ops.names())
        self.rng = random.Random(experiment.seed)
        self.search = st.Search(experiment.strategy_objects(), seed=experiment.seed + 1)
        self.objectives = self.search.objectives()
        #: How the run names its best (``Engine.better``): the strategies' ranking.
        self.ranking = self.search.ranking()
        self.weights = tuple(1.0 if o == "val_accuracy" else -1.0 for o in self.objectives)
        self.population: list[ops.Individual] = []
        self.hall_of_fame: Any = (
            tools.ParetoFront(similar=ops.same_genome)
            if len(self.objectives) > 1
            else tools.HallOfFame(5, similar=ops.same_genome)
        )
        self.logbook = tools.Logbook()
        self.logbook.header = ["gen", "evals", "reused", "failed", "max", "mean", "min", "params"]
        self.generation, self.phase, self.stopped_by = -1, "", ""
        self.budget = Budget(experiment, float(store.get_meta("seconds", "0")))
        #: The best so far by ``ranking``, the first in candidate order among equals: the run's
        #: one best (reported, trained again, best/, exported) and mimicry's teacher.
        self.best: ops.Individual | None = None
        self._events: list[dict[str, Any]] = []  # stored with the generation's checkpoint
        self._known: set[str] = set()
        self.plan = self._base_plan()
        self.context = st.Context(
            seed=experiment.seed,
            generation=-1,
            phase="",
            plan=self.plan,
            generations=experiment.generations,
            mutation_config=self.mutation_config,
            recorder=self._record,
            known=lambda genome: canonical_hash(genome) in self._known,
        )
        faults.check()
        self.device = str(resolve_device(experiment.device))
        self.costs = costs.Costs(
            experiment, self.device, store, "latency_ms" in self.search.measures()
        )
        self.spec = TrainSpec(
            epochs=experiment.epochs,
            batch_size=experiment.batch_size,
            lr=experiment.lr,
            schedule=experiment.schedule,
            weight_decay=experiment.weight_decay,
            label_smoothing=experiment.label_smoothing,
            decay_norm_and_bias=experiment.decay_norm_and_bias,
            augment=experiment.augment,
            device=self.device,
        )
        self.executor = executor or make_executor(experiment, data, self.spec, self.files.weights)
        self.candidates = Candidates(self)

    # --- what the display reads ---

    @property
    def seconds(self) -> float:
        return self.budget.seconds

    def remaining(self) -> float | None:
        return self.budget.remaining()

    def evaluations(self) -> int:
        """Evaluations so far (trainings, and children whose mutation failed)."""
        return self.budget.evaluations

    @property
    def epochs_spent(self) -> int:
        return self.budget.epochs

    # --- the loop ---

    def run(self, reporter: Reporter | None = None) -> dict[str, Any]:
        """Search until a limit is reached, then train the best and write the run directory.

        The algorithm, (mu + lambda) as in DEAP's ``eaMuPlusLambda``, with every decision
        taken by the run's strategies::

            restore the last checkpoint, or
                population = evaluate(initial genomes); checkpoint
            until a limit (generations, time, evaluations, epochs, failures) is reached:
                plan = strategies.plan()                   # sizes, mutations, epochs
                offspring = strategies.propose()           # gene duplication
                offspring += mutate(strategies.select_parents(population))
                #   (or, at crossover_rate, mutate(cross(strategies.select_mates(population))))
                evaluate(offspring)          # reuse, or train; each stored as it ends
                population = strategies.select_survivors(population + offspring)
                strategies.generation_end(); phase = strategies.next_phase(); checkpoint
            train the best individual ever evaluated again; write best/ and summary.json
        """
        reporter = reporter or SilentReporter()
        self.store.set_meta(status="running")
        try:
            self._restore_or_start(reporter)
            while not self.stopped_by:
                if self.generation >= self.experiment.generations:
                    self.stopped_by = "generations"
                    break
                self._generation(reporter)
            self.store.set_meta(status="searched", stopped_by=self.stopped_by)
            summary = finish(self, reporter)
        except KeyboardInterrupt:
            self.store.set_meta(status="interrupted", seconds=self.seconds)
            raise
        except FailureLimit:
            self.store.set_meta(status="stopped", stopped_by="failures", seconds=self.seconds)
            raise
        finally:
            self.executor.close()
        self.store.set_meta(status="complete")
        return summary

    def _restore_or_start(self, reporter: Reporter) -> None:
        checkpoint = self.store.last_checkpoint()
        reporter.started(self)
        if checkpoint is not None:
            self._restore(checkpoint)
            return
        rngs.seed_all(self.experiment.seed)
        self.generation = 0
        self.phase = self.search.next_phase([], self.sync_context(0)) or ""
        self.plan = self.search.plan(self._base_plan(), self.sync_context(0))
        notes: list[tuple[int | None, dict]] = []
        genomes = initial_genomes(
            self.experiment,
            self.data,
            self.rng,
            self.mutation_config,
            self.plan.initial,
            self.costs,
            notes,
        )
        for index, note in notes:  # init = "mixed": each zoo genome taken, or why it was not
            kind = "zoo_genome" if index is not None else "left_out"
            self._record(kind, "init", None if index is None else f"g0_{index}", note)
        self.population = [self._individual(g, f"g0_{i}", [], 0) for i, g in enumerate(genomes)]
        self.population = self.candidates.evaluate(self.population, reporter)
        self._close_generation(self.population, reporter)

    def _generation(self, reporter: Reporter) -> None:
        gen = self.generation + 1
        # Genomes of earlier generations only: after a resume, the store also holds part of
        # this generation, which the uninterrupted run had not seen when it decided.
        self._known = self.store.hashes_before(gen)
        self.plan = self.search.plan(self._base_plan(), self.sync_context(gen))
        offspring = self._vary(gen, self.sync_context(gen))
        self.generation = gen
        evaluated = self.candidates.evaluate(offspring, reporter)
        self.population = self.search.select_survivors(
            self.population + evaluated, self.plan.population, self.sync_context(gen)
        )
        self._close_generation(evaluated, reporter)

    def _vary(self, gen: int, context: st.Context) -> list[ops.Individual]:
        """This generation's children: the strategies' proposals, then mutated parents, some
        of them crossed with a mate first (``runner.evolution.variation``); with ``screen``, the
        ``screen_keep`` share of them its proxy scores best (``runner.proxies``)."""
        e = self.experiment
        if not e.screen:
            return self._made(gen, context, self.plan.children)
        from . import screening  # with torch, imported where used as elsewhere in the runner

        made = self._made(gen, context, screening.pool_size(self.plan.children, e.screen_keep))
        kept, records = screening.screen(
            made, self.plan.children, e.screen, self.data, e.batch_size, e.seed
        )
        for record in records:
            self._record("screened", "engine", record.pop("id"), {"proxy": e.screen, **record})
        return kept

    def _made(self, gen: int, context: st.Context, count: int) -> list[ops.Individual]:
        offspring = []
        for proposal in self.search.propose(self.population, context)[:count]:
            child = self._individual(
                proposal.genome, f"g{gen}_{len(offspring)}", list(proposal.parents), gen
            )
            child.operators = list(proposal.operators)
            child.copies = dict(proposal.copies)
            self._record("proposed", proposal.source or "strategy", child.id, proposal.note)
            offspring.append(child)
        crossed = variation.crossing(
            self.rng, self.experiment.crossover_rate, count - len(offspring)
        )
        parents = iter(self.search.select_parents(self.population, crossed.count(False), context))
        mates = iter(self.search.select_mates(self.population, crossed.count(True), context))
        for cross in crossed:
            parent, mate = next(mates) if cross else (next(parents), None)
            child = self._individual(parent.genome, f"g{gen}_{len(offspring)}", [parent.id], gen)
            variation.vary(
                child, mate, self.rng, self.mutation_config, self.experiment, self.plan.mutations
            )
            offspring.append(child)
        return offspring

    # --- the generation's end ---

    def _close_generation(self, evaluated: list[ops.Individual], reporter: Reporter) -> None:
        self.hall_of_fame.update(evaluated)
        context = self.sync_context(self.generation)
        self.search.generation_end(self.population, evaluated, context)
        self.phase = self.search.next_phase(self.population, context) or self.phase
        self.population = st.best_first(self.population)
        record = _stats().compile(self.population)
        record.update(
            gen=self.generation,
            evals=sum(1 for i in evaluated if not i.reused),
            reused=sum(1 for i in evaluated if i.reused),
            failed=sum(1 for i in evaluated if i.evaluation.status == Status.FAILED),
            extinct=sum(1 for i in evaluated if i.evaluation.status == Status.EXTINCT),
            params=self.population[0].evaluation.params,
            epochs=self.budget.epochs,
            seconds=round(self.seconds, 3),
        )
        if self.plan.rungs:
            record["promoted"] = self.candidates.promoted
        self.logbook.record(**record)
        if len(self.objectives) > 1:
            self._record("pareto", "engine", None, {"front": self._front()})
        checkpoint = Checkpoint(
            generation=self.generation,
            population=[i.id for i in self.population],
            hall_of_fame=[i.id for i in self.hall_of_fame],
            logbook=list(self.logbook),
            rng=rngs.capture(self.rng),
            counters=self.budget.counters(
                stopped_by=self.stopped_by,
                phase=self.phase,
                best=self.best.id if self.best else None,
                best_fitness=self.best.fitness.values[0] if self.best else -1.0,
            ),
            strategy=self.search.save_state(),
        )
        self.store.save_checkpoint(checkpoint, self._events)
        self._events = []
        self.files.prune(self.kept_weights(closing=True))
        self.store.set_meta(seconds=self.seconds, generation=self.generation)
        reporter.generation_done(self, record)

    def _restore(self, checkpoint: Checkpoint) -> None:
        self.generation = checkpoint.generation
        counters = checkpoint.counters
        self.phase = counters.phase
        self.budget.restore(counters, self.store.totals_up_to(self.generation))
        rngs.restore(checkpoint.rng, self.rng)
        self.search.load_state(checkpoint.strategy)
        if "random" not in checkpoint.strategy and "selection" in checkpoint.rng:
            self.search.load_state({"random": checkpoint.rng["selection"]})  # a version 1 store
        self.population = [self.stored(i) for i in checkpoint.population]
        self.hall_of_fame.update([self.stored(i) for i in checkpoint.hall_of_fame])
        for record in checkpoint.logbook:
            self.logbook.record(**record)
        best = counters.best or self.store.champion()  # a version 1 store: its champion
        if best:
            self.best = self.stored(best)
        # A run that stopped at a limit stays stopped, unless the limit has been raised since.
        self.stopped_by = counters.stopped_by
        if self.stopped_by == "generations" or not self.budget.exhausted():
            self.stopped_by = ""
        self.plan = self.search.plan(self._base_plan(), self.sync_context(self.generation))

    # --- helpers ---

    def _base_plan(self) -> st.GenerationPlan:
        e = self.experiment
        return st.GenerationPlan(
            population=e.population,
            children=e.children,
            mutations=tuple(e.mutations_per_child),
            epochs=e.epochs,
            initial=e.population,
        )

    def sync_context(self, generation: int) -> st.Context:
        c = self.context
        if generation != c.generation:
            # The best as the generation begins: every candidate of a generation sees the same
            # one, whatever order they are evaluated in.
            c.best = self.best
        c.generation, c.phase, c.plan = generation, self.phase, self.plan
        c.evaluations, c.epochs_spent = self.budget.evaluations, self.budget.epochs
        return c

    def event(self, kind: str, source: str, individual: str | None, data: dict) -> dict:
        generation = self.context.generation
        return {
            "generation": generation,
            "source": source,
            "kind": kind,
            "individual": individual,
            "data": data,
        }

    def _record(self, kind: str, source: str, individual: str | None, data: dict) -> None:
        # Events of a candidate's training are stored with its evaluation; the others with the
        # generation's checkpoint, so a generation redone after a stop does not repeat them.
        event = self.event(kind, source, individual, data)
        deciding_for = self.candidates.deciding_for
        if deciding_for is not None:
            self.candidates.events.setdefault(deciding_for, []).append(event)
        else:
            self._events.append(event)

    def _individual(self, genome: Genome, id: str, parents: list[str], gen: int) -> ops.Individual:
        return ops.Individual(
            genome, weights=self.weights, id=id, parents=parents, generation=gen, phase=self.phase
        )

    def better(self, ind: ops.Individual, evaluation: Evaluation | None = None) -> bool:
        """Whether ``ind`` (with ``evaluation``, when not yet attached) ranks above the best so
        far. Candidates are accepted in candidate order, so among equals the earlier stays."""
        if evaluation is not None:
            ind = self._individual(ind.genome, ind.id, ind.parents, ind.generation)
            self.attach(ind, evaluation, reused=False)
        if self.best is None:
            return True
        return self.ranking.key(ind) > self.ranking.key(self.best)

    def attach(self, ind: ops.Individual, evaluation: Evaluation, reused: bool) -> None:
        ind.fitness.values = tuple(evaluation.fitness)
        ind.evaluation = evaluation
        ind.reused = reused

    def stored(self, individual_id: str) -> ops.Individual:
        row = self.store.individual(individual_id)
        if row is None:
            raise StoreError(f"{self.store.path}: checkpoint names unknown {individual_id}")
        ind = ops.Individual(
            loads(row["genome"]),
            weights=self.weights,
            id=row["id"],
            parents=row["parents"],
            operators=row["operators"],
            generation=row["generation"],
            phase=row["phase"],
        )
        self.attach(ind, self.store.evaluation(row["evaluation"]), bool(row["reused"]))
        return ind

    def kept_weights(self, closing: bool) -> set[str]:
        """The weights to keep: the best's, the last ``keep_weights`` trained candidates' and,
        within a generation (not ``closing`` one), its teacher's (the best as it began). With
        inheritance, also the population's (parents to be) and, within a generation, its
        candidates' (survivors to be). With rungs, within a generation, its candidates' rung
        weights (``runner.evolution.rungs.snapshot``: what promotions start from)."""
        teacher = None if closing else self.context.best
        keep = {i.id for i in (self.best, teacher) if i is not None} | self.candidates.unaccepted
        if self.experiment.inherit:
            keep.update(i.id for i in self.population)
            if not closing:
                keep.update(self.candidates.current)
        schedule = self.candidates.schedule
        if schedule is not None and not closing:  # with rungs: what a promotion starts from
            current = self.candidates.current
            keep.update(rungs.snapshot(i, k) for i in current for k in range(schedule.last))
        if self.experiment.keep_weights:
            keep.update(self.store.recently_trained(self.experiment.keep_weights))
        return keep

    def _front(self) -> list[dict[str, Any]]:
        return [
            {"id": i.id, **dict(zip(self.objectives, i.fitness.values, strict=True))}
            for i in self.hall_of_fame
            if all(math.isfinite(v) for v in i.fitness.values)
        ]
