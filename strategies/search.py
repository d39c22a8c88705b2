"""A run's strategies composed into one search: the engine's single view of them."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from .base import StrategyError, rank_key
from .classic import default_parents, default_survivors
from .registry import BUILTIN_PROVIDER, plugin_manager, register, registered
from .spec import Context, Distill, GenerationPlan, Proposal, Ranking, Stop

#: Objectives a fitness may contain; the first is always maximised validation accuracy.
OBJECTIVES = ("val_accuracy", "params", "size_bytes", "flops", "latency_ms")
#: The ranking of a run whose strategies name none: accuracy, then the smaller network.
DEFAULT_RANKING = Ranking("val_accuracy, then fewer params", rank_key)
#: Measurements a run makes only when a strategy, an objective or a limit needs them.
MEASURES = ("latency_ms",)


class Search:
    """The strategies of one run, called through pluggy in list order.

    Every hook runs with the global ``random`` set to the search's own stream (DEAP's selection
    tools draw from it), which :meth:`save_state` saves with the strategies' own state, so the
    same seed gives the same decisions and a restored search decides as the original would.
    Outputs are checked here, once for every strategy: parents and survivors must come from what
    the strategy was given, in the numbers asked for.
    """

    def __init__(self, strategies: Sequence[Any], seed: int = 0) -> None:
        self.strategies = list(strategies)
        self.pm = plugin_manager()
        table = registered()
        # pluggy calls the last registered first; registering in reverse calls in list order.
        for strategy in reversed(self.strategies):
            name = getattr(strategy, "name", "") or type(strategy).__name__
            info = table.get(name)
            register(self.pm, strategy, name, info.provider if info else BUILTIN_PROVIDER)
        self.names = [self.pm.get_name(s) for s in self.strategies]
        self.random_state = random.Random(seed).getstate()
        self.hook = self.pm.hook

    @contextlib.contextmanager
    def _stream(self) -> Iterator[None]:
        outside = random.getstate()
        random.setstate(self.random_state)
        try:
            yield
        finally:
            self.random_state = random.getstate()
            random.setstate(outside)

    def _call(self, hook: str, **kwargs: Any) -> Any:
        with self._stream():
            return getattr(self.hook, hook)(**kwargs)

    # --- decisions ---

    def plan(self, base: GenerationPlan, context: Context) -> GenerationPlan:
        plan = attrs.evolve(base)
        self._call("ecogen_plan", plan=plan, context=context)
        if plan.population < 1 or plan.children < 0 or plan.epochs < 1 or plan.initial < 1:
            raise StrategyError(f"strategies {self.names}: planned an impossible generation {plan}")
        problem = _rungs_problem(plan)
        if problem:
            raise StrategyError(f"strategies {self.names}: {problem}")
        return plan

    def select_parents(self, population: list, count: int, context: Context) -> list:
        if count <= 0 or not population:
            return []
        chosen = self._call(
            "ecogen_select_parents", population=list(population), count=count, context=context
        )
        if chosen is None:
            with self._stream():
                chosen = default_parents(population, count)
        self._check_members("parents", chosen, population)
        if len(chosen) != count:
            raise StrategyError(
                f"strategies {self.names}: asked for {count} parents, got {len(chosen)}"
            )
        return list(chosen)

    def select_mates(self, population: list, count: int, context: Context) -> list[tuple]:
        """``count`` pairs of parents for children made by crossover (none asked: no hook is
        called, so a run without crossover decides as it did before there was any)."""
        if count <= 0 or not population:
            return []
        chosen = self._call(
            "ecogen_select_mates", population=list(population), count=count, context=context
        )
        if chosen is None:
            firsts = self.select_parents(population, count, context)
            seconds = self.select_parents(population, count, context)
            chosen = list(zip(firsts, seconds, strict=True))
        if not isinstance(chosen, (list, tuple)) or not all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in chosen
        ):
            raise StrategyError(f"strategies {self.names}: mates must be pairs of individuals")
        self._check_members("mates", [i for pair in chosen for i in pair], population)
        if len(chosen) != count:
            raise StrategyError(
                f"strategies {self.names}: asked for {count} pairs of mates, got {len(chosen)}"
            )
        return [tuple(pair) for pair in chosen]

    def propose(self, population: list, context: Context) -> list[Proposal]:
        made = self._call("ecogen_propose", population=list(population), context=context)
        return [p for group in made for p in (group or ())]

    def select_survivors(self, candidates: list, count: int, context: Context) -> list:
        count = min(count, len(candidates))
        kept = self._call(
            "ecogen_select_survivors", candidates=list(candidates), count=count, context=context
        )
        if kept is None:
            kept = default_survivors(candidates, count)
        self._check_members("survivors", kept, candidates)
        if not 1 <= len(kept) <= count and candidates:
            raise StrategyError(
                f"strategies {self.names}: asked for {count} survivors, got {len(kept)}"
            )
        return list(kept)

    def training(self, individual: Any, context: Context) -> Distill | None:
        advice = self._call("ecogen_training", individual=individual, context=context)
        return next((a for a in advice if a is not None), None)

    def on_epoch(
        self, individual: Any, epoch: int, epochs: int, val_accuracy: float, context: Context
    ) -> Stop | None:
        return self._call(
            "ecogen_on_epoch",
            individual=individual,
            epoch=epoch,
            epochs=epochs,
            val_accuracy=val_accuracy,
            context=context,
        )

    def generation_end(self, population: list, evaluated: list, context: Context) -> None:
        self._call(
            "ecogen_generation_end",
            population=list(population),
            evaluated=list(evaluated),
            context=context,
        )

    def next_phase(self, population: list, context: Context) -> str | None:
        return self._call("ecogen_next_phase", population=list(population), context=context)

    def objectives(self) -> list[str]:
        found = self._call("ecogen_objectives") or ["val_accuracy"]
        if not found or found[0] != "val_accuracy" or any(o not in OBJECTIVES for o in found):
            raise StrategyError(
                f"strategies {self.names}: objectives must start with val_accuracy and use"
                f" {', '.join(OBJECTIVES)}; got {found}"
            )
        return list(found)

    def ranking(self) -> Ranking:
        """How the run names its best: the first strategy's :class:`Ranking` that gives one,
        else :data:`DEFAULT_RANKING`."""
        found = self._call("ecogen_ranking")
        if found is None:
            return DEFAULT_RANKING
        if not isinstance(found, Ranking) or not callable(found.key):
            raise StrategyError(f"strategies {self.names}: ecogen_ranking must return a Ranking")
        return found

    def measures(self) -> set[str]:
        """What the strategies read that a run measures only on request (``latency_ms``),
        their objectives included."""
        asked = {m for group in self._call("ecogen_measures") for m in (group or ())}
        unknown = sorted(asked - set(MEASURES))
        if unknown:
            raise StrategyError(
                f"strategies {self.names}: cannot measure {unknown} (measures: "
                f"{', '.join(MEASURES)})"
            )
        return asked | (set(self.objectives()) & set(MEASURES))

    # --- state ---

    def save_state(self) -> dict[str, Any]:
        """The strategies' state and the search's random stream, as JSON-ready values."""
        state: dict[str, Any] = {}
        self.hook.ecogen_save_state(state=state)
        version, internal, gauss = self.random_state
        return {"strategies": state, "random": [version, list(internal), gauss]}

    def load_state(self, saved: dict[str, Any]) -> None:
        self.hook.ecogen_load_state(state=saved.get("strategies", {}))
        if "random" in saved:
            version, internal, gauss = saved["random"]
            self.random_state = (version, tuple(internal), gauss)

    def _check_members(self, what: str, chosen: Any, pool: list) -> None:
        ids = {id(x) for x in pool}
        if not isinstance(chosen, (list, tuple)) or any(id(x) not in ids for x in chosen):
            raise StrategyError(
                f"strategies {self.names}: {what} must be taken from the individuals the hook"
                " was given"
            )


def _rungs_problem(plan: GenerationPlan) -> str:
    """What is wrong with ``plan``'s rungs (``""``: nothing, or none planned)."""
    rungs, fractions = tuple(plan.rungs), tuple(plan.data_fractions)
    if not rungs:
        return "planned data_fractions without rungs" if fractions else ""
    if any(not isinstance(r, int) or r < 1 for r in rungs) or list(rungs) != sorted(set(rungs)):
        return f"rungs must be increasing epoch counts >= 1, got {list(rungs)}"
    if rungs[-1] != plan.epochs:
        return (
            f"the last rung ({rungs[-1]} epochs) must be the planned epochs ({plan.epochs}):"
            " list rungs after the strategies that plan epochs"
        )
    if not 0 < plan.promote <= 1:
        return f"promote must be a share in (0, 1], got {plan.promote}"
    if fractions and (len(fractions) != len(rungs) or any(not 0 < f <= 1 for f in fractions)):
        return (
            f"data_fractions must be one share in (0, 1] per rung {list(rungs)},"
            f" got {list(fractions)}"
        )
    return ""
