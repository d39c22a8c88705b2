"""The hook specification: everything a search strategy may decide, as pluggy hooks.

A strategy is any object whose methods carry ``@hookimpl`` and are named after the hooks below
(the ``ecogen_`` prefix). A run composes a list of strategies; pluggy calls them in the order the
list names them (``hookimpl(trylast=True)`` puts one after the others). Hooks marked *first
result* stop at the first strategy that returns something other than ``None``; the engine has a
default for each (tournament parents, the best survive). Every hook runs with the global
``random`` module (which DEAP's selection tools use) set to the run's own saved stream, so a
strategy that draws from ``random`` is reproducible and resumes exactly.

The individuals a hook sees are :class:`operators.Individual` objects with ``id``, ``genome``,
``generation``, ``parents``, ``operators``, ``phase``, ``reused``, ``fitness.values`` and
``evaluation``: a read-only record (``runner.records.Evaluation``) read like a dict, with
``status`` (``ok``, ``extinct``, ``stopped`` or ``failed``), ``val_accuracy``, ``params``,
``flops``, ``size_bytes``, ``latency_ms`` (when the run measures it), ``epochs`` (trained),
``planned_epochs``, ``history`` (one ``{"epoch", "train_loss", "val_accuracy"}`` per epoch)
and ``metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pluggy

PROJECT = "ecogen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@attrs.define
class GenerationPlan:
    """The sizes of one generation, built from the experiment and adjusted by ``ecogen_plan``.

    ``population``: individuals kept after survival (mu); ``children``: candidates made (lambda);
    ``mutations``: inclusive range of mutations per child; ``epochs``: training epochs of each
    candidate; ``initial``: size of the first population (generation 0).

    Multi-fidelity (successive halving, the ``rungs`` strategy): ``rungs`` are the epochs a
    candidate has at each rung, increasing, the last one ``epochs`` (``()``: every candidate
    trains ``epochs``). Every candidate trains to the first rung; once all of a rung's trainings
    are in, the ``promote`` share of those that finished it (rounded up; the most accurate, ties
    in candidate order) goes on from its own weights to the next. ``data_fractions``: the share
    of the training split each rung trains on (``()``: all of it at every rung)."""

    population: int
    children: int
    mutations: tuple[int, int]
    epochs: int
    initial: int
    rungs: tuple[int, ...] = ()
    promote: float = 1 / 3
    data_fractions: tuple[float, ...] = ()


@attrs.define
class Context:
    """What the engine tells strategies about the run. Read it; write only through
    :meth:`record`.

    ``best`` is the best individual found before this generation began (its weights are the
    ones mimicry can use); ``generations`` is the run's generation limit (0: none);
    ``evaluations`` and ``epochs_spent`` are the run's counts as this generation's evaluations
    began (they stay so until it ends, so that hooks called during trainings decide the same
    on any number of workers)."""

    seed: int
    generation: int
    phase: str
    plan: GenerationPlan
    generations: int
    mutation_config: Any
    best: Any = None
    evaluations: int = 0
    epochs_spent: int = 0
    recorder: Callable[..., None] | None = attrs.field(default=None, repr=False)
    known: Callable[[Any], bool] | None = attrs.field(default=None, repr=False)

    def seen(self, genome: Any) -> bool:
        """Whether this run has evaluated ``genome`` already (a proposal of it is wasted)."""
        return self.known is not None and self.known(genome)

    def record(self, kind: str, *, source: str, individual: str | None = None, **data: Any) -> None:
        """Write an event to the run store's ``events`` table (JSON-serializable ``data``)."""
        if self.recorder is not None:
            self.recorder(kind=kind, source=source, individual=individual, data=data)


@attrs.frozen
class Stop:
    """Returned by ``ecogen_on_epoch`` to end a candidate's training now. ``status`` becomes the
    evaluation's status (``extinct`` for accelerated extinction); ``details`` go to its
    ``metrics``. The candidate keeps the validation accuracy it had reached."""

    reason: str
    status: str = "stopped"
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Proposal:
    """A candidate a strategy makes by other means than mutation (gene duplication): its genome,
    the ids it comes from, the operator names to record, the proposing strategy's name, a
    JSON-serializable note (recorded as a ``proposed`` event) and, for nodes that copy nodes of
    its first parent under other ids, ``copies`` (copy id -> original id), so that with weight
    inheritance a copy starts from its original's weights."""

    genome: Any
    parents: tuple[str, ...]
    operators: tuple[str, ...]
    source: str = ""
    note: dict[str, Any] = attrs.field(factory=dict)
    copies: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Ranking:
    """How a run names its best individual (reported, trained again, written to ``best/``,
    exported, and the best so far that mimicry teaches with): ``key(individual)`` is a sort key,
    larger is better, read from ``fitness`` and ``evaluation``; ``objective`` says it in words
    for the summary. Ties are broken by the engine in candidate order (generation, then the
    order the candidates were made), so any number of workers names the same best."""

    objective: str
    key: Callable[[Any], tuple]


