"""Executors: what trains candidates. The engine submits :class:`~runner.records.Task`
records, up to an executor's ``capacity`` at a time, and takes :class:`Outcome` records back
as trainings finish, in any order.

The contract every executor keeps:

- A result depends only on its task (genome, seed, planned epochs, teacher), never on which
  worker ran it or when: every executor trains through :func:`train_task`.
- After every trained epoch the generation's judge decides whether the training goes on
  (:mod:`runner.judge`); a :class:`strategies.Stop` ends it with its status and details.
- Failure is data: a candidate that raises, diverges, times out or loses its worker is a failed
  evaluation. Only KeyboardInterrupt (and the engine's own exceptions raised in its process)
  escape.

Three implementations: :class:`SerialExecutor` (here, one task at a time in the engine's
process), ``runner.execution.local.LocalExecutor`` (long-lived worker processes) and
``runner.execution.ray_cluster.RayExecutor`` (Ray tasks); :func:`make_executor` picks one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs

from .. import rng
from ..judge import JudgeSnapshot, epochs_stop
from ..records import Evaluation, Status, Task
from .training import evaluate_candidate

#: ``judge(task, epoch, epochs, val_accuracy) -> strategies.Stop | None``
JudgeFunction = Callable[[Task, int, int, float], Any]


@attrs.frozen
class Judge:
    """A generation's judge: ``snapshot`` for other processes, ``local`` (the engine's live
    strategies, with the same state) for the engine's own."""

    snapshot: JudgeSnapshot
    local: JudgeFunction


@attrs.frozen
class Outcome:
    """A finished task: its evaluation, and the trained network as a model (trained in this
    process) or as the bytes of a model file (trained elsewhere); neither on failure.
    ``events`` were recorded by the strategies while judging it elsewhere; ``worker`` names
    where it ran."""

    task: Task
    evaluation: Evaluation
    model: Any = None
    model_bytes: bytes | None = None
    events: tuple[dict[str, Any], ...] = ()
    worker: str = "main"


class Executor(Protocol):
    """Trains tasks; see the module docstring for the contract."""

    #: Tasks it trains at once.
    capacity: int

    def submit(self, task: Task, judge: Judge) -> None: ...

    def next(self) -> Outcome:
        """The next task to finish (blocks until one does)."""
        ...

    def busy(self) -> dict[str, str]:
        """What each worker is training, by worker name (for the display)."""
        ...

    def stats(self) -> dict[str, Any]:
        """``executor``, ``workers`` and ``worker_idle_seconds``, for the run's summary."""
        ...

    def close(self) -> None: ...


def train_task(
    task: Task,
    data: Any,
    spec: Any,
    judge: JudgeFunction,
    teacher: Callable[[str], Any] | None = None,
    timeout: float = 0.0,
    parent: Callable[[str], tuple[Any, Any]] | None = None,
    user: Callable[[Task, float], Evaluation] | None = None,
) -> tuple[Evaluation, Any]:
    """Train ``task`` as every executor does: ``spec`` with the task's seed, epochs and
    distillation, judged after every epoch, with PyTorch's global generators left as found
    (``teacher(id)`` loads the task's teacher, in there too); a task that inherits starts
    from the weights ``parent(id)`` loads (``(genome, model)``), or from scratch, the reason
    recorded, when they cannot be loaded; a task with ``stop_after`` stops after that epoch;
    one with a ``data_fraction`` below 1 trains on that seeded share of the training split.
    Returns the evaluation (with the task's planned epochs and teacher, and the stop that
    ended it) and the model (None on failure).

    With the run's user evaluation ``user`` (``runner.execution.user``) nothing is trained:
    its evaluation of the task, and no model."""
    if user is not None:
        return user(task, timeout), None
    from phenotypes import StopTraining

    if task.data_fraction < 1:
        data = training_subset(data, task.data_fraction, task.data_seed)

    spec = attrs.evolve(
        spec,
        seed=task.seed,
        epochs=task.epochs,
        distill_temperature=task.distill_temperature,
        distill_weight=task.distill_weight,
    )
    stops: list[Any] = []

    def on_epoch(metrics: Any) -> None:
        stop = judge(task, metrics.epoch, task.epochs, metrics.val_accuracy)
        if stop is None and task.stop_after is not None and metrics.epoch >= task.stop_after:
            stop = epochs_stop(metrics.epoch)
        if stop is not None:
            stops.append(stop)
            raise StopTraining(stop.reason)

    # Training seeds itself; anything else drawing from PyTorch's global generators (a
    # teacher's loading) must leave them as it found them.
    prepare = None
    if task.inherit_from is not None:

        def prepare(model: Any) -> dict[str, Any]:
            return inherit(task, model, data, parent)

    with rng.forked(spec.device):
        model = teacher(task.teacher) if task.teacher is not None and teacher else None
        evaluation, model = evaluate_candidate(
            task.genome,
            data,
            spec,
            on_epoch=on_epoch,
            teacher=model,
            timeout=timeout,
            prepare=prepare,
        )
    metrics = {**evaluation.metrics, "planned_epochs": task.epochs}
    if task.teacher is not None:
        metrics["teacher"] = task.teacher
    status = evaluation.status
    if stops and status == Status.STOPPED:
        status = Status(stops[0].status)
        metrics.update(stops[0].details, epochs_saved=task.epochs - evaluation.epochs)
    return attrs.evolve(evaluation, status=status, metrics=metrics), model


