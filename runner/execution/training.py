"""Evaluating one candidate: train a genome, measure it, and turn anything that goes wrong (an
exception, a diverging loss, running out of memory, a time limit) into a failed
:class:`~runner.records.Evaluation`."""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from genomics import Genome, parameter_counts

from ..errors import EvaluationTimeout
from ..failures import _failed, failed_evaluation
from ..records import Evaluation, Status


def evaluate_candidate(
    genome: Genome,
    data: Any,
    spec: Any,
    on_epoch: Callable | None = None,
    teacher: Any = None,
    timeout: float = 0.0,
    prepare: Callable[[Any], dict[str, Any]] | None = None,
) -> tuple[Evaluation, Any]:
    """Train ``genome`` by ``spec`` (distilling from ``teacher`` when given) and return
    ``(evaluation, model)``. ``prepare(model)``, when given, sets the compiled network's first
    weights (inheritance) and returns metrics to record.

    The status is ``ok``, ``stopped`` when ``on_epoch`` ended the training (raising
    :class:`phenotypes.StopTraining`), or ``failed``; the fitness is the validation accuracy
    (0 on failure: the worst). Any exception (running out of GPU memory included), a diverging
    loss or, with ``timeout`` > 0, taking longer than ``timeout`` seconds becomes a failed
    evaluation; only KeyboardInterrupt escapes. ``model`` is None on failure.
    """
    import phenotypes as ph

    start = time.perf_counter()
    params = None
    metrics: dict[str, Any] = {}
    allocated = _cuda_allocated()
    if allocated is not None:
        # Device memory still held from earlier evaluations: it should stay flat over a run.
        metrics["cuda_allocated_before"] = allocated
    try:
        with _time_limit(timeout, start, on_epoch) as checked_on_epoch:
            params = sum(parameter_counts(genome).values())
            model = ph.compile_genome(genome, seed=spec.seed)
            if prepare is not None:
                metrics.update(prepare(model))
            trained = ph.train(model, data, spec, on_epoch=checked_on_epoch, teacher=teacher)
            history = [
                {"epoch": h.epoch, "train_loss": h.train_loss, "val_accuracy": h.val_accuracy}
                for h in trained.history
            ]
            if trained.status == "diverged":
                return _failed(
                    f"diverged: {trained.reason}", params, history, start, metrics, False
                ), None
            model.cpu()
            flops = ph.count_flops(model, data.input_shape)
            size = ph.size_bytes(model)
    except Exception as exc:
        model = None  # this frame lives on in the traceback; its model should not
        release_memory()
        return failed_evaluation(exc, start, params, metrics), None
    return Evaluation(
        status=Status.STOPPED if trained.status == "stopped" else Status.OK,
        reason=trained.reason,
        fitness=(trained.val_accuracy,),
        val_accuracy=trained.val_accuracy,
        params=params,
        size_bytes=size,
        flops=flops,
        epochs=trained.epochs,
        seconds=time.perf_counter() - start,
        history=history,
        metrics={**metrics, "device": trained.device},
    ), model


@contextlib.contextmanager
def _time_limit(
    seconds: float, start: float, on_epoch: Callable | None
) -> Iterator[Callable | None]:
    """Raise EvaluationTimeout once ``seconds`` have passed since ``start`` (0: never); yields
    the ``on_epoch`` callback to train with.

    SIGALRM interrupts the training wherever it next returns to Python (every batch does, and
    so does a sleep): a thread cannot be stopped from outside, and a process per candidate would
    copy the dataset each time. Only the main thread receives signals, so elsewhere the limit is
    checked after each epoch instead.
    """
    if not seconds:
        yield on_epoch
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):

        def checked(metrics: Any) -> None:
            if time.perf_counter() - start > seconds:
                raise EvaluationTimeout(seconds)
            if on_epoch is not None:
                on_epoch(metrics)

        yield checked
        return
    armed = True

    def expire(signum: int, frame: Any) -> None:
        if armed:
            # Restored here too: the exception may interrupt the ``finally`` below.
            signal.signal(signal.SIGALRM, previous)
            raise EvaluationTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds - (time.perf_counter() - start), 1e-3))
    try:
        yield on_epoch
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cuda_allocated() -> int | None:
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.memory_allocated()


def release_memory() -> None:
    """Give the GPU memory of finished evaluations back (a no-op without CUDA): objects from
    the last training that only the cycle collector frees, then PyTorch's cached blocks."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()
