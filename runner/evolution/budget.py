"""The run's counters and limits (:class:`Budget`) and what a checkpoint saves of them.

Counters are counted as the run goes, not read from the store: after a resume the store already
holds part of the generation being replayed, which the budgets must not see early. A checkpoint
saves them at each generation's end; a resume restores them and counts the replay again.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import FailureLimit
from ..records import MAX_EPOCHS, TIME_BUDGET, Counters, Evaluation, Status


class Budget:
    """Seconds, evaluations and training epochs spent, against the experiment's limits, and
    the failures in a row."""

    def __init__(self, experiment: Any, seconds_before: float = 0.0) -> None:
        self.experiment = experiment
        self.seconds_before = seconds_before
        self.session_start = time.perf_counter()
        #: Evaluations so far: trainings, and children whose mutation failed.
        self.evaluations = 0
        self.epochs = 0
        self.failures_in_a_row = 0
        self.last_failures: list[str] = []

    @property
    def seconds(self) -> float:
        """Seconds of search, over every session of the run."""
        return self.seconds_before + time.perf_counter() - self.session_start

    def remaining(self) -> float | None:
        budget = self.experiment.time_budget
        return max(budget - self.seconds, 0.0) if budget else None

    def time_up(self) -> bool:
        budget = self.experiment.time_budget
        return bool(budget) and self.seconds >= budget

    def exhausted(self, evaluations: int | None = None, epochs: int | None = None) -> str:
        """The limit reached (``time budget``, ``evaluations``, ``epochs``), or ``""``; with
        ``evaluations`` and ``epochs`` given, as if those had been spent."""
        e = self.experiment
        evaluations = self.evaluations if evaluations is None else evaluations
        epochs = self.epochs if epochs is None else epochs
        if self.time_up():
            return TIME_BUDGET
        if e.max_evaluations and evaluations >= e.max_evaluations:
            return "evaluations"
        if e.max_epochs and epochs >= e.max_epochs:
            return MAX_EPOCHS
        return ""

    def count(self, individual: str, evaluation: Evaluation) -> None:
        """One evaluation made (not reused), with the epochs it trained (a promotion: those it
        added to its rung's). A candidate refused for a limit before it trained is not one: it
        costs nothing, and a search near a latency limit may refuse many."""
        if evaluation.metrics.get("stage") == "limits":
            return
        self.evaluations += 1
        self.epochs += evaluation.trained_epochs
        if evaluation.status == Status.FAILED:
            self.failures_in_a_row += 1
            self.last_failures = [*self.last_failures, f"{individual}: {evaluation.reason}"][-3:]
        else:
            self.failures_in_a_row, self.last_failures = 0, []

    def check_failures(self, run_dir: Any) -> None:
        """FailureLimit when ``max_failures`` evaluations in a row have failed."""
        limit = self.experiment.max_failures
        if limit and self.failures_in_a_row >= limit:
            raise FailureLimit(
                f"{self.failures_in_a_row} evaluations failed in a row, the last:"
                f" {'; '.join(self.last_failures)}. Fix the cause, then continue with"
                f" `ecogen resume {run_dir} --max-failures N` (N > {limit}; 0: no limit)"
            )

    def counters(self, **state: Any) -> Counters:
        """Counters for a checkpoint: these, plus the engine's ``state`` (stopped_by, phase,
        best, best_fitness)."""
        return Counters(
            seconds=self.seconds,
            evaluations=self.evaluations,
            epochs=self.epochs,
            failures_in_a_row=self.failures_in_a_row,
            last_failures=tuple(self.last_failures),
            **state,
        )

    def restore(self, counters: Counters, totals: tuple[int, int]) -> None:
        """Take the counts back from a checkpoint; ``totals`` (evaluations, epochs up to it,
        counted in the store) stand in for counts a store written before them lacks."""
        if counters.evaluations is not None:
            self.evaluations, self.epochs = counters.evaluations, counters.epochs or 0
            self.failures_in_a_row = counters.failures_in_a_row
            self.last_failures = list(counters.last_failures)
        else:
            self.evaluations, self.epochs = totals
