"""The failed evaluations of the runner: a training or a mutation that raised, a worker that
died. One shape for each, whichever executor reports it."""

from __future__ import annotations

import time
import traceback
from typing import Any

from .errors import EvaluationTimeout
from .records import Evaluation, Status


def failed_evaluation(
    exc: BaseException,
    start: float,
    params: int | None = None,
    metrics: dict[str, Any] | None = None,
    prefix: str = "",
) -> Evaluation:
    """The failed evaluation of a training (or a mutation) that raised ``exc``: the reason is
    ``prefix`` and the first line of ``TYPE: message`` (``timeout: message`` for a time limit),
    ``metrics.where`` the line it was raised on, ``metrics.transient`` whether the cause may
    not repeat."""
    if isinstance(exc, EvaluationTimeout):
        described = f"timeout: {exc}"
    else:
        described = f"{type(exc).__name__}: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    metrics = {**(metrics or {})}
    if where is not None:
        metrics["where"] = f"{where.filename}:{where.lineno}"
    return _failed(
        (prefix + described).splitlines()[0][:500], params, [], start, metrics, _transient(exc)
    )


def _transient(exc: BaseException) -> bool:
    # A time limit or running out of memory depends on what else the machine was doing; a
    # CUDA error on the device's state. The same genome may well train another time.
    if isinstance(exc, (EvaluationTimeout, MemoryError)):
        return True
    text = f"{type(exc).__name__}: {exc}"
    return "out of memory" in text or "OutOfMemoryError" in text or "CUDA error" in text


def _failed(
    reason: str,
    params: int | None,
    history: list,
    start: float,
    metrics: dict[str, Any],
    transient: bool,
) -> Evaluation:
    return Evaluation(
        status=Status.FAILED,
        reason=reason,
        fitness=(0.0,),
        val_accuracy=history[-1]["val_accuracy"] if history else None,
        params=params,
        epochs=len(history),
        seconds=time.perf_counter() - start,
        history=history,
        metrics={**metrics, "transient": transient},
    )


def bad_metrics(
    reason: str, start: float, params: int | None, metrics: dict[str, Any]
) -> Evaluation:
    """The failed evaluation of a user evaluation that returned what is not a result
    (``reason``: what it returned): bound to repeat, so never transient."""
    return _failed(reason.splitlines()[0][:500], params, [], start, metrics, False)


def mutation_failure(exc: Exception) -> Evaluation:
    """The evaluation of a child whose mutation raised: it is never trained."""
    return failed_evaluation(
        exc, time.perf_counter(), metrics={"stage": "mutation"}, prefix="mutation: "
    )


def worker_died(task: Any, cause: str, worker: str) -> Evaluation:
    """The evaluation of ``task`` when the process (or Ray task) training it died: transient,
    since the same genome may well train another time."""
    return Evaluation(
        status=Status.FAILED,
        reason=f"worker died: {cause}"[:500],
        metrics={"planned_epochs": task.epochs, "transient": True, "worker": worker},
    )
