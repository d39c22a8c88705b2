"""Crash points: a way to kill a run at an exact moment, for testing resume.

With ``ECOGEN_CRASH_AT=POINT:N`` in the environment the process sends itself SIGKILL the N-th
time (counting from 1) it reaches POINT; without the variable (the default) :func:`reached` does
nothing but count. SIGKILL cannot be caught, so the process dies as it would from ``kill -9`` or
the out-of-memory killer: nothing is flushed, closed or rolled back by ecogen itself.

Points (see docs/reliability.md):

- ``epoch``: after an epoch of a candidate's training, before its evaluation is stored;
- ``weights``: after a candidate's weights are written, before its evaluation is stored;
- ``record``: inside the transaction that stores an evaluation, before it commits;
- ``evaluation``: after an evaluation is committed, before the next one starts;
- ``checkpoint``: inside a generation's checkpoint transaction, before it commits;
- ``final``: at the start of the final training of the best.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from .errors import ConfigError

VARIABLE = "ECOGEN_CRASH_AT"
POINTS = ("epoch", "weights", "record", "evaluation", "checkpoint", "final")

_counts: Counter = Counter()


def _target() -> tuple[str, int] | None:
    value = os.environ.get(VARIABLE, "")
    if not value:
        return None
    point, _, nth = value.partition(":")
    if point not in POINTS or not nth.isdigit() or int(nth) < 1:
        raise ConfigError(
            f"{VARIABLE}={value!r}: must be POINT:N with N >= 1 and POINT one of"
            f" {', '.join(POINTS)}"
        )
    return point, int(nth)


def check() -> None:
    """Fail early (ConfigError) when ``ECOGEN_CRASH_AT`` is set but malformed."""
    _target()


def reached(point: str) -> None:
    """Count one passage through ``point``; SIGKILL this process if it is the one asked for."""
    _counts[point] += 1
    target = _target()
    if target is not None and target == (point, _counts[point]):
        os.kill(os.getpid(), signal.SIGKILL)
