"""Evaluators: what trains a generation's candidates. The engine hands one an iterable of
:class:`~runner.records.Task` and gets :class:`Outcome` records back as trainings finish.

The contract every evaluator keeps:

- Tasks are taken from the iterable lazily, one when there is room for it: the engine decides
  each candidate (a budget reached, a result to reuse) only when it is due, so a serial
  evaluator makes exactly the decisions of a run that evaluates one candidate after another.
- A result depends only on the task (genome, seed, planned epochs, teacher), never on which
  worker ran it or when.
- After every trained epoch the evaluator asks ``judge(task, epoch, epochs, val_accuracy)``
  (the strategies' per-epoch hook and the time budget); a :class:`strategies.Stop` ends that
  training with its status and details.
- Failure is data: a candidate that raises, diverges or times out is a failed evaluation.
  Only KeyboardInterrupt (and the engine's own exceptions raised by the judge or by the
  consumer) escape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs

from . import rng
from .evaluation import evaluate_candidate, release_memory
from .records import Evaluation, Status, Task

#: ``judge(task, epoch, epochs, val_accuracy) -> strategies.Stop | None``
Judge = Callable[[Task, int, int, float], Any]


@attrs.frozen
class Outcome:
    """A finished task: its evaluation and, when it trained, the model (None on failure)."""

    task: Task
    evaluation: Evaluation
    model: Any = None


class Evaluator(Protocol):
    """Trains tasks; see the module docstring for the contract."""

    def evaluate(self, tasks: Iterable[Task], judge: Judge) -> Iterator[Outcome]: ...

    def close(self) -> None: ...


class SerialEvaluator:
    """One task after another, in this process (on the run's device)."""

    def __init__(self, data: Any, spec: Any, weights_dir: Path, timeout: float = 0.0) -> None:
        self.data = data
        self.spec = spec
        self.weights_dir = Path(weights_dir)
        self.timeout = timeout
        self._teacher: tuple[str, Any] | None = None

    def evaluate(self, tasks: Iterable[Task], judge: Judge) -> Iterator[Outcome]:
        for task in tasks:
            yield self._run(task, judge)
            release_memory()

    def _run(self, task: Task, judge: Judge) -> Outcome:
        from phenotypes import StopTraining

        spec = attrs.evolve(
            self.spec,
            seed=task.seed,
            epochs=task.epochs,
            distill_temperature=task.distill_temperature,
            distill_weight=task.distill_weight,
        )
        stops: list[Any] = []

        def on_epoch(metrics: Any) -> None:
            stop = judge(task, metrics.epoch, task.epochs, metrics.val_accuracy)
            if stop is not None:
                stops.append(stop)
                raise StopTraining(stop.reason)

        # Training seeds itself; anything else drawing from PyTorch's global generators (a
        # teacher's loading) must leave them as it found them (rng.forked).
        with rng.forked(self.spec.device):
            evaluation, model = evaluate_candidate(
                task.genome,
                self.data,
                spec,
                on_epoch=on_epoch,
                teacher=self._teacher_model(task.teacher),
                timeout=self.timeout,
            )
        return Outcome(task, finish(evaluation, task, stops), model)

    def _teacher_model(self, teacher: str | None) -> Any:
        if teacher is None:
            return None
        if self._teacher is None or self._teacher[0] != teacher:
            import phenotypes as ph

            _, model = ph.load_model(self.weights_dir / f"{teacher}.pt")
            self._teacher = (teacher, model)
        return self._teacher[1]

    def close(self) -> None:
        self._teacher = None


def finish(evaluation: Evaluation, task: Task, stops: list[Any]) -> Evaluation:
    """``evaluation`` with what the task decided: its planned epochs and teacher, and the
    status and details of the stop that ended it."""
    metrics = {**evaluation.metrics, "planned_epochs": task.epochs}
    if task.teacher is not None:
        metrics["teacher"] = task.teacher
    status = evaluation.status
    if stops and status == Status.STOPPED:
        status = Status(stops[0].status)
        metrics.update(stops[0].details, epochs_saved=task.epochs - evaluation.epochs)
    return attrs.evolve(evaluation, status=status, metrics=metrics)