@attrs.frozen
class Distill:
    """Returned by ``ecogen_training``: train the candidate with a distillation term toward the
    logits of individual ``teacher`` (which must be ``context.best``)."""

    teacher: str
    temperature: float = 4.0
    weight: float = 0.5


class StrategySpec:
    """The hooks. Implement any subset; argument names must match, and a strategy may take
    fewer arguments than a hook offers."""

    @hookspec
    def ecogen_plan(self, plan: GenerationPlan, context: Context) -> None:
        """Adjust this generation's sizes in place (population kept, children made, mutations
        per child, training epochs). Called in list order, each strategy seeing the previous
        ones' changes."""

    @hookspec(firstresult=True)
    def ecogen_select_parents(self, population: list, count: int, context: Context) -> list | None:
        """``count`` parents from ``population``, one per child: a parent named n times gets n
        children. Default: tournament of 3 (DEAP ``selTournament``)."""

    @hookspec(firstresult=True)
    def ecogen_select_mates(self, population: list, count: int, context: Context) -> list | None:
        """``count`` pairs ``(first, second)`` from ``population``, one per child made by
        crossover (the experiment's ``crossover_rate``): the child has the first's structure
        and takes genes of the second. Default: the parent selection (``ecogen_select_parents``,
        then the tournament) twice, paired in order."""

    @hookspec
    def ecogen_propose(self, population: list, context: Context) -> list[Proposal] | None:
        """Extra candidates made by other means than mutation; they take places among this
        generation's children."""

    @hookspec(firstresult=True)
    def ecogen_select_survivors(
        self, candidates: list, count: int, context: Context
    ) -> list | None:
        """The ``count`` individuals kept from ``candidates`` (last population plus evaluated
        children). Default: the fittest, ties to the smaller network."""

    @hookspec
    def ecogen_training(self, individual: Any, context: Context) -> Distill | None:
        """How to train a candidate beyond the plan; today: a :class:`Distill` teacher."""

    @hookspec(firstresult=True)
    def ecogen_on_epoch(
        self, individual: Any, epoch: int, epochs: int, val_accuracy: float, context: Context
    ) -> Stop | None:
        """After each training epoch of a candidate: a :class:`Stop` ends its training."""

    @hookspec
    def ecogen_generation_end(self, population: list, evaluated: list, context: Context) -> None:
        """A generation is complete: ``population`` are the survivors, ``evaluated`` the
        candidates of this generation. Update thresholds, counters and the like."""

    @hookspec(firstresult=True)
    def ecogen_next_phase(self, population: list, context: Context) -> str | None:
        """The name of the phase the next generation belongs to, when it changes."""

    @hookspec(firstresult=True)
    def ecogen_objectives(self) -> list[str] | None:
        """What fitness is: ``["val_accuracy"]`` (default) or more objectives for a
        multi-objective search; ``val_accuracy`` is maximised, the others (``params``,
        ``size_bytes``, ``flops``, ``latency_ms``) minimised."""

    @hookspec(firstresult=True)
    def ecogen_ranking(self) -> Ranking | None:
        """How to rank finished candidates to name the run's best (a :class:`Ranking`).
        Default: validation accuracy, then the smaller network (:func:`strategies.rank_key`).
        A strategy that selects by another objective should return its own, so the run
        delivers the network it searched for."""

    @hookspec
    def ecogen_measures(self) -> list[str] | None:
        """Measurements this strategy reads that a run makes only when something needs them:
        ``latency_ms`` (each candidate's inference latency on the run's device, measured before
        it trains). Costs named by ``ecogen_objectives`` are measured anyway."""

    @hookspec
    def ecogen_save_state(self, state: dict) -> None:
        """Put this strategy's state (JSON-serializable) into ``state`` under its own name; it
        is saved in every checkpoint."""

    @hookspec
    def ecogen_load_state(self, state: dict) -> None:
        """Take back what ``ecogen_save_state`` put into ``state`` (when resuming)."""


HOOKS = tuple(name for name in vars(StrategySpec) if name.startswith("ecogen_"))
