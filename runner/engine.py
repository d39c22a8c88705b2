"""The evolution engine: a generational (mu + lambda) loop whose decisions (parents, children,
survivors, training, phases) come from the run's strategies, with weighted mutations,
de-duplication, failure isolation and a checkpoint per generation in the run store.

De-duplication, failure handling, parameter limits and budgets live here, outside any one search
algorithm, so that every strategy gets them.

Resuming is replaying: the engine restores the last checkpoint and runs the next generation
again, deciding exactly as before (same generator states, same counters); each individual the
store already holds is taken from it instead of being trained, so the resumed run is the run
never stopped (docs/reliability.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import time
import zlib
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
from deap import tools

import operators as ops
import strategies as st
from genomics import Genome, canonical_hash, dumps, loads, minimal, random_genome, retarget

from . import config as cfg
from . import faults
from .config import RunError
from .evaluation import (
    evaluate_candidate,
    failed_result,
    forked_rng,
    release_memory,
    train_and_write,
    write_atomic,
    write_text_atomic,
)
from .lock import RunLock
from .store import FILENAME, Store, StoreError, check_file


class FailureLimit(RunError):
    """Too many evaluations failed in a row; the message names the last reasons."""


class Reporter(Protocol):
    """What the engine tells its display (the CLI's is rich; tests use a silent one)."""

    def started(self, engine: Engine) -> None: ...
    def evaluating(self, engine: Engine, individual: ops.Individual) -> None: ...
    def evaluated(self, engine: Engine, individual: ops.Individual, result: dict) -> None: ...
    def generation_done(self, engine: Engine, record: dict) -> None: ...
    def final_training(self, engine: Engine, genome: Genome) -> None: ...


class SilentReporter:
    def started(self, engine: Engine) -> None:
        pass

    def evaluating(self, engine: Engine, individual: ops.Individual) -> None:
        pass

    def evaluated(self, engine: Engine, individual: ops.Individual, result: dict) -> None:
        pass

    def generation_done(self, engine: Engine, record: dict) -> None:
        pass

    def final_training(self, engine: Engine, genome: Genome) -> None:
        pass


def _seed_for(seed: int, individual_id: str) -> int:
    # Each candidate trains with its own seed, fixed by the run seed and its id, so a resumed
    # run trains a re-created candidate exactly as the first attempt did.
    return zlib.crc32(f"{seed}:{individual_id}".encode())


def _stats() -> tools.Statistics:
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    stats.register("mean", lambda v: float(np.mean(v)))
    stats.register("min", min)
    return stats


class Engine:
    """One run: its configuration, store, data, strategies, population and counters."""

    def __init__(self, experiment: cfg.Experiment, run_dir: Path, store: Store, data: Any):
        self.experiment = experiment
        self.run_dir = run_dir
        self.store = store
        self.data = data
        self.mutation_config = experiment.mutation_config()
        self.operator_names = ops.names()
        experiment.check_weights(self.operator_names)
        self.rng = random.Random(experiment.seed)
        self.search = st.Search(experiment.strategy_objects(), seed=experiment.seed + 1)
        self.objectives = self.search.objectives()
        self.weights = tuple(1.0 if o == "val_accuracy" else -1.0 for o in self.objectives)
        self.multi_objective = len(self.objectives) > 1
        self.population: list[ops.Individual] = []
        self.hall_of_fame: Any = (
            tools.ParetoFront(similar=ops.same_genome)
            if self.multi_objective
            else tools.HallOfFame(5, similar=ops.same_genome)
        )
        self.logbook = tools.Logbook()
        self.logbook.header = ["gen", "evals", "reused", "failed", "max", "mean", "min", "params"]
        self.generation = -1
        self.phase = ""
        self.cache = store.evaluations_by_hash()
        self.seconds_before = float(store.get_meta("seconds", "0"))
        self.session_start = time.perf_counter()
        self.stopped_by = ""
        self.best: ops.Individual | None = None
        self.best_fitness = -1.0
        # Counted as the run goes, not read from the store: after a resume the store already
        # holds part of the generation being replayed, which the budgets must not see early.
        self.evaluated = 0
        self.epochs_spent = 0
        self.failures_in_a_row = 0
        self.last_failures: list[str] = []
        self._events: list[dict[str, Any]] = []
        self._evaluation_events: list[dict[str, Any]] = []
        self._evaluating = False
        self._teacher: tuple[str, Any] | None = None
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
        from phenotypes import TrainSpec, resolve_device

        faults.check()
        self.device = str(resolve_device(experiment.device))
        self._spec = TrainSpec(
            epochs=experiment.epochs,
            batch_size=experiment.batch_size,
            lr=experiment.lr,
            schedule=experiment.schedule,
            device=self.device,
        )

    # --- budget ---

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.session_start

    def remaining(self) -> float | None:
        budget = self.experiment.time_budget
        return max(budget - self.seconds, 0.0) if budget else None

    def evaluations(self) -> int:
        """Evaluations so far (trainings, and children whose mutation failed)."""
        return self.evaluated

    def _out_of_budget(self) -> str:
        e = self.experiment
        if e.time_budget and self.seconds >= e.time_budget:
            return "time budget"
        if e.max_evaluations and self.evaluations() >= e.max_evaluations:
            return "evaluations"
        if e.max_epochs and self.epochs_spent >= e.max_epochs:
            return "epochs"
        return ""

    # --- strategies ---

    def _base_plan(self) -> st.GenerationPlan:
        e = self.experiment
        return st.GenerationPlan(
            population=e.population,
            children=e.children,
            mutations=tuple(e.mutations_per_child),
            epochs=e.epochs,
            initial=e.population,
        )

    def _sync_context(self, generation: int) -> st.Context:
        c = self.context
        if generation != c.generation:
            # The best as the generation begins: every candidate of a generation sees the same
            # one, whatever order they are evaluated in.
            c.best = self.best
        c.generation, c.phase, c.plan = generation, self.phase, self.plan
        c.evaluations, c.epochs_spent = self.evaluations(), self.epochs_spent
        return c

    def _record(self, kind: str, source: str, individual: str | None, data: dict) -> None:
        event = {
            "generation": self.context.generation,
            "source": source,
            "kind": kind,
            "individual": individual,
            "data": data,
        }
        # Events of a training are stored with its evaluation; the others with the generation's
        # checkpoint, so a generation redone after a stop does not repeat them.
        (self._evaluation_events if self._evaluating else self._events).append(event)

    # --- the loop ---

    def run(self, reporter: Reporter | None = None) -> dict[str, Any]:
        """Search until a limit is reached, then train the best and write the run directory."""
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
            summary = self._finish(reporter)
        except KeyboardInterrupt:
            self.store.set_meta(status="interrupted", seconds=self.seconds)
            raise
        except FailureLimit:
            self.store.set_meta(status="stopped", stopped_by="failures", seconds=self.seconds)
            raise
        self.store.set_meta(status="complete", seconds=self.seconds)
        return summary

    def _initial_genomes(self, size: int) -> list[Genome]:
        e, shape, classes = self.experiment, self.data.input_shape, self.data.num_classes
        bounds = self.mutation_config.bounds
        if e.init == "minimal":
            return [minimal(shape, classes)] * size
        if e.init == "random":
            return [random_genome(self.rng, shape, classes, bounds=bounds) for _ in range(size)]
        import zoo

        names = e.zoo_names()
        return [retarget(zoo.load(names[i % len(names)]), shape, classes) for i in range(size)]

    def _restore_or_start(self, reporter: Reporter) -> None:
        checkpoint = self.store.last_checkpoint()
        reporter.started(self)
        if checkpoint is not None:
            self._restore(checkpoint)
            return
        _seed_library_rngs(self.experiment.seed)
        self.generation = 0
        context = self._sync_context(0)
        self.phase = self.search.next_phase([], context) or ""
        self.plan = self.search.plan(self._base_plan(), self._sync_context(0))
        self.population = [
            self._individual(g, f"g0_{i}", [], 0)
            for i, g in enumerate(self._initial_genomes(self.plan.initial))
        ]
        self.population = self._evaluate_all(self.population, reporter)
        self._close_generation(self.population, reporter)

    def _individual(self, genome: Genome, id: str, parents: list[str], gen: int) -> ops.Individual:
        return ops.Individual(
            genome, weights=self.weights, id=id, parents=parents, generation=gen, phase=self.phase
        )

    def _generation(self, reporter: Reporter) -> None:
        gen = self.generation + 1
        # Genomes of earlier generations only: after a resume, the store also holds part of
        # this generation, which the uninterrupted run had not seen when it decided.
        self._known = {
            row[0]
            for row in self.store.db.execute(
                "SELECT genome_hash FROM individuals WHERE generation < ?", (gen,)
            )
        }
        self.plan = self.search.plan(self._base_plan(), self._sync_context(gen))
        context = self._sync_context(gen)
        offspring = []
        for proposal in self.search.propose(self.population, context)[: self.plan.children]:
            child = self._individual(
                proposal.genome, f"g{gen}_{len(offspring)}", list(proposal.parents), gen
            )
            child.operators = list(proposal.operators)
            self._record("proposed", proposal.source or "strategy", child.id, proposal.note)
            offspring.append(child)
        parents = self.search.select_parents(
            self.population, self.plan.children - len(offspring), context
        )
        for parent in parents:
            child = self._individual(parent.genome, f"g{gen}_{len(offspring)}", [parent.id], gen)
            try:
                ops.mutate(
                    child,
                    rng=self.rng,
                    config=self.mutation_config,
                    weights=self.experiment.weights,
                    count=self.plan.mutations,
                )
            except Exception as exc:
                # A broken operator (a plugin's, say) fails this child, not the run: it keeps
                # its parent's genome and is stored as failed, never trained.
                child.mutation_failure = failed_result(
                    exc, time.perf_counter(), metrics={"stage": "mutation"}, prefix="mutation: "
                )
            offspring.append(child)
        self.generation = gen
        evaluated = self._evaluate_all(offspring, reporter)
        self.population = self.search.select_survivors(
            self.population + evaluated, self.plan.population, self._sync_context(gen)
        )
        self._close_generation(evaluated, reporter)

    def _evaluate_all(self, individuals: list[ops.Individual], reporter: Reporter) -> list:
        done = []
        for ind in individuals:
            self.stopped_by = self.stopped_by or self._out_of_budget()
            # The rest of this generation is dropped; its evaluated part is kept. The first
            # population always gets one evaluation, so that every run has a best.
            if self.stopped_by and (done or self.generation > 0):
                break
            reporter.evaluating(self, ind)
            result = self._evaluate(ind)
            reporter.evaluated(self, ind, result)
            done.append(ind)
            limit = self.experiment.max_failures
            if limit and self.failures_in_a_row >= limit:
                raise FailureLimit(
                    f"{self.failures_in_a_row} evaluations failed in a row, the last:"
                    f" {'; '.join(self.last_failures)}. Fix the cause, then continue with"
                    f" `ecogen resume {self.run_dir} --max-failures N` (N > {limit}; 0: no"
                    " limit)"
                )
        return done

    def _evaluate(self, ind: ops.Individual) -> dict[str, Any]:
        genome_hash = canonical_hash(ind.genome)
        known = self.store.individual(ind.id)
        model = None
        stored = known is not None and known["genome_hash"] == genome_hash and known["evaluation"]
        failure = getattr(ind, "mutation_failure", None)
        if stored:
            # Re-created after a resume: the same individual, evaluated before the stop.
            result = self.store.evaluation(known["evaluation"])
            reused = bool(known["reused"])
        elif failure is not None:
            result, reused = failure, False
            result["fitness"] = self._fitness(result)
        elif genome_hash in self.cache:
            result, reused = self.cache[genome_hash], True
        else:
            result, model = self._train(ind)
            reused = False
        if not reused:
            self._count(ind, result)
        new_best = (
            not reused and result["status"] == "ok" and result["fitness"][0] > self.best_fitness
        )
        if not stored:
            if model is not None and (new_best or self.experiment.keep_weights):
                self._save_weights(ind, model)
            self._store(ind, genome_hash, result, reused)
            if not reused and failure is None:
                self.cache[genome_hash] = result
        self._attach(ind, result, reused)
        if new_best:
            self._new_best(ind)
        del model
        self._prune_weights()
        release_memory()
        faults.reached("evaluation")
        return result

    def _count(self, ind: ops.Individual, result: dict[str, Any]) -> None:
        self.evaluated += 1
        self.epochs_spent += result["epochs"]
        if result["status"] == "failed":
            self.failures_in_a_row += 1
            self.last_failures = [*self.last_failures, f"{ind.id}: {result['reason']}"][-3:]
        else:
            self.failures_in_a_row, self.last_failures = 0, []

    def _store(
        self, ind: ops.Individual, genome_hash: str, result: dict[str, Any], reused: bool
    ) -> None:
        """The individual, its evaluation (unless re-used) and the events of its training, in
        one transaction: a resumed run finds all of them or none."""
        with self.store.transaction():
            if not reused:
                result["id"] = self.store.add_evaluation(ind.id, genome_hash, result)
            faults.reached("record")
            self.store.add_individual(
                id=ind.id,
                generation=ind.generation,
                genome_hash=genome_hash,
                genome=dumps(ind.genome, compact=True),
                parents=ind.parents,
                operators=ind.operators,
                evaluation=result["id"],
                reused=reused,
                phase=ind.phase,
            )
            for event in self._evaluation_events:
                self.store.add_event(**event)
            self.store.set_meta(seconds=self.seconds)
        self._evaluation_events = []

    def _train(self, ind: ops.Individual) -> tuple[dict[str, Any], Any]:
        from phenotypes import StopTraining

        context = self._sync_context(ind.generation)
        epochs = self.plan.epochs
        spec = attrs.evolve(self._spec, seed=_seed_for(self.experiment.seed, ind.id), epochs=epochs)
        stops: list[st.Stop] = []

        def on_epoch(metrics: Any) -> None:
            faults.reached("epoch")
            stop = self.search.on_epoch(ind, metrics.epoch, epochs, metrics.val_accuracy, context)
            if stop is not None:
                stops.append(stop)
                raise StopTraining(stop.reason)

        self._evaluating = True
        self._evaluation_events = []
        # Training seeds itself, and so must anything drawing from PyTorch's global generators:
        # a resumed run takes finished evaluations from the store instead of training them (or
        # loading their teacher) again, and must leave those generators where the run never
        # stopped would have.
        try:
            with forked_rng(self.device):
                advice = self.search.training(ind, context)
                teacher = None
                if advice is not None:
                    teacher = self._teacher_model(advice.teacher)
                    spec = attrs.evolve(
                        spec, distill_temperature=advice.temperature, distill_weight=advice.weight
                    )
                result, model = evaluate_candidate(
                    ind.genome,
                    self.data,
                    spec,
                    on_epoch=on_epoch,
                    teacher=teacher,
                    timeout=self.experiment.evaluation_timeout,
                )
        finally:
            self._evaluating = False
        metrics = result.setdefault("metrics", {})
        metrics["planned_epochs"] = epochs
        if advice is not None:
            metrics["teacher"] = advice.teacher
        if stops and result["status"] == "stopped":
            result["status"] = stops[0].status
            metrics.update(stops[0].details, epochs_saved=epochs - result["epochs"])
        result["fitness"] = self._fitness(result)
        return result, model

    def _fitness(self, result: dict[str, Any]) -> list[float]:
        values = [result["fitness"][0]]
        for cost in self.objectives[1:]:
            value = result.get(cost)
            # An unmeasured cost (a candidate that failed before it was built) is the worst.
            values.append(float(value) if value is not None else float("inf"))
        return values

    def _attach(self, ind: ops.Individual, result: dict[str, Any], reused: bool) -> None:
        result.setdefault("planned_epochs", result.get("metrics", {}).get("planned_epochs"))
        ind.fitness.values = tuple(result["fitness"])
        ind.evaluation = result
        ind.reused = reused

    def _teacher_model(self, teacher: str) -> Any:
        import phenotypes as ph

        best = self.context.best
        if best is None or teacher != best.id:
            raise st.StrategyError(
                f"strategy asked for teacher {teacher}, but only the best so far"
                f" ({best.id if best else 'none yet'}) has weights to teach with"
            )
        if self._teacher is None or self._teacher[0] != teacher:
            _, model = ph.load_model(self.run_dir / "weights" / f"{teacher}.pt")
            self._teacher = (teacher, model)
        return self._teacher[1]

    def _save_weights(self, ind: ops.Individual, model: Any) -> None:
        """``weights/ID.pt``, written before the evaluation is stored: a stored best always
        has its weights, also when a resumed run takes its evaluation from the store."""
        import phenotypes as ph

        folder = self.run_dir / "weights"
        folder.mkdir(exist_ok=True)
        write_atomic(folder / f"{ind.id}.pt", lambda path: ph.save_model(path, ind.genome, model))
        faults.reached("weights")

    def _new_best(self, ind: ops.Individual) -> None:
        """``ind`` is the best so far: best/ gets its genome and weights (the final result
        when nothing better comes) and it becomes mimicry's teacher."""
        self.best, self.best_fitness = ind, ind.fitness.values[0]
        weights = self.run_dir / "weights" / f"{ind.id}.pt"
        best = self.run_dir / "best"
        best.mkdir(exist_ok=True)
        write_text_atomic(best / "genome.json", dumps(ind.genome))
        if weights.is_file():
            write_atomic(best / "model.pt", lambda path: shutil.copyfile(weights, path))
        else:  # a store from before weights were kept: the file there is an older best's
            (best / "model.pt").unlink(missing_ok=True)

    def _close_generation(self, evaluated: list[ops.Individual], reporter: Reporter) -> None:
        self.hall_of_fame.update(evaluated)
        context = self._sync_context(self.generation)
        self.search.generation_end(self.population, evaluated, context)
        phase = self.search.next_phase(self.population, context) or self.phase
        self.phase = phase
        self.population = st.best_first(self.population)
        record = _stats().compile(self.population)
        best = self.population[0]
        record.update(
            gen=self.generation,
            evals=sum(1 for i in evaluated if not getattr(i, "reused", False)),
            reused=sum(1 for i in evaluated if getattr(i, "reused", False)),
            failed=sum(1 for i in evaluated if i.evaluation["status"] == "failed"),
            extinct=sum(1 for i in evaluated if i.evaluation["status"] == "extinct"),
            params=best.evaluation["params"],
            epochs=self.epochs_spent,
            seconds=round(self.seconds, 3),
        )
        self.logbook.record(**record)
        if self.multi_objective:
            self._record("pareto", "engine", None, {"front": self._front()})
        self.store.save_checkpoint(
            self.generation,
            population=[i.id for i in self.population],
            hall_of_fame=[i.id for i in self.hall_of_fame],
            logbook=list(self.logbook),
            rng=_rng_states(self.rng),
            counters={
                "seconds": self.seconds,
                "stopped_by": self.stopped_by,
                "phase": self.phase,
                "best": self.best.id if self.best else None,
                "best_fitness": self.best_fitness,
                "evaluations": self.evaluated,
                "epochs": self.epochs_spent,
                "failures_in_a_row": self.failures_in_a_row,
                "last_failures": self.last_failures,
            },
            strategy=self.search.save_state(),
            events=self._events,
        )
        self._events = []
        self._prune_weights(closing=True)
        self.store.set_meta(seconds=self.seconds, generation=self.generation)
        reporter.generation_done(self, record)

    def _prune_weights(self, closing: bool = False) -> None:
        """Keep the weights of the best, of the last ``keep_weights`` trained candidates and,
        within a generation (not ``closing`` one), of its teacher (the best as it began);
        delete the rest, and what a killed process left half-written."""
        folder = self.run_dir / "weights"
        if not folder.is_dir():
            return
        teacher = None if closing else self.context.best
        keep = {i.id for i in (self.best, teacher) if i is not None}
        if self.experiment.keep_weights:
            keep.update(
                row[0]
                for row in self.store.db.execute(
                    "SELECT individual FROM evaluations WHERE status != 'failed'"
                    " ORDER BY id DESC LIMIT ?",
                    (self.experiment.keep_weights,),
                )
            )
        for path in folder.iterdir():
            if path.suffix != ".pt" or path.stem not in keep:
                path.unlink(missing_ok=True)

    def _front(self) -> list[dict[str, Any]]:
        return [
            {"id": i.id, **dict(zip(self.objectives, i.fitness.values, strict=True))}
            for i in self.hall_of_fame
        ]

    def _stored(self, individual_id: str) -> ops.Individual:
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
        self._attach(ind, self.store.evaluation(row["evaluation"]), bool(row["reused"]))
        return ind

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.generation = checkpoint["generation"]
        counters = checkpoint["counters"]
        self.phase = counters.get("phase", "")
        self._restore_counters(counters)
        rng = checkpoint["rng"]
        self.rng.setstate(_python_state(rng["engine"]))
        self.search.load_state(checkpoint["strategy"])
        if "random" not in checkpoint["strategy"] and "selection" in rng:
            self.search.random_state = _python_state(rng["selection"])  # a version 1 store
        _restore_library_rngs(rng)
        self.population = [self._stored(i) for i in checkpoint["population"]]
        self.hall_of_fame.update([self._stored(i) for i in checkpoint["hall_of_fame"]])
        for record in checkpoint["logbook"]:
            self.logbook.record(**record)
        if counters.get("best"):
            self.best = self._stored(counters["best"])
            self.best_fitness = counters["best_fitness"]
        else:  # a version 1 store: the best is the fittest evaluation
            self.best_fitness = max(
                (r["fitness"][0] for r in self.cache.values() if r["status"] == "ok"),
                default=-1.0,
            )
        self.plan = self.search.plan(self._base_plan(), self._sync_context(self.generation))

    def _restore_counters(self, counters: dict[str, Any]) -> None:
        if "evaluations" in counters:
            self.evaluated, self.epochs_spent = counters["evaluations"], counters["epochs"]
            self.failures_in_a_row = counters["failures_in_a_row"]
            self.last_failures = counters["last_failures"]
        else:  # an older store: what the generations up to the checkpoint evaluated
            self.evaluated, self.epochs_spent = self.store.db.execute(
                "SELECT count(*), coalesce(sum(epochs), 0) FROM evaluations WHERE individual IN"
                " (SELECT id FROM individuals WHERE generation <= ?)",
                (self.generation,),
            ).fetchone()
        # A run that stopped at a limit stays stopped, unless the limit has been raised since.
        self.stopped_by = counters.get("stopped_by", "")
        if self.stopped_by == "generations" or not self._out_of_budget():
            self.stopped_by = ""

    # --- the end ---

    def _finish(self, reporter: Reporter) -> dict[str, Any]:
        import phenotypes as ph

        # The population keeps the best ever found (mu + lambda), ranked with size as tie-break.
        best = st.best_first(self.population)[0]
        e = self.experiment
        faults.reached("final")
        reporter.final_training(self, best.genome)
        spec = attrs.evolve(self._spec, seed=e.seed, epochs=e.final_epochs or e.epochs)
        model = None
        saved = self.run_dir / "best" / "model.pt"
        if not e.final_epochs and saved.is_file():
            genome, model = ph.load_model(saved)
            if canonical_hash(genome) != canonical_hash(best.genome):
                model = None  # saved: an equally accurate, larger one; train the best instead
        best_summary, _ = train_and_write(
            best.genome, best.id, self.data, e.dataset, spec, self.run_dir / "best", model=model
        )
        db = self.store.db
        summary = {
            "best": {
                "id": best.id,
                "generation": best.generation,
                "genome_hash": canonical_hash(best.genome),
                "search_val_accuracy": best.fitness.values[0],
                "val_accuracy": best_summary["val_accuracy"],
                "test_accuracy": best_summary["test_accuracy"],
                "params": best_summary["params"],
                "size_bytes": best_summary["size_bytes"],
                "flops": best_summary["flops"],
                "final_epochs": e.final_epochs,
                "operators": _lineage_operators(self.store, best.id),
            },
            "dataset": e.dataset,
            "strategy": list(e.strategy),
            "strategies": self.search.names,
            "phase": self.phase,
            "generations": self.generation,
            "evaluations": self.evaluations(),
            "epochs_trained": self.epochs_spent,
            "epochs_saved": db.execute(
                "SELECT coalesce(sum(json_extract(metrics, '$.epochs_saved')), 0) FROM evaluations"
            ).fetchone()[0],
            "extinct": self.store.count("evaluations", "status = 'extinct'"),
            "dedup_hits": self.store.count("individuals", "reused = 1"),
            "failures": self.store.count("evaluations", "status = 'failed'"),
            "individuals": self.store.count("individuals"),
            "seconds": round(self.seconds, 3),
            "final_training_seconds": best_summary["seconds"],
            "stopped_by": self.stopped_by,
            "device": self.device,
            "run_dir": str(self.run_dir),
        }
        if self.multi_objective:
            summary["objectives"] = self.objectives
            summary["pareto_front"] = self._front()
        self.store.fold_log()
        summary["disk_bytes"] = disk_usage(self.run_dir)
        write_text_atomic(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary


def disk_usage(run_dir: Path) -> int:
    """Bytes of the files in ``run_dir`` (the store, weights, best/), but for summary.json and
    SQLite's shared-memory index (deleted when the store closes)."""
    return sum(
        p.stat().st_size
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != "summary.json" and not p.name.endswith("-shm")
    )


def data_fingerprint(data: Any) -> str:
    """A hash of a dataset's splits (shapes, types and values): resuming on other data would
    silently make another run."""
    digest = hashlib.blake2b(digest_size=16)
    for split in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        array = getattr(data, split).detach().cpu().contiguous().numpy()
        digest.update(f"{split}:{array.dtype}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _lineage_operators(store: Store, individual_id: str) -> list[str]:
    """Every mutation from the first generation to ``individual_id``, oldest first."""
    chain: list[str] = []
    row = store.individual(individual_id)
    while row is not None:
        chain[:0] = row["operators"]
        row = store.individual(row["parents"][0]) if row["parents"] else None
    return chain


def _rng_states(engine: random.Random) -> dict[str, Any]:
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    states = {
        "engine": _json_state(engine.getstate()),
        "python": _json_state(random.getstate()),
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
    }
    if torch.cuda.is_available():
        states["cuda"] = [
            base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()
        ]
    return states


def _json_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _python_state(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _seed_library_rngs(seed: int) -> None:
    """Seed the global generators a new run starts with, so that code drawing from them (a
    plugin's, say) repeats too; checkpoints save them and a resume restores them."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _restore_library_rngs(states: dict[str, Any]) -> None:
    import torch

    random.setstate(_python_state(states["python"]))
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    raw = np.frombuffer(base64.b64decode(states["torch"]), dtype=np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(raw))
    if "cuda" in states and torch.cuda.is_available():
        cuda = [
            torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy())
            for s in states["cuda"]
        ]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# --- starting and resuming ------------------------------------------------------------------


def claim(run_dir: str | Path) -> RunLock:
    """Lock ``run_dir`` (created if missing) for a new run; RunError if another process holds
    it or it already holds a run."""
    faults.check()
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a directory; choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    if (run_dir / FILENAME).exists():
        lock.release()
        raise RunError(
            f"{run_dir} already holds a run; continue it with `ecogen resume {run_dir}`"
            " or choose another --run-dir"
        )
    return lock


def start(experiment: cfg.Experiment, data: Any, lock: RunLock | None = None) -> Engine:
    """A new run in ``experiment.run_dir``: writes ``experiment.toml`` and creates the store.
    ``lock`` is the directory's, from :func:`claim` (taken here when not given)."""
    experiment.check()
    run_dir = Path(experiment.run_dir)
    lock = lock if lock is not None else claim(run_dir)
    try:
        toml = cfg.dumps(experiment)
        write_text_atomic(run_dir / "experiment.toml", toml)
        import importlib.metadata

        meta = {
            "ecogen_version": importlib.metadata.version("ecogen"),
            "created": time.time(),
            "seconds": 0.0,
            "data_fingerprint": data_fingerprint(data),
        }
        store = Store.create(run_dir / FILENAME, toml, meta, lock=lock)
    except BaseException:
        lock.release()
        raise
    return _engine(experiment, run_dir, store, data)


def _engine(experiment: cfg.Experiment, run_dir: Path, store: Store, data: Any) -> Engine:
    try:
        return Engine(experiment, run_dir, store, data)
    except BaseException:
        store.close()
        raise


@attrs.define
class Resumption:
    """An existing run, checked and locked but not yet changed: :meth:`check_data`, then
    :meth:`open` (which writes), or :meth:`abandon`."""

    run_dir: Path
    lock: RunLock
    experiment: cfg.Experiment
    changes: dict[str, Any]
    fingerprint: str | None

    def check_data(self, data: Any) -> None:
        """RunError when ``data`` is not the data the run started with."""
        if self.fingerprint and data_fingerprint(data) != self.fingerprint:
            raise RunError(
                f"{self.run_dir}: dataset {self.experiment.dataset} is not the data this run"
                " started with (its splits differ); resuming on it would make another run"
            )

    def open(self, data: Any = None) -> Store:
        """The store, opened for writing, with the raised limits saved."""
        store = Store(self.run_dir / FILENAME, lock=self.lock)
        if self.changes:
            toml = cfg.dumps(self.experiment)
            store.save_config(toml)
            write_text_atomic(self.run_dir / "experiment.toml", toml)
        if data is not None and not self.fingerprint:  # a run from before fingerprints
            store.set_meta(data_fingerprint=data_fingerprint(data))
        return store

    def engine(self, data: Any) -> Engine:
        """:meth:`check_data`, :meth:`open` and the engine that continues the run."""
        try:
            self.check_data(data)
            store = self.open(data)
        except BaseException:
            self.abandon()
            raise
        return _engine(self.experiment, self.run_dir, store, data)

    def abandon(self) -> None:
        self.lock.release()


def prepare_resume(run_dir: str | Path, **asked: Any) -> Resumption:
    """Check that the run in ``run_dir`` can go on with the settings ``asked`` (None: as
    stored) and lock it, writing nothing; RunError or StoreError says why not."""
    faults.check()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    check_file(run_dir / FILENAME)
    lock = RunLock(run_dir)
    try:
        with Store(run_dir / FILENAME, readonly=True) as store:
            try:
                values = cfg.tomllib.loads(store.config())
            except cfg.tomllib.TOMLDecodeError as exc:
                raise StoreError(f"{store.path}: its configuration is damaged ({exc})") from None
            status = store.get_meta("status")
            fingerprint = store.get_meta("data_fingerprint")
        stored = cfg.from_dict({**values, "run_dir": str(run_dir)})
        changes = cfg.resume_changes(stored, {k: v for k, v in asked.items() if v is not None})
        if status == "complete" and not set(changes) & set(cfg.LIMITS):
            raise RunError(
                f"{run_dir}: this run is complete; raise a limit to go on (--generations,"
                " --time-budget, --max-evaluations or --max-epochs)"
            )
        experiment = attrs.evolve(stored, **changes)
        experiment.check()
    except BaseException:
        lock.release()
        raise
    return Resumption(run_dir, lock, experiment, changes, fingerprint)


def open_run(run_dir: str | Path, **overrides: Any) -> tuple[Store, cfg.Experiment]:
    """The store (opened for writing, so locked) and configuration of an existing run, with
    limits raised by ``overrides`` (``generations``, ``time_budget``, ...)."""
    resumption = prepare_resume(run_dir, **overrides)
    try:
        return resumption.open(), resumption.experiment
    except BaseException:
        resumption.abandon()
        raise
