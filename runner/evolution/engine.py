"""The evolution loop: generations whose decisions (parents, children, survivors, training,
phases) come from the run's strategies, with candidates handed to an executor.

De-duplication, failure isolation, the limits (parameters, time, evaluations, epochs) and the
checkpoints live here, outside any one search algorithm, so every strategy gets them. Resuming
is replaying: the engine restores the last checkpoint and runs the next generation again,
deciding exactly as before; each individual the store already holds is taken from it instead of
being trained (docs/reliability.md). The run's state (:class:`~runner.evolution.state.RunState`)
is the engine's: only it and its :meth:`Engine.tell` step change it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
from deap import tools

import operators as ops
import strategies as st
from genomics import Genome, canonical_hash, loads

from .. import config as cfg
from .. import faults
from .. import rng as rngs
from ..errors import FailureLimit, StoreError
from ..execution import Executor, make_executor
from ..files import RunFiles
from ..records import Checkpoint, Evaluation, Status
from ..store import Store
from . import costs, rungs, steady, variation
from .budget import Budget
from .candidate import Candidate, Phase, attach
from .candidates import Candidates
from .events import EventLog
from .population import initial_genomes
from .state import Reporter, RunState, SilentReporter, Snapshot, snapshot
from .summary import finish

__all__ = ["Engine", "FailureLimit", "Reporter", "SilentReporter"]


def _stats() -> tools.Statistics:
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    stats.register("mean", lambda v: float(np.mean(v)))
    stats.register("min", min)
    return stats


class Engine:
    """One run: its configuration, store, data, strategies, executor and state."""

    def __init__(
        self,
        experiment: cfg.Experiment,
        run_dir: Path,
        store: Store,
        data: Any,
        executor: Executor | None = None,
    ) -> None:
        from phenotypes import resolve_device

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
        hall_of_fame = (
            tools.ParetoFront(similar=ops.same_genome)
            if len(self.objectives) > 1
            else tools.HallOfFame(5, similar=ops.same_genome)
        )
        self.state = RunState(
            budget=Budget(experiment, float(store.get_meta("seconds", "0"))),
            hall_of_fame=hall_of_fame,
            plan=self._base_plan(),
        )
        self.state.logbook.header = [
            "gen", "evals", "reused", "failed", "max", "mean", "min", "params"
        ]  # fmt: skip
        self._known: set[str] = set()
        self.context = st.Context(
            seed=experiment.seed,
            generation=-1,
            phase="",
            plan=self.state.plan,
            generations=experiment.generations,
            mutation_config=self.mutation_config,
            known=lambda genome: canonical_hash(genome) in self._known,
        )
        self.events = EventLog(lambda: self.context.generation)
        self.context.recorder = self.events.record
        faults.check()
        self.device = str(resolve_device(experiment.device))
        self.costs = costs.Costs(
            experiment, self.device, store, "latency_ms" in self.search.measures()
        )
        self.spec = experiment.train_spec(self.device)
        self.executor = executor or make_executor(experiment, data, self.spec, self.files.weights)
        self.candidates = Candidates(self)

    @property
    def seconds(self) -> float:
        return self.state.budget.seconds

    def snapshot(self) -> Snapshot:
        """The run as it is now, for those who report on it."""
        return snapshot(self)

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
        s = self.state
        self.store.set_meta(status="running")
        try:
            self._restore_or_start(reporter)
            while not s.stopped_by:
                if s.generation >= self.experiment.generations:
                    s.stop("generations")
                    break
                (self._asynchronous if self.experiment.asynchronous else self._generation)(reporter)
            self.store.set_meta(status="searched", stopped_by=s.stopped_by)
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
        reporter.started(self.snapshot())
        if checkpoint is not None:
            self._restore(checkpoint)
            return
        s = self.state
        rngs.seed_all(self.experiment.seed)
        s.generation = 0
        s.phase = self.search.next_phase([], self.sync_context(0)) or ""
        s.plan = self.search.plan(self._base_plan(), self.sync_context(0))
        notes: list[tuple[int | None, dict]] = []
        genomes = initial_genomes(
            self.experiment,
            self.data,
            self.rng,
            self.mutation_config,
            s.plan.initial,
            self.costs,
            notes,
        )
        for index, note in notes:  # init = "mixed": each zoo genome taken, or why it was not
            kind = "zoo_genome" if index is not None else "left_out"
            self.events.record(kind, "init", None if index is None else f"g0_{index}", note)
        first = [Candidate(self.individual(g, f"g0_{i}", [], 0)) for i, g in enumerate(genomes)]
        s.population = self.candidates.evaluate(first, reporter)
        self._close_generation(s.population, reporter)

    def _generation(self, reporter: Reporter) -> None:
        s = self.state
        gen = s.generation + 1
        # Genomes of earlier generations only: after a resume, the store also holds part of
        # this generation, which the uninterrupted run had not seen when it decided.
        self._known = self.store.hashes_before(gen)
        s.plan = self.search.plan(self._base_plan(), self.sync_context(gen))
        offspring = variation.children(self, gen, self.sync_context(gen))
        s.generation = gen
        evaluated = self.candidates.evaluate(offspring, reporter)
        s.population = self.search.select_survivors(
            s.population + evaluated, s.plan.population, self.sync_context(gen)
        )
        self._close_generation(evaluated, reporter)

    def _asynchronous(self, reporter: Reporter) -> None:
        """An asynchronous generation (``runner.evolution.steady``): no survivors chosen, the
        oldest dying as each child is accepted; children still training go on into the next."""
        s = self.state
        gen = s.generation + 1
        self._known = self.store.hashes_before(gen)
        s.plan = self.search.plan(self._base_plan(), self.sync_context(gen))
        s.generation = gen
        going_on = steady.Steady(self, self.candidates, reporter)
        evaluated, s.in_flight = going_on.run(gen, s.in_flight)
        self._close_generation(evaluated, reporter)

    def tell(self, candidate: Candidate, evaluation: Evaluation, reporter: Reporter) -> None:
        """Accept ``candidate`` with ``evaluation`` (its own, or with rungs the rung it stays
        at), in candidate order: count it, attach it to its individual for the strategies,
        make it the best so far when it is, and let go of the weights no longer needed."""
        s, ind = self.state, candidate.individual
        if not candidate.reused:
            s.budget.count(ind.id, candidate.evaluation)
        attach(ind, evaluation, candidate.reused)
        candidate.advance(Phase.ACCEPTED)
        if not candidate.reused and evaluation.ok and self.better(ind):
            s.best = ind
            self.files.promote(ind.id, ind.genome)
        self.files.prune(self.kept_weights(closing=False))
        faults.reached("evaluation")
        reporter.evaluated(self.snapshot(), ind, candidate.evaluation)
        s.budget.check_failures(self.run_dir)

    def stop(self, reason: str) -> str:
        """Stop the run for ``reason`` unless it stopped already; the reason it stops for."""
        return self.state.stop(reason)

    # --- the generation's end ---

    def _close_generation(self, evaluated: list[ops.Individual], reporter: Reporter) -> None:
        s = self.state
        s.hall_of_fame.update(evaluated)
        context = self.sync_context(s.generation)
        self.search.generation_end(s.population, evaluated, context)
        s.phase = self.search.next_phase(s.population, context) or s.phase
        s.population = st.best_first(s.population)
        record = _stats().compile(s.population)
        record.update(
            gen=s.generation,
            evals=sum(1 for i in evaluated if not i.reused),
            reused=sum(1 for i in evaluated if i.reused),
            failed=sum(1 for i in evaluated if i.evaluation.status == Status.FAILED),
            extinct=sum(1 for i in evaluated if i.evaluation.status == Status.EXTINCT),
            params=s.population[0].evaluation.params,
            epochs=s.budget.epochs,
            seconds=round(self.seconds, 3),
        )
        if s.plan.rungs:
            record["promoted"] = self.candidates.promoted
        s.logbook.record(**record)
        if len(self.objectives) > 1:
            self.events.record("pareto", "engine", None, {"front": s.front(self.objectives)})
        checkpoint = Checkpoint(
            generation=s.generation,
            population=[i.id for i in s.population],
            hall_of_fame=[i.id for i in s.hall_of_fame],
            logbook=list(s.logbook),
            rng=rngs.capture(self.rng),
            counters=s.budget.counters(
                stopped_by=s.stopped_by,
                phase=s.phase,
                best=s.best.id if s.best else None,
                best_fitness=s.best.fitness.values[0] if s.best else -1.0,
                in_flight=steady.in_flight_rows(s.in_flight),
            ),
            strategy=self.search.save_state(),
        )
        self.store.save_checkpoint(checkpoint, self.events.take_generation())
        self.files.prune(self.kept_weights(closing=True))
        self.store.set_meta(seconds=self.seconds, generation=s.generation)
        reporter.generation_done(self.snapshot(), record)

    def _restore(self, checkpoint: Checkpoint) -> None:
        s = self.state
        s.generation = checkpoint.generation
        counters = checkpoint.counters
        s.phase = counters.phase
        s.budget.restore(counters, self.store.totals_up_to(s.generation))
        rngs.restore(checkpoint.rng, self.rng)
        self.search.load_state(checkpoint.strategy)
        if "random" not in checkpoint.strategy and "selection" in checkpoint.rng:
            self.search.load_state({"random": checkpoint.rng["selection"]})  # a version 1 store
        s.population = [self.stored(i) for i in checkpoint.population]
        s.hall_of_fame.update([self.stored(i) for i in checkpoint.hall_of_fame])
        for record in checkpoint.logbook:
            s.logbook.record(**record)
        best = counters.best or self.store.champion()  # a version 1 store: its champion
        if best:
            s.best = self.stored(best)
        # A run that stopped at a limit stays stopped, unless the limit has been raised since.
        s.in_flight = steady.carried(self, counters.in_flight)
        s.stopped_by = counters.stopped_by
        if s.stopped_by == "generations" or not s.budget.exhausted():
            s.stopped_by = ""
        s.plan = self.search.plan(self._base_plan(), self.sync_context(s.generation))

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
        """The strategies' context for ``generation``, with the run's counts as of now."""
        c, s = self.context, self.state
        if generation != c.generation:
            # The best as the generation begins: every candidate of a generation sees the same
            # one, whatever order they are evaluated in.
            c.best = s.best
        c.generation, c.phase, c.plan = generation, s.phase, s.plan
        c.evaluations, c.epochs_spent = s.budget.evaluations, s.budget.epochs
        return c

    def individual(self, genome: Genome, id: str, parents: list[str], gen: int) -> ops.Individual:
        """A new individual of the run (its fitness weighted by the run's objectives)."""
        return ops.Individual(
            genome, weights=self.weights, id=id, parents=parents, generation=gen,
            phase=self.state.phase,
        )  # fmt: skip

    def better(self, ind: ops.Individual, evaluation: Evaluation | None = None) -> bool:
        """Whether ``ind`` (with ``evaluation``, when not yet attached) ranks above the best so
        far. Candidates are accepted in candidate order, so among equals the earlier stays."""
        if evaluation is not None:
            ind = self.individual(ind.genome, ind.id, ind.parents, ind.generation)
            attach(ind, evaluation, reused=False)
        best = self.state.best
        return best is None or self.ranking.key(ind) > self.ranking.key(best)

    def stored(self, individual_id: str) -> ops.Individual:
        """The individual the store holds, with its evaluation."""
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
        attach(ind, self.store.evaluation(row["evaluation"]), bool(row["reused"]))
        return ind

    def kept_weights(self, closing: bool) -> set[str]:
        """The weights to keep: the best's, the last ``keep_weights`` trained candidates' and,
        within a generation (not ``closing`` one), its teacher's (the best as it began). With
        inheritance, also the population's (parents to be) and, within a generation, its
        candidates' (survivors to be). With rungs, within a generation, its candidates' rung
        weights (``runner.evolution.rungs.snapshot``: what promotions start from)."""
        teacher = None if closing else self.context.best
        loop = self.candidates
        keep = {i.id for i in (self.state.best, teacher) if i is not None} | loop.unaccepted
        if self.experiment.inherit:
            keep.update(i.id for i in self.state.population)
            if not closing:
                keep.update(loop.current)
        if loop.schedule is not None and not closing:  # with rungs: what promotions start from
            last = loop.schedule.last
            keep.update(rungs.snapshot(i, k) for i in loop.current for k in range(last))
        if self.experiment.keep_weights:
            keep.update(self.store.recently_trained(self.experiment.keep_weights))
        return keep
