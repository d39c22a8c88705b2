"""Typed records that cross the runner's boundaries: a candidate to evaluate (:class:`Task`),
its result (:class:`Evaluation`), the counters a checkpoint carries (:class:`Counters`) and the
run's summary (:class:`Summary`). Frozen attrs classes, converted to JSON with cattrs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import Any

import cattrs
from attrs import field, frozen
from cattrs.gen import make_dict_unstructure_fn, override

from genomics import Genome

#: The limits that stop a training before its last epoch, by the name the store and
#: ``summary.json`` give them (``stopped_by``).
TIME_BUDGET, MAX_EPOCHS = "time budget", "epochs"


class Status(str, enum.Enum):
    """How an evaluation ended. A ``str`` enum: ``status == "ok"`` holds, and it is stored as
    its value."""

    OK = "ok"
    FAILED = "failed"
    #: Stopped by accelerated extinction at a landmark epoch.
    EXTINCT = "extinct"
    #: Stopped by something else: a strategy's own stop, or the run's time budget.
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


# Failures whose cause may not repeat (a busy or shared machine, a lost worker): their genome
# deserves another try, so their result is never reused. Stores written before the flag existed
# are judged by the reason's text.
_TRANSIENT_MARKS = ("timeout:", "out of memory", "OutOfMemoryError", "CUDA error", "worker died")


def transient_reason(reason: str) -> bool:
    """Whether a failure with this reason may go otherwise when tried again."""
    return any(mark in reason for mark in _TRANSIENT_MARKS)


#: The keys an :class:`Evaluation` answers to as a mapping (what strategies read).
_KEYS = (
    "id",
    "status",
    "reason",
    "fitness",
    "val_accuracy",
    "params",
    "size_bytes",
    "flops",
    "latency_ms",
    "epochs",
    "seconds",
    "history",
    "metrics",
    "planned_epochs",
)


@frozen
class Evaluation(Mapping):
    """The result of evaluating one candidate: failure is data, never an exception.

    ``fitness`` is what selection compares (validation accuracy first, then the costs a
    multi-objective run minimises; 0 and infinite costs on failure); ``history`` holds one
    ``{"epoch", "train_loss", "val_accuracy"}`` per trained epoch; ``metrics`` the rest
    (``planned_epochs``, ``teacher``, ``device``, ``stage``, ``limit``, extinction details,
    ``transient``, ``stopped_by``). ``id`` is its row in the run store once stored.

    Strategies may read it as the read-only dict it was in earlier versions
    (``evaluation["status"]``, ``evaluation.get("params")``).
    """

    status: Status = field(converter=Status)
    reason: str = ""
    fitness: tuple[float, ...] = field(default=(0.0,), converter=tuple)
    val_accuracy: float | None = None
    params: int | None = None
    size_bytes: int | None = None
    flops: int | None = None
    epochs: int = 0
    seconds: float = 0.0
    history: tuple[dict[str, Any], ...] = field(default=(), converter=tuple)
    metrics: dict[str, Any] = field(factory=dict)
    id: int | None = None
    #: Inference latency per image on the run's device, in milliseconds; measured only when
    #: the run needs it (``max_latency_ms``, a ``latency_ms`` objective or a strategy's ask).
    latency_ms: float | None = None

    @property
    def planned_epochs(self) -> int:
        """The epochs the candidate was to train (all of them, when it finished)."""
        return self.metrics.get("planned_epochs", self.epochs)

    @property
    def trained_epochs(self) -> int:
        """The epochs this training added: all of them, but for a promotion (rungs), which
        went on from the ``metrics.start_epoch`` epochs its candidate had at its rung."""
        return self.epochs - self.metrics.get("start_epoch", 0)

    @property
    def teacher(self) -> str | None:
        """The individual it distilled from (mimicry), if any."""
        return self.metrics.get("teacher")

    @property
    def inherited_from(self) -> str | None:
        """The individual whose trained weights it started from (weight inheritance), if
        any; None for a training from scratch."""
        return self.metrics.get("inherited_from")

    @property
    def transient(self) -> bool:
        """A failure that may not repeat (a timeout, running out of memory, a lost worker)."""
        if self.status != Status.FAILED:
            return False
        return bool(self.metrics.get("transient", transient_reason(self.reason)))

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    # Mapping access, for strategies written against the dict of earlier versions. attrs
    # puts its own __eq__ and __hash__ on the class, so records compare by their fields.
    def __getitem__(self, key: str) -> Any:
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)


@frozen
class Task:
    """A candidate handed to an executor: train ``genome`` for ``epochs`` with ``seed``
    (derived from the run seed and the individual's id), distilling from ``teacher`` (an
    individual whose weights the run keeps) when given. A result depends on these fields only,
    never on where or when it runs. ``inherit_from`` names the individual whose trained weights
    (kept in the run's ``weights/``) the network starts from; None: from scratch."""

    individual: str
    genome: Genome
    genome_hash: str
    generation: int
    seed: int
    epochs: int
    teacher: str | None = None
    distill_temperature: float = 4.0
    distill_weight: float = 0.5
    #: Its lineage, for the individual per-epoch hooks see.
    parents: tuple[str, ...] = field(default=(), converter=tuple)
    operators: tuple[str, ...] = field(default=(), converter=tuple)
    phase: str = ""
    inherit_from: str | None = None
    #: Nodes that copy one of ``inherit_from``'s under another id (gene duplication), as
    #: ``(copy id, original id)`` pairs: they inherit their original's weights.
    copies: tuple[tuple[str, str], ...] = field(default=(), converter=tuple)
    #: The epochs ``max_epochs`` leaves it, fewer than ``epochs`` (None: all of them): it
    #: stops after them, the first ``stop_after`` epochs of its planned training.
    stop_after: int | None = None
    #: The share of the training split it trains on: below 1, the seeded subset
    #: ``runner.execution.base.training_subset`` draws with ``data_seed`` (the same for every
    #: candidate).
    data_fraction: float = 1.0
    data_seed: int = 0
    #: The rung schedule it is part of (``runner.evolution.rungs.Schedule.key``: the epochs at
    #: each rung and their data shares; ``()``: a training of fixed epochs), and the rung it
    #: trains to.
    #: A promotion (rung > 0) inherits from its own weights at the rung before.
    schedule: tuple = field(default=(), converter=tuple)
    rung: int = 0
    #: The user evaluation that gives its metrics (``runner.evaluations``; ``""``: the
    #: built-in training).
    evaluation: str = ""

    @property
    def planned_epochs(self) -> int:
        """The epochs of its whole planned training: a rung schedule's last rung, or
        ``epochs``."""
        return self.schedule[0][-1] if self.schedule else self.epochs

    @property
    def key(self) -> tuple:
        """What decides its result beyond the seed, for reuse: see :func:`reuse_key`. A task
        of a rung schedule is planned for the schedule's last rung."""
        return reuse_key(
            self.genome_hash,
            self.planned_epochs,
            self.teacher,
            self.inherit_from,
            self.schedule,
            self.evaluation,
        )


def reuse_key(
    genome_hash: str,
    planned_epochs: int,
    teacher: str | None,
    inherited_from: str | None = None,
    schedule: tuple = (),
    evaluation: str = "",
) -> tuple:
    """De-duplication reuses a result only for the same structure trained the same way: the
    same planned epochs (succession trains for half of them in its primary phase), the same
    teacher (mimicry), the same starting weights (a parent's, or none), the same rung
    schedule (``()`` for a training of fixed epochs: rungs train in segments, each with its
    own learning-rate schedule, so 1 + 2 + 6 epochs is not a training of 9) and the same
    evaluation (a user evaluation's name; the built-in training's key has none, as before
    there were others, so stores written then reuse as they did)."""
    key = (genome_hash, planned_epochs, teacher, inherited_from, schedule)
    return (*key, evaluation) if evaluation else key


@frozen
class EvaluationContext:
    """What a user evaluation (``runner.evaluations``) is told of the candidate it evaluates:
    what its built-in training would have had. ``epochs`` are this evaluation's (a rung
    promotion's: those it adds to the ``start_epoch`` its candidate has), ``planned_epochs``
    those of its whole planned training; ``data_fraction`` the share of the training split it
    would train on (rungs), ``rung`` its rung (0 without rungs), ``parents`` its parents'
    ids."""

    individual: str
    generation: int
    seed: int
    epochs: int
    planned_epochs: int
    start_epoch: int = 0
    data_fraction: float = 1.0
    rung: int = 0
    parents: tuple[str, ...] = field(default=(), converter=tuple)
    phase: str = ""


def schedule_key(metrics: Mapping[str, Any]) -> tuple:
    """The rung schedule an evaluation records (``metrics.rungs``, ``metrics.data_fractions``)
    as :attr:`Task.schedule` holds it; ``()`` for a training of fixed epochs."""
    if "rungs" not in metrics:
        return ()
    return (tuple(metrics["rungs"]), tuple(metrics.get("data_fractions", ())))


def evaluation_key(genome_hash: str, evaluation: Evaluation) -> tuple:
    """The reuse key of a finished evaluation, from what it records of its training (a child
    whose parent's weights could not be loaded trained from scratch, and is keyed so)."""
    return reuse_key(
        genome_hash,
        evaluation.planned_epochs,
        evaluation.teacher,
        evaluation.inherited_from,
        schedule_key(evaluation.metrics),
        evaluation.metrics.get("evaluation", ""),
    )


@frozen
class Counters:
    """What a checkpoint carries besides populations and states. ``evaluations`` and
    ``epochs`` are None in stores written before they were counted (the store is counted
    instead)."""

    seconds: float = 0.0
    stopped_by: str = ""
    phase: str = ""
    #: The best so far (first to reach the highest validation accuracy): mimicry's teacher.
    best: str | None = None
    best_fitness: float = -1.0
    evaluations: int | None = None
    epochs: int | None = None
    failures_in_a_row: int = 0
    last_failures: tuple[str, ...] = field(default=(), converter=tuple)
    #: Asynchronous evolution: the children still training (``evolution.steady``).
    in_flight: tuple[dict[str, Any], ...] = field(default=(), converter=tuple)


@frozen
class Checkpoint:
    """A generation's end, enough to go on from it: the population and hall of fame (ids), the
    logbook, every generator's state (:mod:`runner.rng`), the counters and the strategies'
    state."""

    generation: int
    population: tuple[str, ...] = field(converter=tuple)
    hall_of_fame: tuple[str, ...] = field(converter=tuple)
    logbook: tuple[dict[str, Any], ...] = field(converter=tuple)
    rng: dict[str, Any]
    counters: Counters
    strategy: dict[str, Any]


converter = cattrs.Converter()
converter.register_unstructure_hook(Status, lambda s: s.value)
converter.register_structure_hook(Status, lambda v, _: Status(v))
# A generational run's checkpoints stay as they were before asynchronous runs had children
# still training to name.
converter.register_unstructure_hook(
    Counters,
    make_dict_unstructure_fn(Counters, converter, in_flight=override(omit_if_default=True)),
)


def counters_from(values: dict[str, Any]) -> Counters:
    """Counters from a checkpoint's JSON, any version (missing keys take their defaults)."""
    names = {a.name for a in Counters.__attrs_attrs__}
    return converter.structure({k: v for k, v in values.items() if k in names}, Counters)


def event(
    generation: int, kind: str, source: str, individual: str | None, data: dict
) -> dict[str, Any]:
    """One event as the store keeps it (the ``events`` table): what happened (``kind``), who
    decided it (``source``: a strategy, ``engine``), about which individual (None: the
    generation), with its ``data``."""
    return {
        "generation": generation,
        "source": source,
        "kind": kind,
        "individual": individual,
        "data": data,
    }
