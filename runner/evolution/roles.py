"""What the evaluation loop's parts need of the engine (:class:`EngineRole`) and of the loop
(:class:`LoopRole`): the typed contracts between them, so that the checks and the tasks
(``checks``, ``tasks``) and the loop (``candidates``) name no module above their own."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Protocol

import operators as ops
import strategies as st
from genomics import Genome

from ..execution import Executor
from ..files import RunFiles
from ..records import Evaluation
from ..store import Store
from . import rungs as rs
from .candidate import Candidate
from .costs import Costs
from .events import EventLog
from .state import Reporter, RunState, Snapshot


class EngineRole(Protocol):
    """The engine as the evaluation loop uses it: it reads the run's state, and changes it
    only through :meth:`stop` and :meth:`tell`."""

    experiment: Any
    run_dir: Path
    data: Any
    store: Store
    files: RunFiles
    executor: Executor
    costs: Costs
    search: st.Search
    context: st.Context
    events: EventLog
    objectives: tuple[str, ...]
    state: RunState
    rng: random.Random
    mutation_config: ops.MutationConfig

    @property
    def seconds(self) -> float: ...
    def snapshot(self) -> Snapshot: ...
    def sync_context(self, generation: int) -> st.Context: ...
    def better(self, ind: ops.Individual, evaluation: Evaluation | None = None) -> bool: ...
    def stop(self, reason: str) -> str: ...
    def tell(self, candidate: Candidate, evaluation: Evaluation, reporter: Reporter) -> None: ...
    def individual(
        self, genome: Genome, id: str, parents: list[str], gen: int
    ) -> ops.Individual: ...


class LoopRole(Protocol):
    """The evaluation loop as its checks and tasks use it."""

    engine: EngineRole
    cache: dict[tuple, tuple[str, Evaluation]]
    schedule: rs.Schedule | None
    rung: int

    def store(self, candidate: Candidate, evaluation: Evaluation) -> None: ...
    def with_fitness(self, evaluation: Evaluation) -> Evaluation: ...
    def kept_alike(self) -> set[str]: ...
