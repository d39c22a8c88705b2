"""The evolution engine: a generational (mu + lambda) loop with tournament selection, weighted
mutations, de-duplication, failure isolation and a checkpoint per generation in the run store.

De-duplication, failure handling and budgets live here, outside any one search algorithm, so
that every strategy gets them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
from deap import tools

import operators as ops
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


@contextlib.contextmanager
def _global_random(state: Any) -> Iterator[None]:
    """Run DEAP's selection tools (which draw from the global ``random``) on the run's own
    stream, so that nothing else touching ``random`` changes a run."""
    outside = random.getstate()
    random.setstate(state.value)
    try:
        yield
    finally:
        state.value = random.getstate()
        random.setstate(outside)


class _State:
    def __init__(self, value: Any) -> None:
        self.value = value


def _stats() -> tools.Statistics:
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    stats.register("mean", lambda v: float(np.mean(v)))
    stats.register("min", min)
    return stats


class Engine:
    """One run: its configuration, store, data, population and counters."""

    def __init__(self, experiment: cfg.Experiment, run_dir: Path, store: Store, data: Any):
        self.experiment = experiment
        self.run_dir = run_dir
        self.store = store
        self.data = data
        self.mutation_config = experiment.mutation_config()
        self.operator_names = ops.names()
        experiment.check_weights(self.operator_names)
        self.rng = random.Random(experiment.seed)
        self.selection_random = _State(random.Random(experiment.seed + 1).getstate())
        self.population: list[ops.Individual] = []
        self.hall_of_fame = tools.HallOfFame(5, similar=ops.same_genome)
        self.logbook = tools.Logbook()
        self.logbook.header = ["gen", "evals", "reused", "failed", "max", "mean", "min", "params"]
        self.generation = -1
        self.cache = store.evaluations_by_hash()
        self.seconds_before = float(store.get_meta("seconds", "0"))
        self.session_start = time.perf_counter()
        self.stopped_by = ""
        self.best_fitness = max((r["fitness"][0] for r in self.cache.values()), default=-1.0)
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
        return ""

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

    def _initial_genomes(self) -> list[Genome]:
        e, shape, classes = self.experiment, self.data.input_shape, self.data.num_classes
        bounds = self.mutation_config.bounds
        if e.init == "minimal":
            return [minimal(shape, classes)] * e.population
        if e.init == "random":
            return [
                random_genome(self.rng, shape, classes, bounds=bounds) for _ in range(e.population)
            ]
        import zoo

        names = e.zoo_names()
        return [
            retarget(zoo.load(names[i % len(names)]), shape, classes) for i in range(e.population)
        ]

    def _restore_or_start(self, reporter: Reporter) -> None:
        checkpoint = self.store.last_checkpoint()
        reporter.started(self)
        if checkpoint is None:
            self.generation = 0
            self.population = [
                ops.Individual(g, id=f"g0_{i}", generation=0)
                for i, g in enumerate(self._initial_genomes())
            ]
            self.population = self._evaluate_all(self.population, reporter)
            self._close_generation(self.population, reporter)
            return
        self._restore(checkpoint)

    def _generation(self, reporter: Reporter) -> None:
        gen = self.generation + 1
        e = self.experiment
        with _global_random(self.selection_random):
            parents = tools.selTournament(self.population, e.children, e.tournament_size)
        offspring = []
        for i, parent in enumerate(parents):
            child = ops.Individual(
                parent.genome, id=f"g{gen}_{i}", parents=[parent.id], generation=gen
            )
            ops.mutate(
                child,
                rng=self.rng,
                config=self.mutation_config,
                weights=e.weights,
                count=e.mutations_per_child,
            )
            offspring.append(child)
        self.generation = gen
        evaluated = self._evaluate_all(offspring, reporter)
        self.population = _survivors(self.population + evaluated, e.population)
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
        reused = False
        if known is not None and known["genome_hash"] == genome_hash and known["evaluation"]:
            # Re-created after a resume: the same individual, evaluated before the stop.
            result = self.store.evaluation(known["evaluation"])
            reused = bool(known["reused"])
        elif genome_hash in self.cache:
            result = self.cache[genome_hash]
            reused = True
        else:
            spec = attrs.evolve(self._spec, seed=_seed_for(self.experiment.seed, ind.id))
            result, model = evaluate_candidate(ind.genome, self.data, spec)
            result["id"] = self.store.add_evaluation(ind.id, genome_hash, result)
            self.cache[genome_hash] = result
            self.store.set_meta(seconds=self.seconds)
            if result["status"] == "ok" and result["fitness"][0] > self.best_fitness:
                self.best_fitness = result["fitness"][0]
                self._write_best_so_far(ind, model)
        self.store.add_individual(
            id=ind.id,
            generation=ind.generation,
            genome_hash=genome_hash,
            genome=dumps(ind.genome, compact=True),
            parents=ind.parents,
            operators=ind.operators,
            evaluation=result["id"],
            reused=reused,
        )
        ind.fitness.values = tuple(result["fitness"])
        ind.evaluation = result
        ind.reused = reused
        return result

    def _write_best_so_far(self, ind: ops.Individual, model: Any) -> None:
        import phenotypes as ph

        best = self.run_dir / "best"
        best.mkdir(exist_ok=True)
        (best / "genome.json").write_text(dumps(ind.genome))
        ph.save_model(best / "model.pt", ind.genome, model)

    def _close_generation(self, evaluated: list[ops.Individual], reporter: Reporter) -> None:
        self.hall_of_fame.update(evaluated)
        self.population = _survivors(self.population, len(self.population))
        record = _stats().compile(self.population)
        best = self.population[0]
        record.update(
            gen=self.generation,
            evals=sum(1 for i in evaluated if not getattr(i, "reused", False)),
            reused=sum(1 for i in evaluated if getattr(i, "reused", False)),
            failed=sum(1 for i in evaluated if i.evaluation["status"] != "ok"),
            params=best.evaluation["params"],
            seconds=round(self.seconds, 3),
        )
        self.logbook.record(**record)
        self.store.save_checkpoint(
            self.generation,
            population=[i.id for i in self.population],
            hall_of_fame=[i.id for i in self.hall_of_fame],
            logbook=list(self.logbook),
            rng=_rng_states(self.rng, self.selection_random.value),
            counters={"seconds": self.seconds, "stopped_by": self.stopped_by},
        )
        self.store.set_meta(seconds=self.seconds, generation=self.generation)
        reporter.generation_done(self, record)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.generation = checkpoint["generation"]
        self.rng.setstate(_python_state(checkpoint["rng"]["engine"]))
        self.selection_random.value = _python_state(checkpoint["rng"]["selection"])
        _restore_library_rngs(checkpoint["rng"])

        def individual(individual_id: str) -> ops.Individual:
            row = self.store.individual(individual_id)
            if row is None:
                raise StoreError(f"{self.store.path}: checkpoint names unknown {individual_id}")
            ind = ops.Individual(
                loads(row["genome"]),
                id=row["id"],
                parents=row["parents"],
                operators=row["operators"],
                generation=row["generation"],
            )
            ind.evaluation = self.store.evaluation(row["evaluation"])
            ind.reused = bool(row["reused"])
            ind.fitness.values = tuple(ind.evaluation["fitness"])
            return ind

        self.population = [individual(i) for i in checkpoint["population"]]
        self.hall_of_fame.update([individual(i) for i in checkpoint["hall_of_fame"]])
        for record in checkpoint["logbook"]:
            self.logbook.record(**record)

    # --- the end ---

    def _finish(self, reporter: Reporter) -> dict[str, Any]:
        import phenotypes as ph

        # The population keeps the best ever found (mu + lambda), ranked with size as tie-break.
        best = self.population[0]
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
                "flops": best_summary["flops"],
                "final_epochs": e.final_epochs,
                "operators": _lineage_operators(self.store, best.id),
            },
            "dataset": e.dataset,
            "generations": self.generation,
            "evaluations": self.evaluations(),
            "epochs_trained": db.execute(
                "SELECT coalesce(sum(epochs), 0) FROM evaluations"
            ).fetchone()[0],
            "dedup_hits": self.store.count("individuals", "reused = 1"),
            "failures": self.store.count("evaluations", "status != 'ok'"),
            "individuals": self.store.count("individuals"),
            "seconds": round(self.seconds, 3),
            "final_training_seconds": best_summary["seconds"],
            "stopped_by": self.stopped_by,
            "device": self.device,
            "run_dir": str(self.run_dir),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def _rank(ind: ops.Individual) -> tuple[float, float]:
    params = ind.evaluation.get("params")
    return (ind.fitness.values[0], -params if params is not None else -float("inf"))


def _survivors(individuals: list[ops.Individual], k: int) -> list[ops.Individual]:
    """The ``k`` fittest, best first (``tools.selBest``), ties going to the smaller network:
    validation accuracy saturates on small data, and then size is what tells candidates apart."""
    return sorted(individuals, key=_rank, reverse=True)[:k]


def _lineage_operators(store: Store, individual_id: str) -> list[str]:
    """Every mutation from the first generation to ``individual_id``, oldest first."""
    chain: list[str] = []
    row = store.individual(individual_id)
    while row is not None:
        chain[:0] = row["operators"]
        row = store.individual(row["parents"][0]) if row["parents"] else None
    return chain


def _rng_states(engine: random.Random, selection: Any) -> dict[str, Any]:
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    states = {
        "engine": _json_state(engine.getstate()),
        "selection": _json_state(selection),
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
    (``generations``, ``time_budget``, ``max_evaluations``)."""
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
