"""The serial executor: one candidate after another, in the engine's process, on the run's
device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..records import Task
from .base import Judge, Outcome, TeacherCache, load_parent, train_task
from .training import release_memory
from .user import user_evaluation


class SerialExecutor:
    """One task at a time, in the engine's process, on the run's device."""

    capacity = 1

    def __init__(self, experiment: Any, data: Any, spec: Any, weights_dir: Path) -> None:
        self.data, self.spec = data, spec
        self.timeout = experiment.evaluation_timeout
        self.weights_dir = Path(weights_dir)
        self._teacher = TeacherCache(self.weights_dir)
        self._queued: list[tuple[Task, Judge]] = []
        self.user = user_evaluation(experiment)

    def submit(self, task: Task, judge: Judge) -> None:
        self._queued.append((task, judge))

    def next(self) -> Outcome:
        task, judge = self._queued.pop(0)
        evaluation, model = train_task(
            task,
            self.data,
            self.spec,
            judge.local,
            self._teacher,
            self.timeout,
            load_parent(self.weights_dir),
            self.user,
        )
        release_memory()
        return Outcome(task, evaluation, model)

    def busy(self) -> dict[str, str]:
        return {"main": self._queued[0][0].individual} if self._queued else {}

    def stats(self) -> dict[str, Any]:
        return {"executor": "serial", "workers": 1, "worker_idle_seconds": 0.0}

    def close(self) -> None:
        self._teacher.clear()
        self._queued = []
