"""The Python API: run a search (:func:`evolve`) and read a finished or stopped one
(:func:`open_run`, :class:`Run`), with the same sessions, checks and run directories as the
``ecogen`` command line (README "Python API")::

    from runner import evolve, open_run

    run = evolve({"dataset": "digits", "generations": 3}, run_dir="runs/demo")
    print(run.best.id, run.best.val_accuracy)
    run = open_run("runs/demo").resume(generations=6)  # a stopped run goes on the same way

``evaluate`` puts a user evaluation (``runner.evaluations``, docs/evaluations.md) in place of
the built-in training: a function ``(genome, context) -> metrics``, or the name of one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from genomics import Genome, loads

from . import config as cfg
from . import evaluations
from .errors import ConfigError, RunError
from .evolution.state import Reporter
from .records import Evaluation
from .session import claim, prepare_resume, prepare_start
from .store import FILENAME, Store

__all__ = ["Best", "Individual", "Run", "evolve", "open_run"]

#: What ``evaluate`` takes: a function ``(genome, context) -> metrics``, or a registered name.
Evaluate = evaluations.EvaluationFunction | str


@attrs.frozen
class Individual:
    """One individual of a run as its store holds it: its genome, lineage and the evaluation
    it has (``reused``: another individual's result, for the same genome trained the same
    way)."""

    id: str
    generation: int
    genome_hash: str
    genome: Genome
    parents: tuple[str, ...]
    operators: tuple[str, ...]
    phase: str
    reused: bool
    evaluation: Evaluation | None


@attrs.frozen
class Best:
    """A run's best individual: its search evaluation's ``val_accuracy``, ``params`` and
    ``metrics`` (a user evaluation's own among them), and the whole ``evaluation``."""

    id: str
    generation: int
    genome: Genome
    val_accuracy: float | None
    params: int | None
    metrics: dict[str, Any]
    evaluation: Evaluation


class Run:
    """A run directory: its configuration, summary, store and best."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r})"

    def _store(self) -> Store:
        return Store(self.run_dir / FILENAME, readonly=True)

    @property
    def experiment(self) -> cfg.Experiment:
        """The run's configuration, as stored (with the limits a resume raised)."""
        with self._store() as store:
            values = cfg.tomllib.loads(store.config())
        return cfg.from_dict({**cfg.introduced(values), **values, "run_dir": str(self.run_dir)})

    @property
    def status(self) -> str:
        """``running``, ``interrupted``, ``stopped``, ``searched`` or ``complete``."""
        with self._store() as store:
            return store.get_meta("status") or "created"

    @property
    def summary(self) -> dict[str, Any] | None:
        """``summary.json`` (None until the run is complete)."""
        path = self.run_dir / "summary.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    @property
    def best(self) -> Best | None:
        """The best individual: the summary's once complete, else the best as of the last
        generation's end (None before the first one ends)."""
        summary = self.summary
        with self._store() as store:
            if summary is not None:
                best_id = summary["best"]["id"]
            else:
                checkpoint = store.last_checkpoint()
                best_id = checkpoint.counters.best if checkpoint is not None else None
            row = store.individual(best_id) if best_id else None
            if row is None:
                return None
            evaluation = store.evaluation(row["evaluation"])
        return Best(
            id=row["id"],
            generation=row["generation"],
            genome=loads(row["genome"]),
            val_accuracy=evaluation.val_accuracy,
            params=evaluation.params,
            metrics=dict(evaluation.metrics),
            evaluation=evaluation,
        )

    def individuals(self) -> Iterator[Individual]:
        """Every individual of the run, in the order they were made."""
        with self._store() as store:
            rows = list(store.individuals())
            evaluations_of = {
                r["id"]: store.evaluation(r["evaluation"]) if r["evaluation"] else None
                for r in rows
            }
        for row in rows:
            yield Individual(
                id=row["id"],
                generation=row["generation"],
                genome_hash=row["genome_hash"],
                genome=loads(row["genome"]),
                parents=tuple(row["parents"]),
                operators=tuple(row["operators"]),
                phase=row["phase"] or "",
                reused=bool(row["reused"]),
                evaluation=evaluations_of[row["id"]],
            )

    def resume(
        self,
        *,
        data: Any = None,
        evaluate: Evaluate | None = None,
        reporter: Reporter | None = None,
        **changes: Any,
    ) -> Run:
        """Continue the run from where it stopped, to the result it would have had never
        stopped (``ecogen resume``); ``changes`` raise its limits (``generations=30``) or
        change what changes no result (``workers``, ``keep_weights``). A run evaluated by a
        function registered at run time needs ``evaluate`` again: the same function."""
        if evaluate is not None:
            stored = self.experiment.evaluation
            name = _registered(evaluate)
            if name != stored:
                raise RunError(
                    f"{self.run_dir}: this run is evaluated by {stored or 'the built-in training'};"
                    f" evaluate is {name}"
                )
        resumption = prepare_resume(self.run_dir, **changes)
        for note in resumption.notes:
            _warn(note)
        try:
            data = data if data is not None else _load(resumption.experiment)
        except BaseException:
            resumption.abandon()
            raise
        _run(resumption.engine(data), reporter)
        return self


def open_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir`` (finished, stopped or running); RunError when there is none."""
    run = Run(run_dir)
    if not (run.run_dir / FILENAME).is_file():
        raise RunError(f"{run.run_dir}: no run here (no {FILENAME})")
    return run


def evolve(
    config: cfg.Experiment | Mapping[str, Any] | str | Path,
    *,
    data: Any = None,
    evaluate: Evaluate | None = None,
    run_dir: str | Path | None = None,
    reporter: Reporter | None = None,
) -> Run:
    """Run a new search to its end and return it (``ecogen evolve``).

    ``config`` is an :class:`~runner.config.Experiment`, a mapping of config keys or the
    path of a TOML experiment file; ``run_dir`` (else the config's, else
    ``runs/DATASET-TIME``) must hold no run yet: continue one with ``open_run(dir).resume()``.
    ``data`` is a ``phenotypes.Dataset`` (default: the config's dataset, loaded as the command
    line does); ``evaluate`` a user evaluation in place of training (its config key
    ``evaluation``); ``reporter`` what the engine tells of its progress (default: nothing).
    Ctrl-C stops it with everything kept (resume it then)."""
    experiment = _experiment(config)
    if run_dir is not None:
        experiment = attrs.evolve(experiment, run_dir=str(run_dir))
    if not experiment.run_dir:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = re.sub(r"[^\w.-]+", "_", experiment.dataset).strip("_")
        experiment = attrs.evolve(experiment, run_dir=str(Path("runs") / f"{name}-{stamp}"))
    if evaluate is not None:
        experiment = attrs.evolve(experiment, evaluation=_registered(evaluate))
    # A bad value, a missing GPU or Ray cluster fails here, before the data is loaded or the
    # run directory exists.
    new_run = prepare_start(experiment)
    for note in new_run.notes:
        _warn(note)
    lock = claim(experiment.run_dir)
    try:
        data = data if data is not None else _load(experiment)
        engine = new_run.engine(data, lock=lock)
    except BaseException:
        lock.release()
        raise
    _run(engine, reporter)
    return Run(experiment.run_dir)


def _experiment(config: cfg.Experiment | Mapping[str, Any] | str | Path) -> cfg.Experiment:
    if isinstance(config, cfg.Experiment):
        return config
    if isinstance(config, Mapping):
        return cfg.from_dict(dict(config))
    if isinstance(config, (str, Path)):
        return cfg.from_dict(cfg.load(config))
    raise ConfigError(
        f"config: must be an Experiment, a mapping of config keys or a TOML file's path,"
        f" got {type(config).__name__}"
    )


def _registered(evaluate: Evaluate) -> str:
    """The name ``evaluate`` goes by in the run: a name as given; a function as
    ``MODULE:QUALNAME``, registered under it (again, when redefined: it is this function the
    caller means)."""
    if isinstance(evaluate, str):
        return evaluate
    if not callable(evaluate):
        raise ConfigError(
            f"evaluate: must be a function (genome, context) -> metrics or an evaluation's"
            f" name, got {type(evaluate).__name__}"
        )
    name = evaluations.name_of(evaluate)
    known = evaluations.EVALUATIONS.extra.get(name)
    if known is not None and known.function is not evaluate:
        del evaluations.EVALUATIONS.extra[name]
    try:
        evaluations.register(name, evaluate)
    except evaluations.PluginError as exc:
        raise ConfigError(f"evaluate: {exc}") from None
    return name


def _load(experiment: cfg.Experiment) -> Any:
    import phenotypes as ph

    return ph.load_dataset(experiment.dataset, experiment.data_dir, seed=experiment.seed)


def _run(engine: Any, reporter: Reporter | None) -> None:
    try:
        engine.run(reporter)
    finally:
        engine.store.close()


def _warn(note: str) -> None:
    import warnings

    warnings.warn(note, stacklevel=3)
