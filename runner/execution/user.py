"""A user evaluation in place of the built-in training (``runner.evaluations``): the function
called where :func:`~runner.execution.base.train_task` would train, and its metrics made the
candidate's :class:`~runner.records.Evaluation`. No network is made, so none is kept."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping
from typing import Any

import attrs

from genomics import flop_counts, infer_shapes, parameter_counts

from .. import evaluations
from ..failures import bad_metrics, failed_evaluation
from ..records import Evaluation, EvaluationContext, Status, Task
from .training import _time_limit


@attrs.frozen
class UserEvaluation:
    """The run's user evaluation: its ``name`` (what the run records, and its reuse key holds)
    and ``function``. Picklable when the function is (a module's top-level function), which is
    how local worker processes get it."""

    name: str
    function: evaluations.EvaluationFunction

    def __call__(self, task: Task, timeout: float = 0.0) -> Evaluation:
        return evaluate_by(self, task, timeout)


def user_evaluation(experiment: Any) -> UserEvaluation | None:
    """The user evaluation ``experiment.evaluation`` names (None: the built-in training)."""
    if not experiment.evaluation:
        return None
    return UserEvaluation(experiment.evaluation, evaluations.get(experiment.evaluation).function)


def context_of(task: Task) -> EvaluationContext:
    """What the user evaluation of ``task`` is told: what its training would have had."""
    start = task.schedule[0][task.rung - 1] if task.schedule and task.rung > 0 else 0
    return EvaluationContext(
        individual=task.individual,
        generation=task.generation,
        seed=task.seed,
        epochs=task.epochs,
        planned_epochs=task.planned_epochs,
        start_epoch=start,
        data_fraction=task.data_fraction,
        rung=task.rung,
        parents=task.parents,
        phase=task.phase,
    )


def evaluate_by(user: UserEvaluation, task: Task, timeout: float = 0.0) -> Evaluation:
    """``task``'s evaluation by ``user``: ``ok`` with its ``val_accuracy`` as fitness, its
    ``params`` (or the genome's count), ``flops`` (or the genome's), ``size_bytes``,
    ``latency_ms`` and ``epochs`` (or the task's) when given, every metric kept, one history
    entry. A function that raises, takes longer than ``timeout`` seconds (0: no limit) or
    returns no usable ``val_accuracy`` gives a failed evaluation; only KeyboardInterrupt
    escapes."""
    start = time.perf_counter()
    recorded = {"planned_epochs": task.epochs, "evaluation": user.name}
    prefix = f"evaluation {user.name}: "
    try:  # an invalid genome fails as it does where it is built for training
        shapes = infer_shapes(task.genome)
        params = sum(parameter_counts(task.genome, shapes).values())
        flops = sum(flop_counts(task.genome, shapes).values())
    except Exception as exc:
        return failed_evaluation(exc, start, None, recorded)
    try:
        with _time_limit(timeout, start, None):
            metrics = user.function(task.genome, context_of(task))
    except Exception as exc:
        return failed_evaluation(exc, start, params, recorded, prefix=prefix)
    if not isinstance(metrics, Mapping):
        return bad_metrics(
            f"{prefix}returned {type(metrics).__name__}, not a mapping of metrics",
            start,
            params,
            recorded,
        )
    accuracy = metrics.get("val_accuracy")
    if not _number(accuracy) or not 0 <= accuracy <= 1:
        got = "no val_accuracy" if "val_accuracy" not in metrics else f"{accuracy!r}"
        return bad_metrics(
            f"{prefix}val_accuracy must be a number in [0, 1], got {got}"[:500],
            start,
            params,
            recorded,
        )
    accuracy = float(accuracy)
    epochs = _count(metrics.get("epochs"), task.epochs)
    return Evaluation(
        status=Status.OK,
        fitness=(accuracy,),
        val_accuracy=accuracy,
        params=_count(metrics.get("params"), params),
        size_bytes=_count(metrics.get("size_bytes"), None),
        flops=_count(metrics.get("flops"), flops),
        latency_ms=float(metrics["latency_ms"]) if _number(metrics.get("latency_ms")) else None,
        epochs=epochs,
        seconds=time.perf_counter() - start,
        history=({"epoch": epochs, "val_accuracy": accuracy},),
        metrics={**_kept(metrics), **recorded},
    )


#: Metrics the runner itself reads (reuse, rungs, limits, failures): never a user's.
RESERVED = frozenset(
    {
        "planned_epochs",
        "evaluation",
        "teacher",
        "inherited_from",
        "inherit_failed",
        "stopped_by",
        "stage",
        "limit",
        "transient",
        "start_epoch",
        "continued_from",
        "epochs_saved",
        "rung",
        "rungs",
        "data_fraction",
        "data_fractions",
    }
)


def _kept(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The user's metrics as the store keeps them (JSON: numbers, strings, lists, mappings;
    anything else as its text), but for the :data:`RESERVED` ones."""
    return {str(k): _plain(v) for k, v in metrics.items() if str(k) not in RESERVED}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any, default: int | None) -> int | None:
    return int(value) if _number(value) and value >= 0 else default
