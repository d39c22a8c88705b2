"""The files of a run besides its store: candidates' weights (``weights/ID.pt``), the best
network (``best/``), ``summary.json``; every one written to a temporary name and renamed into
place, so a process killed meanwhile leaves the old file or the new one, never part of one. Also
the training-and-writing of one network that ``ecogen train`` and the end of a search share.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from genomics import Genome, canonical_hash, dumps

from . import faults


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """Write ``path`` through ``write(temporary_path)`` and rename it into place. (Four lines of
    ``os.replace``; the libraries that wrap it are unmaintained.)"""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    write(partial)
    os.replace(partial, path)


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`write_atomic` for text."""
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, values: Any) -> None:
    """:func:`write_atomic` for a JSON document (indented, one trailing newline)."""
    write_text_atomic(path, json.dumps(values, indent=2) + "\n")


class RunFiles:
    """The weight files and ``best/`` of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.weights = self.run_dir / "weights"
        self.best = self.run_dir / "best"

    def weights_of(self, individual: str) -> Path:
        return self.weights / f"{individual}.pt"

    def save_weights(self, individual: str, genome: Genome, model: Any) -> None:
        """``weights/ID.pt``, written before the evaluation is stored: a stored best always has
        its weights, also when a resumed run takes its evaluation from the store."""
        import phenotypes as ph

        self.weights.mkdir(exist_ok=True)
        write_atomic(self.weights_of(individual), lambda p: ph.save_model(p, genome, model))
        faults.reached("weights")

    def write_weights(self, individual: str, content: bytes) -> None:
        """``weights/ID.pt`` from the bytes of a model file (a network trained elsewhere)."""
        self.weights.mkdir(exist_ok=True)
        write_atomic(self.weights_of(individual), lambda p: p.write_bytes(content))
        faults.reached("weights")

    def copy_weights(self, source: str, individual: str) -> None:
        """``weights/INDIVIDUAL.pt`` as a copy of ``source``'s, when that one is kept."""
        path = self.weights_of(source)
        if path.is_file() and source != individual:
            write_atomic(self.weights_of(individual), lambda p: shutil.copyfile(path, p))

    def load_weights(self, individual: str) -> tuple[Genome, Any]:
        import phenotypes as ph

        return ph.load_model(self.weights_of(individual))

    def promote(self, individual: str, genome: Genome) -> None:
        """``best/`` gets ``individual``'s genome and (when kept) weights: the final result
        when nothing better comes."""
        self.best.mkdir(exist_ok=True)
        write_text_atomic(self.best / "genome.json", dumps(genome))
        weights = self.weights_of(individual)
        if weights.is_file():
            write_atomic(self.best / "model.pt", lambda p: shutil.copyfile(weights, p))
        else:  # a store from before weights were kept: the file there is an older best's
            (self.best / "model.pt").unlink(missing_ok=True)

    def prune(self, keep: Iterable[str]) -> None:
        """Delete the weights of every individual not in ``keep``, and what a killed process
        left half-written."""
        if not self.weights.is_dir():
            return
        keep = set(keep)
        for path in self.weights.iterdir():
            if path.suffix != ".pt" or path.stem not in keep:
                path.unlink(missing_ok=True)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.run_dir / "summary.json", summary)

    def weights_usage(self) -> tuple[int, int]:
        """Bytes and number of the weight files in ``weights/``."""
        if not self.weights.is_dir():
            return 0, 0
        sizes = [p.stat().st_size for p in self.weights.glob("*.pt")]
        return sum(sizes), len(sizes)

    def disk_usage(self) -> int:
        """Bytes of the files in the run directory (the store, weights, best/), but for
        summary.json and SQLite's shared-memory index (deleted when the store closes)."""
        return sum(
            p.stat().st_size
            for p in self.run_dir.rglob("*")
            if p.is_file() and p.name != "summary.json" and not p.name.endswith("-shm")
        )


def train_and_write(
    genome: Genome,
    name: str,
    data: Any,
    dataset: str,
    spec: Any,
    out_dir: Path,
    on_epoch: Callable | None = None,
    model: Any = None,
    start: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Train ``genome`` (from scratch, or on from the trained network ``start``; given a
    trained ``model``, keep it), measure it once on the test split, and write
    ``out_dir/{genome.json,model.pt,summary.json}``. Returns the summary and the result of
    training (None when ``model`` was given)."""
    import phenotypes as ph

    target = ph.resolve_device(spec.device)
    result = None
    if model is None:
        model = start if start is not None else ph.compile_genome(genome, seed=spec.seed)
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
    write_model(out_dir, genome, model, summary)
    return summary, result


def write_model(out_dir: Path, genome: Genome, model: Any, summary: dict[str, Any]) -> None:
    """``out_dir/{genome.json,model.pt,summary.json}`` of a trained network."""
    import phenotypes as ph

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "genome.json", dumps(genome))
    write_atomic(out_dir / "model.pt", lambda p: ph.save_model(p, genome, model))
    write_json_atomic(out_dir / "summary.json", summary)
