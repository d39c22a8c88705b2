"""The run's events (:class:`EventLog`): what the strategies and the engine decided and why.

An event about a candidate's evaluation (reused, not inherited, a strategy's note while it
trained) is stored with that evaluation, in the same transaction; the others with the
generation's checkpoint, so a generation done again after a stop does not repeat them. While a
strategy decides about one candidate (:meth:`EventLog.deciding`), what it records is that
candidate's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..records import event


class EventLog:
    """The events not stored yet: the generation's, and each candidate's until it is."""

    def __init__(self, generation: Callable[[], int]) -> None:
        self._generation = generation
        self._generation_events: list[dict[str, Any]] = []
        self._candidates: dict[str, list[dict[str, Any]]] = {}
        self._deciding: str | None = None

    def event(self, kind: str, source: str, individual: str | None, data: dict) -> dict:
        """An event of the generation under way."""
        return event(self._generation(), kind, source, individual, data)

    def record(self, kind: str, source: str, individual: str | None, data: dict) -> None:
        """Record an event: the candidate's being decided about, else the generation's (the
        strategies' recorder, ``strategies.Context.recorder``)."""
        entry = self.event(kind, source, individual, data)
        if self._deciding is not None:
            self._candidates.setdefault(self._deciding, []).append(entry)
        else:
            self._generation_events.append(entry)

    def of(self, individual: str, kind: str, source: str, data: dict) -> None:
        """Record an event of ``individual``'s evaluation."""
        self._candidates.setdefault(individual, []).append(
            self.event(kind, source, individual, data)
        )

    def extend(self, individual: str, events: Iterable[dict[str, Any]]) -> None:
        """Add events recorded elsewhere (a worker's judge) to ``individual``'s."""
        self._candidates.setdefault(individual, []).extend(events)

    @contextlib.contextmanager
    def deciding(self, individual: str) -> Iterator[None]:
        """While a strategy decides about ``individual``, its events are that candidate's."""
        self._deciding = individual
        try:
            yield
        finally:
            self._deciding = None

    def take(self, individual: str) -> list[dict[str, Any]]:
        """``individual``'s events, to store with its evaluation (and forget)."""
        return self._candidates.pop(individual, [])

    def take_generation(self) -> list[dict[str, Any]]:
        """The generation's events, to store with its checkpoint (and forget)."""
        events, self._generation_events = self._generation_events, []
        return events
