"""Multi-fidelity evaluation by successive halving: a generation's rung schedule, what one rung
training's evaluation records, and the seeded training subsets of rungs that train on part of
the data. The engine's side of the ``rungs`` strategy; the decisions (who trains, who is
promoted) are ``runner.evolution.candidates``'; docs/rungs.md says how it all goes.

A candidate's evaluation at rung k < last is ``stopped`` with ``metrics.stopped_by = "rung"``
(like an extinct one, never the run's best): if it is promoted, the next rung's evaluation
takes its place, with the epochs in total and the history of all of them."""

from __future__ import annotations

from typing import Any

import attrs

from ..records import MAX_EPOCHS, TIME_BUDGET, Evaluation, Status, Task

#: ``metrics.stopped_by`` of a candidate stopped at a rung before the last.
STOPPED_BY = "rung"

#: What a rung-0 training records of the weights it started from (inheritance); a promotion
#: keeps these of its rung 0 and records its own start as ``continued_from``.
_INHERITANCE = (
    "inherited_from",
    "inherited_fraction",
    "inherited_identity",
    "inherited_zeroed",
    "inherited_fresh",
    "inherit_failed",
)


@attrs.frozen
class Schedule:
    """A generation's rungs: ``epochs`` a candidate has at each rung (increasing), the training
    split's share each trains on (``fractions``), and the share of a rung's finished
    candidates promoted to the next (``promote``)."""

    epochs: tuple[int, ...]
    fractions: tuple[float, ...]
    promote: float

    @classmethod
    def of(cls, plan: Any) -> Schedule | None:
        """The schedule ``plan`` (a ``strategies.GenerationPlan``) asks for; None for a
        training of fixed epochs on all the data (no rungs, or one on all of it)."""
        rungs = tuple(plan.rungs)
        fractions = tuple(plan.data_fractions) or (1.0,) * len(rungs)
        if not rungs or (len(rungs) == 1 and fractions == (1.0,)):
            return None
        return cls(rungs, fractions, plan.promote)

    @property
    def last(self) -> int:
        """The last rung's index."""
        return len(self.epochs) - 1

    @property
    def key(self) -> tuple:
        """The schedule as a reuse key holds it (``runner.records.schedule_key``)."""
        partial = any(f < 1 for f in self.fractions)
        return (self.epochs, self.fractions if partial else ())

    def metrics(self, rung: int) -> dict[str, Any]:
        """What an evaluation at ``rung`` records of the schedule."""
        out: dict[str, Any] = {
            "rung": rung,
            "rungs": list(self.epochs),
            "planned_epochs": self.epochs[-1],
        }
        if any(f < 1 for f in self.fractions):
            out["data_fractions"] = list(self.fractions)
            out["data_fraction"] = self.fractions[rung]
        return out


def snapshot(individual: str, rung: int) -> str:
    """The name of ``individual``'s weights at ``rung`` (``weights/NAME.pt``), which a promotion
    starts from: its own file, written with the rung's evaluation and never overwritten, so
    that a resumed run continues from the same weights whatever the run wrote after."""
    return f"{individual}@{rung}"


def finished(evaluation: Evaluation | None, rung: int) -> bool:
    """Whether ``evaluation`` is a training that finished ``rung`` (before the last), which
    may be promoted."""
    return (
        evaluation is not None
        and evaluation.metrics.get("stopped_by") == STOPPED_BY
        and evaluation.metrics.get("rung") == rung
    )


def unfinished(evaluation: Evaluation) -> bool:
    """Whether a promotion did not get to its rung: it failed, or the time budget or
    ``max_epochs`` cut it. Its candidate keeps the evaluation of the rung before."""
    cut = evaluation.metrics.get("stopped_by") in (TIME_BUDGET, MAX_EPOCHS)
    return evaluation.status == Status.FAILED or cut


def at_rung(
    raw: Evaluation, task: Task, previous: Evaluation | None, schedule: Schedule
) -> Evaluation:
    """The evaluation of ``task``'s training (``raw``, as the executor returned it) at its
    rung: the schedule recorded; for a promotion (``previous``: the rung before) the epochs in
    total, the history of all of them and ``start_epoch``, ``continued_from`` (its own id:
    it started from its rung weights) with the start its rung 0 had; below the last rung a
    finished training is ``stopped`` by the rung. A promotion whose weights could not be
    loaded (it trained from scratch) is failed."""
    rung = task.rung
    metrics = dict(raw.metrics)
    history = list(raw.history)
    epochs, status, reason = raw.epochs, raw.status, raw.reason
    if previous is not None:
        start = schedule.epochs[rung - 1]
        lost = metrics.get("inherit_failed")
        for key in _INHERITANCE:
            metrics.pop(key, None)
            if key in previous.metrics:
                metrics[key] = previous.metrics[key]
        metrics.update(start_epoch=start, continued_from=task.individual)
        history = [*previous.history, *({**row, "epoch": row["epoch"] + start} for row in history)]
        epochs += start
        if lost is not None:
            status, reason = Status.FAILED, f"promotion: {lost}"
            metrics["transient"] = True  # a file lost, not the genome's doing
    metrics.update(schedule.metrics(rung))
    if status == Status.OK and rung < schedule.last:
        status = Status.STOPPED
        reason = f"rung {rung} of {schedule.last}: {epochs} of {schedule.epochs[-1]} epochs"
        metrics["stopped_by"] = STOPPED_BY
    fitness = raw.fitness if status != Status.FAILED else (0.0, *raw.fitness[1:])
    return attrs.evolve(
        raw,
        status=status,
        reason=reason,
        fitness=fitness,
        epochs=epochs,
        history=tuple(history),
        metrics=metrics,
    )
