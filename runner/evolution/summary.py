"""The end of a search: its champion trained again, and the summary (``RUN_DIR/summary.json``)
of the best network and of what the search spent and found."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import field, frozen

from genomics import canonical_hash, dumps

from .. import faults
from ..files import train_and_write, write_text_atomic
from ..records import converter
from ..store import Store
from .state import Snapshot


@frozen
class BestSummary:
    """The best network of a run, as trained again at the end. With a user evaluation it is
    not trained again (``final_from = "none"``): its figures are its evaluation's, ``None``
    where the evaluation gave none, and ``metrics`` all the metrics it gave."""

    id: str
    generation: int
    genome_hash: str
    search_val_accuracy: float
    val_accuracy: float
    test_accuracy: float | None
    params: int | None
    size_bytes: int | None
    flops: int | None
    final_epochs: int
    operators: tuple[str, ...] = field(converter=tuple)
    #: Where its final training started: ``scratch`` or its search ``weights``.
    final_from: str = "scratch"
    #: What made it the best: the run's ranking (``strategies.Ranking.objective``).
    ranked_by: str = "val_accuracy, then fewer params"
    #: A user evaluation's metrics of it (None with the built-in training).
    metrics: dict[str, Any] | None = None


@frozen
class Summary:
    """``RUN_DIR/summary.json``. ``seconds`` is the search's time; the final training's is
    ``final_training_seconds``. ``objectives`` and ``pareto_front`` only in multi-objective
    runs."""

    best: BestSummary
    dataset: str
    strategy: tuple[str, ...] = field(converter=tuple)
    strategies: tuple[str, ...] = field(converter=tuple)
    phase: str
    generations: int
    evaluations: int
    epochs_trained: int
    epochs_saved: int
    extinct: int
    dedup_hits: int
    failures: int
    individuals: int
    seconds: float
    final_training_seconds: float
    stopped_by: str
    device: str
    run_dir: str
    disk_bytes: int = 0
    #: Bytes and files of RUN_DIR/weights/ at the end (with inheritance: about the
    #: population's networks).
    weights_bytes: int = 0
    weights_files: int = 0
    #: Where candidates trained: ``serial``, ``local`` or ``ray``, with how many workers and
    #: the seconds they waited for work in all (None where the executor cannot tell).
    executor: str = "serial"
    workers: int = 1
    worker_idle_seconds: float | None = 0.0
    objectives: tuple[str, ...] | None = None
    pareto_front: tuple[dict[str, Any], ...] | None = None
    #: The user evaluation that gave every candidate its metrics; None: the built-in training.
    evaluation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = converter.unstructure(self)
        for key in ("objectives", "pareto_front", "evaluation"):
            if out[key] is None:
                del out[key]
        if out["best"]["metrics"] is None:
            del out["best"]["metrics"]
        return out


def lineage_operators(store: Store, individual_id: str) -> list[str]:
    """Every operator applied from the first generation to ``individual_id``, oldest first
    (following first parents)."""
    chain: list[str] = []
    row = store.individual(individual_id)
    while row is not None:
        chain[:0] = row["operators"]
        row = store.individual(row["parents"][0]) if row["parents"] else None
    return chain


def summarize(
    run: Snapshot, store: Store, best: Any, final: dict[str, Any], disk: tuple[int, int, int]
) -> Summary:
    """The run's :class:`Summary` from a snapshot of it: ``best`` is the individual reported,
    ``final`` the summary of its final training; ``run.seconds`` is the search's time without
    that training; ``disk`` the run directory's bytes, and its weight files' bytes and count."""
    e = run.experiment
    totals = store.totals()
    return Summary(
        best=BestSummary(
            id=best.id,
            generation=best.generation,
            genome_hash=canonical_hash(best.genome),
            search_val_accuracy=best.fitness.values[0],
            val_accuracy=final["val_accuracy"],
            test_accuracy=final["test_accuracy"],
            params=final["params"],
            size_bytes=final["size_bytes"],
            flops=final["flops"],
            final_epochs=final.get("final_epochs", e.final_epochs),
            operators=lineage_operators(store, best.id),
            final_from=final.get("final_from", "scratch"),
            ranked_by=run.ranking.objective,
            metrics=final.get("metrics"),
        ),
        dataset=e.dataset,
        strategy=e.strategy,
        strategies=run.strategies,
        phase=run.phase,
        generations=run.generation,
        evaluations=run.evaluations,
        epochs_trained=run.epochs_spent,
        epochs_saved=totals["epochs_saved"],
        extinct=totals["extinct"],
        dedup_hits=totals["dedup_hits"],
        failures=totals["failures"],
        individuals=totals["individuals"],
        seconds=round(run.seconds, 3),
        final_training_seconds=final["seconds"],
        stopped_by=run.stopped_by,
        device=run.device,
        run_dir=str(run.run_dir),
        disk_bytes=disk[0],
        weights_bytes=disk[1],
        weights_files=disk[2],
        **run.executor_stats,
        objectives=run.objectives if run.front is not None else None,
        pareto_front=run.front,
        evaluation=e.evaluation or None,
    )


def champion(run: Snapshot) -> Any:
    """The best individual ever evaluated (not the best of the last population: a strategy
    may let the best die): the engine's best, by the run's ranking (``Engine.ranking``), the
    first in candidate order among equals; its weights are the ones the run kept."""
    if run.best is not None:
        return run.best
    # Nothing finished: the least bad.
    return sorted(run.population, key=run.ranking.key, reverse=True)[0]


def _search_weights(files: Any, best: Any) -> Any:
    """The network ``best`` was in the search, trained as it was then (None when no file of
    it is kept)."""
    import phenotypes as ph

    for saved in (files.best / "model.pt", files.weights_of(best.id)):
        if saved.is_file():
            genome, model = ph.load_model(saved)
            if canonical_hash(genome) == canonical_hash(best.genome):
                return model
    return None  # only an equally accurate, larger network's


def finish(engine: Any, reporter: Any) -> dict[str, Any]:
    """Train the run's champion again (``final_epochs``; 0 keeps its search weights), write
    ``best/`` and ``summary.json``, and return the summary. With ``final_from = "weights"``
    the final training goes on from its search weights instead of starting from scratch."""
    e, files = engine.experiment, engine.files
    run = engine.snapshot()  # the search as it ended, before the final training
    best = champion(run)
    faults.reached("final")
    if e.evaluation:
        final = _as_evaluated(files, best)
    else:
        final = _trained_again(engine, run, best, reporter)
    engine.store.set_meta(seconds=run.seconds)
    engine.store.fold_log()
    disk = (files.disk_usage(), *files.weights_usage())
    summary = summarize(run, engine.store, best, final, disk).to_dict()
    files.write_summary(summary)
    return summary


def _trained_again(engine: Any, run: Snapshot, best: Any, reporter: Any) -> dict[str, Any]:
    """The final training of ``best``, written to ``best/``; its summary."""
    e, files = engine.experiment, engine.files
    reporter.final_training(run, best.genome)
    spec = attrs.evolve(engine.spec, seed=e.seed, epochs=e.final_epochs or e.epochs)
    model = start = None
    if not e.final_epochs:
        model = _search_weights(files, best)
    elif e.final_from == "weights":
        start = _search_weights(files, best)  # none kept: from scratch, as the summary says
    final, _ = train_and_write(
        best.genome, best.id, engine.data, e.dataset, spec, files.best, model=model, start=start
    )
    final["final_from"] = "weights" if start is not None or model is not None else "scratch"
    return final


def _as_evaluated(files: Any, best: Any) -> dict[str, Any]:
    """The summary of ``best`` of a run with a user evaluation, which trains no network to
    train again: its evaluation's figures; ``best/`` holds its genome only."""
    files.best.mkdir(exist_ok=True)
    write_text_atomic(files.best / "genome.json", dumps(best.genome))
    evaluation = best.evaluation
    return {
        "val_accuracy": evaluation.val_accuracy or 0.0,
        "test_accuracy": evaluation.metrics.get("test_accuracy"),
        "params": evaluation.params,
        "size_bytes": evaluation.size_bytes,
        "flops": evaluation.flops,
        "seconds": 0.0,
        "final_from": "none",
        "final_epochs": 0,
        "metrics": dict(evaluation.metrics),
    }
