"""Evaluating genomes: a candidate during search (failure is data) and the full training of
one genome that ``ecogen train`` and the end of ``ecogen evolve`` share."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from genomics import Genome, canonical_hash, dumps, parameter_counts


class EvaluationTimeout(Exception):
    """A candidate's evaluation ran past its time limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"evaluation took longer than its {seconds:g} s limit")


def evaluate_candidate(
    genome: Genome,
    data: Any,
    spec: Any,
    on_epoch: Callable | None = None,
    teacher: Any = None,
    timeout: float = 0.0,
) -> tuple[dict[str, Any], Any]:
    """Train ``genome`` by ``spec`` (distilling from ``teacher`` when given) and return
    ``(result, model)``.

    The result holds ``status`` (``ok``, ``stopped`` when ``on_epoch`` ended the training, or
    ``failed``), ``reason``, ``fitness`` (validation accuracy, 0 on failure: the worst),
    ``val_accuracy``, ``params``, ``size_bytes``, ``flops``, ``epochs``, ``seconds`` and the
    per-epoch ``history``. Any exception (running out of GPU memory included), a diverging loss
    or, with ``timeout`` > 0, taking longer than ``timeout`` seconds becomes a failed result;
    only KeyboardInterrupt escapes. ``model`` is None on failure.
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
            trained = ph.train(model, data, spec, on_epoch=checked_on_epoch, teacher=teacher)
            history = [
                {"epoch": h.epoch, "train_loss": h.train_loss, "val_accuracy": h.val_accuracy}
                for h in trained.history
            ]
            if trained.status == "diverged":
                failed = _failed(f"diverged: {trained.reason}", params, history, start)
                return {**failed, "metrics": metrics}, None
            model.cpu()
            flops = ph.count_flops(model, data.input_shape)
            size = ph.size_bytes(model)
    except Exception as exc:
        model = None  # this frame lives on in the traceback; its model should not
        release_memory()
        return failed_result(exc, start, params, metrics), None
    return {
        "status": "stopped" if trained.status == "stopped" else "ok",
        "reason": trained.reason,
        "fitness": [trained.val_accuracy],
        "val_accuracy": trained.val_accuracy,
        "params": params,
        "size_bytes": size,
        "flops": flops,
        "epochs": trained.epochs,
        "seconds": time.perf_counter() - start,
        "history": history,
        "metrics": {**metrics, "device": trained.device},
    }, model


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


def failed_result(
    exc: Exception,
    start: float,
    params: int | None = None,
    metrics: dict[str, Any] | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """The failed result of an evaluation (or a mutation) that raised ``exc``: the reason is
    ``prefix`` and the first line of ``TYPE: message`` (``timeout: message`` for a timeout),
    ``metrics.where`` the line it was raised on."""
    if isinstance(exc, EvaluationTimeout):
        described = f"timeout: {exc}"
    else:
        described = f"{type(exc).__name__}: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    result = _failed((prefix + described).splitlines()[0][:500], params, [], start)
    result["metrics"] = {**(metrics or {})}
    if where is not None:
        result["metrics"]["where"] = f"{where.filename}:{where.lineno}"
    return result


def _failed(reason: str, params: int | None, history: list, start: float) -> dict[str, Any]:
    return {
        "status": "failed",
        "reason": reason,
        "fitness": [0.0],
        "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "params": params,
        "size_bytes": None,
        "flops": None,
        "epochs": len(history),
        "seconds": time.perf_counter() - start,
        "history": history,
    }


def forked_rng(device: str) -> contextlib.AbstractContextManager:
    """PyTorch's global generators (the CPU's, and ``device``'s when it is a GPU) restored on
    leaving, whatever happened inside."""
    import torch

    import phenotypes as ph

    target = ph.resolve_device(device)
    if target.type != "cuda":
        return torch.random.fork_rng(devices=[])
    index = target.index if target.index is not None else torch.cuda.current_device()
    return torch.random.fork_rng(devices=[index])


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


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """Write ``path`` through ``write(temporary_path)`` and rename it into place, so a process
    killed meanwhile leaves the old file or the new one, never part of one. (Four lines of
    ``os.replace``; the libraries that wrap it are unmaintained.)"""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    write(partial)
    os.replace(partial, path)


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`write_atomic` for text."""
    write_atomic(path, lambda p: p.write_text(text))


def train_and_write(
    genome: Genome,
    name: str,
    data: Any,
    dataset: str,
    spec: Any,
    out_dir: Path,
    on_epoch: Callable | None = None,
    model: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Train ``genome`` (or, given a trained ``model``, keep it), measure it once on the test
    split, and write ``out_dir/{genome.json,model.pt,summary.json}``. Returns the summary and
    the result of training (None when ``model`` was given)."""
    import phenotypes as ph

    target = ph.resolve_device(spec.device)
    result = None
    if model is None:
        model = ph.compile_genome(genome, seed=spec.seed)
        result = ph.train(model, data, spec, on_epoch=on_epoch)
    cuda = target.type == "cuda"
    model.to(target)
    test_accuracy = ph.evaluate(model, data.x_test, data.y_test, bf16=cuda, channels_last=cuda)
    val_accuracy = (
        result.val_accuracy
        if result is not None
        else ph.evaluate(model, data.x_val, data.y_val, bf16=cuda, channels_last=cuda)
    )
    model.cpu()
    m = ph.measure(model, data.input_shape)
    summary = {
        "genome": name,
        "genome_hash": canonical_hash(genome),
        "dataset": dataset,
        "test_accuracy": test_accuracy,
        "val_accuracy": val_accuracy,
        "params": m.params,
        "size_bytes": m.size_bytes,
        "flops": m.flops,
        "latency_ms": m.latency_ms,
        "epochs": result.epochs if result else 0,
        "seconds": result.seconds if result else 0.0,
        "status": result.status if result else "completed",
        "reason": result.reason if result else "",
        "device": result.device if result else str(target),
        "seed": spec.seed,
        "splits": data.sizes(),
        "history": [
            {"epoch": h.epoch, "train_loss": h.train_loss, "val_accuracy": h.val_accuracy}
            for h in (result.history if result else ())
        ],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "genome.json", dumps(genome))
    write_atomic(out_dir / "model.pt", lambda p: ph.save_model(p, genome, model))
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary, result
