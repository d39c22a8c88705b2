"""User evaluations: functions that give a candidate its metrics in place of the built-in
training (a tabular NAS benchmark's lookup, a user's own training loop or objective), by the
name the config's ``evaluation`` and ``ecogen evolve --evaluation`` take.

An evaluation is ``fn(genome, context) -> metrics``: ``context`` is a
:class:`runner.records.EvaluationContext`, ``metrics`` a mapping with at least
``val_accuracy`` (a float in [0, 1]). Names come from ``ecogen.evaluations`` entry points, from
:func:`register` (a user's script) or, for a name ``MODULE:FUNCTION``, from importing it; the
entry point's docstring's first sentence is what ``ecogen plugins`` shows. The registry is
:class:`operators.Registry`, with the operators' refusal rule. docs/evaluations.md says more.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from attrs import frozen

from operators import PluginError, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "EvaluationFunction",
    "EvaluationInfo",
    "PluginError",
    "get",
    "name_of",
    "names",
    "refused",
    "register",
    "registered",
]

ENTRY_POINT_GROUP = "ecogen.evaluations"

#: ``fn(genome, context) -> metrics``
EvaluationFunction = Callable[[Any, Any], Mapping[str, Any]]


@frozen
class EvaluationInfo:
    """A registered evaluation: its name, function and the package providing it."""

    name: str
    function: EvaluationFunction
    provider: str

    @property
    def summary(self) -> str:
        doc = " ".join((self.function.__doc__ or "").split())
        return doc.split(". ")[0].rstrip(".")


def _takes_genome_and_context(function: Any) -> bool:
    try:
        inspect.signature(function).bind(None, None)
    except (TypeError, ValueError):
        return False
    return True


def _load(ep_name: str, function: Any, provider: str) -> tuple[str, EvaluationInfo]:
    if not callable(function) or not _takes_genome_and_context(function):
        raise PluginError(
            f"evaluation {ep_name!r} of {provider}: not an evaluation (a function"
            " (genome, context) -> metrics)"
        )
    return ep_name, EvaluationInfo(ep_name, function, provider)


#: Every evaluation: ``ecogen.evaluations`` entry points' and those registered by imported code
#: (:func:`register`). ecogen has none of its own: its built-in training is ``evaluation = ""``.
EVALUATIONS: Registry[EvaluationInfo] = Registry("evaluation", ENTRY_POINT_GROUP, _load)


def _provider(function: Any) -> str:
    return getattr(function, "__module__", None) or "?"


def name_of(function: EvaluationFunction) -> str:
    """The name a run records for ``function``: ``MODULE:QUALNAME``, which a worker process or
    a later ``ecogen resume`` imports again when the function is a module's top-level one."""
    return f"{_provider(function)}:{getattr(function, '__qualname__', type(function).__name__)}"


def register(name: str, function: EvaluationFunction) -> None:
    """Register ``function`` as evaluation ``name`` at run time (a user's script); PluginError
    when it is not an evaluation or the name is taken by another function."""
    _, info = _load(name, function, _provider(function).split(".")[0])
    EVALUATIONS.add(name, info, same=lambda a, b: a.function is b.function)


def registered(reload: bool = False) -> dict[str, EvaluationInfo]:
    """Every usable evaluation by name: plugins (scanned once; ``reload`` scans again), then
    those registered at run time."""
    return EVALUATIONS.registered(reload)


def refused(reload: bool = False) -> dict[str, str]:
    """Evaluation plugins that were refused, by entry-point name, with the reason."""
    return EVALUATIONS.refused(reload)


def names() -> list[str]:
    """Names of every registered evaluation."""
    return list(registered())


def get(name: str) -> EvaluationInfo:
    """The evaluation ``name``: a registered one, or ``MODULE:FUNCTION`` imported; PluginError
    with its reason for a refused plugin or what is not an evaluation, KeyError naming the
    known ones for an unknown name."""
    try:
        return EVALUATIONS.get(name)
    except KeyError:
        pass
    module, _, qualname = name.partition(":")
    if module and qualname:
        try:
            function: Any = importlib.import_module(module)
            for part in qualname.split("."):
                function = getattr(function, part)
        except (ImportError, AttributeError) as exc:
            raise KeyError(
                f"no evaluation named {name!r} ({type(exc).__name__}: {exc})".splitlines()[0]
            ) from None
        return _load(name, function, module.split(".")[0])[1]
    known = ", ".join(registered()) or "none registered"
    raise KeyError(
        f"no evaluation named {name!r} (evaluations: {known}; or MODULE:FUNCTION)"
    ) from None
