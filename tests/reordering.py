"""An executor for tests: trains for real, but hands results back newest first, as the
executor contract allows workers to (two at a time by default), optionally reporting other
measurements for some candidates so that they tie where a test wants."""

from __future__ import annotations

import attrs

from runner.execution.base import Outcome


class NewestFirst:
    """Wraps the engine's executor. ``rewrite`` maps an individual id to the evaluation
    fields it reports instead of its own (``val_accuracy`` also sets its fitness); ``default``
    is reported for the ids it does not name (None: their own). ``order`` lists
    ``(individual, rung)`` as results are handed back."""

    def __init__(
        self,
        inner,
        rewrite: dict[str, dict] | None = None,
        capacity: int = 2,
        default: dict | None = None,
    ) -> None:
        self.inner, self.rewrite, self.default = inner, rewrite or {}, default
        self.capacity = capacity
        self.queued: list = []
        self.order: list[tuple[str, int]] = []

    def submit(self, task, judge) -> None:
        self.queued.append((task, judge))

    def next(self) -> Outcome:
        task, judge = self.queued.pop()  # the newest first
        self.inner.submit(task, judge)
        outcome = self.inner.next()
        self.order.append((task.individual, task.rung))
        values = self.rewrite.get(task.individual, self.default)
        if values is None:
            return outcome
        fitness = (values["val_accuracy"], *outcome.evaluation.fitness[1:])
        evaluation = attrs.evolve(outcome.evaluation, **values, fitness=fitness)
        return attrs.evolve(outcome, evaluation=evaluation)

    def busy(self) -> dict[str, str]:
        return {}

    def stats(self) -> dict:
        return self.inner.stats()

    def close(self) -> None:
        self.inner.close()