def inherit(
    task: Task, model: Any, data: Any, parent: Callable[[str], tuple[Any, Any]] | None
) -> dict[str, Any]:
    """Give ``model`` (``task``'s network, just compiled) its parent's weights; the metrics
    to record: where they came from, how much was copied, and the validation accuracy before
    any training. A parent whose weights cannot be loaded leaves the model as compiled."""
    import phenotypes as ph

    try:
        if parent is None:
            raise FileNotFoundError("this executor has no parent weights")
        genome, source = parent(task.inherit_from)
        report = ph.inherit_weights(model, task.genome, source, genome, dict(task.copies))
    except Exception as exc:  # a missing or corrupt file: from scratch, never a crash
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return {"inherit_failed": f"weights of {task.inherit_from}: {reason}"}
    metrics: dict[str, Any] = {
        "inherited_from": task.inherit_from,
        "inherited_fraction": round(report.fraction, 6),
    }
    for name in ("identity", "zeroed", "fresh"):
        if getattr(report, name):
            metrics[f"inherited_{name}"] = list(getattr(report, name))
    metrics["start_val_accuracy"] = ph.evaluate(model, data.x_val, data.y_val)
    return metrics


def load_parent(weights_dir: Path) -> Callable[[str], tuple[Any, Any]]:
    """``parent(id)``: the genome and trained network of ``weights_dir/ID.pt``."""

    def parent(individual: str) -> tuple[Any, Any]:
        import phenotypes as ph

        return ph.load_model(Path(weights_dir) / f"{individual}.pt")

    return parent


def model_bytes(genome: Any, model: Any) -> bytes:
    """A trained network as the bytes of its model file (``phenotypes.save_model``)."""
    import phenotypes as ph

    buffer = io.BytesIO()
    ph.save_model(buffer, genome, model)
    return buffer.getvalue()


class TeacherCache:
    """The teacher's network for mimicry, loaded from its weight file once and kept while the
    trainings it teaches follow one another (a generation has one teacher)."""

    def __init__(self, weights_dir: Path) -> None:
        self.weights_dir = Path(weights_dir)
        self._teacher: tuple[str, Any] | None = None

    def __call__(self, teacher: str) -> Any:
        if self._teacher is None or self._teacher[0] != teacher:
            import phenotypes as ph

            _, model = ph.load_model(self.weights_dir / f"{teacher}.pt")
            self._teacher = (teacher, model)
        return self._teacher[1]

    def clear(self) -> None:
        self._teacher = None


_subsets: dict[tuple[int, float, int], tuple[Any, Any]] = {}


def training_subset(data: Any, fraction: float, seed: int) -> Any:
    """``data`` with its training split cut to ``fraction`` of it: of each class, the first
    ``ceil(fraction * count)`` images (at least one) in an order ``seed`` draws. The same
    images for every candidate and every worker, and a larger share holds a smaller one's (the
    order does not depend on the share). The validation split stays whole, so rungs compare
    on the same images."""
    if fraction >= 1:
        return data
    key = (id(data), fraction, seed)
    if key in _subsets and _subsets[key][0] is data:
        return _subsets[key][1]
    import numpy as np
    import torch

    labels = data.y_train.cpu().numpy()
    rng = np.random.default_rng(seed)
    kept = []
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        order = where[rng.permutation(len(where))]
        kept.append(order[: max(1, math.ceil(fraction * len(where)))])
    index = torch.as_tensor(np.sort(np.concatenate(kept)), device=data.y_train.device)
    subset = attrs.evolve(data, x_train=data.x_train[index], y_train=data.y_train[index])
    if len(_subsets) >= 4:  # a run's rungs; kept small, as they may live in GPU memory
        _subsets.clear()
    _subsets[key] = (data, subset)
    return subset
