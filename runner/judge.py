"""What decides, after each epoch of a candidate's training, whether it goes on: the run's
strategies (``ecogen_on_epoch``: accelerated extinction) and the time budget.

A generation's decisions must not depend on where or when a candidate trains, so the judge of
a generation is a snapshot taken as its evaluations begin: the strategies' state (per-epoch
hooks may read it, never change it), the run's context with its counts as of that moment, and
the time budget's deadline. The snapshot pickles: a worker process (or a Ray task) rebuilds
the strategies from it and judges its own trainings, and the events the strategies record
travel back with the result. In the engine's own process the live strategies judge, with the
same state and context.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

import operators as ops
import strategies as st

from .records import MAX_EPOCHS, TIME_BUDGET, Task, event


def individual_of(task: Task) -> ops.Individual:
    """The individual a per-epoch hook sees for ``task`` (its evaluation is not made yet)."""
    return ops.Individual(
        task.genome,
        id=task.individual,
        parents=task.parents,
        operators=task.operators,
        generation=task.generation,
        phase=task.phase,
    )


@attrs.frozen
class JudgeSnapshot:
    """A generation's per-epoch judge, as a picklable snapshot.

    ``strategy`` and ``options`` name the run's strategies as its experiment does; ``state`` is
    ``Search.save_state()`` as the generation's evaluations began; ``context`` the fields of
    :class:`strategies.Context`; ``deadline`` the wall-clock time (``time.time()``) the time
    budget ends at (None: no budget) and ``cut`` whether it may end a training (not the
    run's only training under way while it has no best)."""

    strategy: tuple[str, ...]
    options: dict[str, Any]
    seed: int
    state: dict[str, Any]
    context: dict[str, Any]
    deadline: float | None = None
    cut: bool = False

    def build(self) -> Any:
        """A callable ``(task, epoch, epochs, val_accuracy) -> Stop | None`` judging with a
        copy of the strategies; the events they record are appended to its ``events``."""
        search = st.Search(st.create(self.strategy, self.options), seed=self.seed)
        search.load_state(self.state)
        events: list[dict[str, Any]] = []

        def recorder(kind: str, source: str, individual: str | None, data: dict) -> None:
            events.append(event(self.context["generation"], kind, source, individual, data))

        context = st.Context(**self.context, recorder=recorder)

        def judge(task: Task, epoch: int, epochs: int, val_accuracy: float) -> st.Stop | None:
            stop = search.on_epoch(individual_of(task), epoch, epochs, val_accuracy, context)
            if stop is None and self.over_time(epoch, epochs):
                stop = time_stop(epoch)
            return stop

        judge.events = events
        return judge

    def over_time(self, epoch: int, epochs: int) -> bool:
        return (
            self.cut
            and epoch < epochs
            and self.deadline is not None
            and time.time() >= self.deadline
        )


def time_stop(epoch: int) -> st.Stop:
    """The stop of a training the time budget ends after ``epoch``."""
    return st.Stop(f"time budget reached after epoch {epoch}", details={"stopped_by": TIME_BUDGET})


def epochs_stop(epoch: int) -> st.Stop:
    """The stop of a training that ``max_epochs`` ends after ``epoch``."""
    return st.Stop(f"max_epochs reached after epoch {epoch}", details={"stopped_by": MAX_EPOCHS})
