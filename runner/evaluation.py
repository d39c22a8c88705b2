"""Evaluating genomes: a candidate during search (failure is data) and the full training of
one genome that ``ecogen train`` and the end of ``ecogen evolve`` share."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genomics import Genome, canonical_hash, dumps, parameter_counts


def evaluate_candidate(
    genome: Genome,
    data: Any,
    spec: Any,
    on_epoch: Callable | None = None,
    teacher: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Train ``genome`` by ``spec`` (distilling from ``teacher`` when given) and return
    ``(result, model)``.

    The result holds ``status`` (``ok``, ``stopped`` when ``on_epoch`` ended the training, or
    ``failed``), ``reason``, ``fitness`` (validation accuracy, 0 on failure: the worst),
    ``val_accuracy``, ``params``, ``size_bytes``, ``flops``, ``epochs``, ``seconds`` and the
    per-epoch ``history``. Any exception or a diverging loss becomes a failed result; only
    KeyboardInterrupt escapes. ``model`` is None on failure.
    """
    import time

    import phenotypes as ph

    start = time.perf_counter()
    params = None
    try:
        params = sum(parameter_counts(genome).values())
        model = ph.compile_genome(genome, seed=spec.seed)
        trained = ph.train(model, data, spec, on_epoch=on_epoch, teacher=teacher)
        history = [
            {"epoch": h.epoch, "train_loss": h.train_loss, "val_accuracy": h.val_accuracy}
            for h in trained.history
        ]
        if trained.status == "diverged":
            return _failed(f"diverged: {trained.reason}", params, history, start), None
        model.cpu()
        flops = ph.count_flops(model, data.input_shape)
        size = ph.size_bytes(model)
    except Exception as exc:
        _free_cuda()
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = _failed(reason, params, [], start)
        result["metrics"] = {"where": f"{where.filename}:{where.lineno}"}
        return result, None
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
        "metrics": {"device": trained.device},
    }, model


def _failed(reason: str, params: int | None, history: list, start: float) -> dict[str, Any]:
    import time

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


def _free_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
    (out_dir / "genome.json").write_text(dumps(genome))
    ph.save_model(out_dir / "model.pt", genome, model)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary, result
