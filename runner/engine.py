"""The evolution engine: a generational (mu + lambda) loop whose decisions (parents, children,
survivors, training, phases) come from the run's strategies, with weighted mutations,
de-duplication, failure isolation and a checkpoint per generation in the run store.

De-duplication, failure handling, parameter limits and budgets live here, outside any one search
algorithm, so that every strategy gets them.
"""

from __future__ import annotations

import base64
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
from .config import RunError
from .evaluation import evaluate_candidate, train_and_write
from .store import FILENAME, Store, StoreError


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
        self.epochs_spent = store.db.execute(
            "SELECT coalesce(sum(epochs), 0) FROM evaluations"
        ).fetchone()[0]
        self._events: list[dict[str, Any]] = []
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
        return self.store.count("evaluations")

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
        # Events of a training are kept with its evaluation; the others are written with the
        # generation's checkpoint, so a generation redone after a stop does not repeat them.
        if self._evaluating:
            self.store.add_event(**event)
        else:
            self._events.append(event)

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
            ops.mutate(
                child,
                rng=self.rng,
                config=self.mutation_config,
                weights=self.experiment.weights,
                count=self.plan.mutations,
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
        return done

    def _evaluate(self, ind: ops.Individual) -> dict[str, Any]:
        genome_hash = canonical_hash(ind.genome)
        known = self.store.individual(ind.id)
        model = None
        if known is not None and known["genome_hash"] == genome_hash and known["evaluation"]:
            # Re-created after a resume: the same individual, evaluated before the stop.
            result = self.store.evaluation(known["evaluation"])
            reused = bool(known["reused"])
        elif genome_hash in self.cache:
            result = self.cache[genome_hash]
            reused = True
        else:
            result, model = self._train(ind)
            result["id"] = self.store.add_evaluation(ind.id, genome_hash, result)
            self.cache[genome_hash] = result
            self.epochs_spent += result["epochs"]
            self.store.set_meta(seconds=self.seconds)
            reused = False
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
        self._attach(ind, result, reused)
        if not reused and result["status"] == "ok" and result["fitness"][0] > self.best_fitness:
            self._new_best(ind, model)
        return result

    def _train(self, ind: ops.Individual) -> tuple[dict[str, Any], Any]:
        from phenotypes import StopTraining

        context = self._sync_context(ind.generation)
        epochs = self.plan.epochs
        spec = attrs.evolve(self._spec, seed=_seed_for(self.experiment.seed, ind.id), epochs=epochs)
        stops: list[st.Stop] = []

        def on_epoch(metrics: Any) -> None:
            stop = self.search.on_epoch(ind, metrics.epoch, epochs, metrics.val_accuracy, context)
            if stop is not None:
                stops.append(stop)
                raise StopTraining(stop.reason)

        self._evaluating = True
        try:
            advice = self.search.training(ind, context)
            teacher = None
            if advice is not None:
                teacher = self._teacher_model(advice.teacher)
                spec = attrs.evolve(
                    spec, distill_temperature=advice.temperature, distill_weight=advice.weight
                )
            result, model = evaluate_candidate(
                ind.genome, self.data, spec, on_epoch=on_epoch, teacher=teacher
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

    def _new_best(self, ind: ops.Individual, model: Any) -> None:
        """``ind`` is the best so far: its weights are kept for the final result (best/) and
        as mimicry's teacher (weights/ID.pt, pruned at each checkpoint)."""
        import phenotypes as ph

        self.best, self.best_fitness = ind, ind.fitness.values[0]
        weights = self.run_dir / "weights" / f"{ind.id}.pt"
        if model is not None:
            weights.parent.mkdir(exist_ok=True)
            ph.save_model(weights, ind.genome, model)
        best = self.run_dir / "best"
        best.mkdir(exist_ok=True)
        (best / "genome.json").write_text(dumps(ind.genome))
        if weights.is_file():
            shutil.copyfile(weights, best / "model.pt")

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
            },
            strategy=self.search.save_state(),
            events=self._events,
        )
        self._events = []
        self._prune_weights()
        self.store.set_meta(seconds=self.seconds, generation=self.generation)
        reporter.generation_done(self, record)

    def _prune_weights(self) -> None:
        # Only the checkpointed best can teach after a resume; older bests are never needed.
        folder = self.run_dir / "weights"
        if folder.is_dir() and self.best is not None:
            for path in folder.glob("*.pt"):
                if path.stem != self.best.id:
                    path.unlink()

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

    # --- the end ---

    def _finish(self, reporter: Reporter) -> dict[str, Any]:
        import phenotypes as ph

        # The population keeps the best ever found (mu + lambda), ranked with size as tie-break.
        best = st.best_first(self.population)[0]
        e = self.experiment
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
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


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


def start(experiment: cfg.Experiment, data: Any) -> Engine:
    """A new run in ``experiment.run_dir``: writes ``experiment.toml`` and creates the store."""
    experiment.check()
    run_dir = Path(experiment.run_dir)
    if (run_dir / FILENAME).exists():
        raise RunError(
            f"{run_dir} already holds a run; continue it with `ecogen resume {run_dir}`"
            " or choose another --run-dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    toml = cfg.dumps(experiment)
    (run_dir / "experiment.toml").write_text(toml)
    store = Store(run_dir / FILENAME, create=True)
    store.save_config(toml)
    import importlib.metadata

    store.set_meta(
        ecogen_version=importlib.metadata.version("ecogen"), created=time.time(), seconds=0.0
    )
    return Engine(experiment, run_dir, store, data)


def open_run(run_dir: str | Path, **overrides: Any) -> tuple[Store, cfg.Experiment]:
    """The store and configuration of an existing run, with limits raised by ``overrides``
    (``generations``, ``time_budget``, ``max_evaluations``, ``max_epochs``)."""
    run_dir = Path(run_dir)
    store = Store(run_dir / FILENAME)
    values = cfg.tomllib.loads(store.config())
    raised = {k: v for k, v in overrides.items() if v is not None}
    values.update(raised)
    values["run_dir"] = str(run_dir)
    experiment = cfg.from_dict(values)
    if raised:
        toml = cfg.dumps(experiment)
        store.save_config(toml)
        (run_dir / "experiment.toml").write_text(toml)
    return store, experiment
