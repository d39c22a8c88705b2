"""``ecogen evolve --report``: the report refreshed as the search goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LiveReport:
    """A reporter (runner.evolution.state.Reporter) that passes everything on to ``inner`` and
    rewrites ``RUN_DIR/report/`` at the end of every generation. A report that cannot be written is
    said on the console, once per reason; it never stops the search."""

    def __init__(self, inner: Any, console: Any = None) -> None:
        self.inner = inner
        self.console = console
        self._said: set[str] = set()

    def started(self, run: Any) -> None:
        self.inner.started(run)

    def evaluating(self, run: Any, individual: Any) -> None:
        self.inner.evaluating(run, individual)

    def evaluated(self, run: Any, individual: Any, result: dict) -> None:
        self.inner.evaluated(run, individual, result)

    def generation_done(self, run: Any, record: dict) -> None:
        self.inner.generation_done(run, record)
        self.refresh(run.run_dir)

    def final_training(self, run: Any, genome: Any) -> None:
        self.inner.final_training(run, genome)

    def refresh(self, run_dir: str | Path) -> Path | None:
        from . import write_report

        try:
            return write_report(run_dir)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if message not in self._said and self.console is not None:
                self._said.add(message)
                self.console.print(f"[yellow]report not written:[/] {message}", markup=True)
            return None
