"""Training candidates: the executors (serial, local worker processes, Ray) that take a run's
:class:`~runner.records.Task` records and hand back :class:`Outcome` records, all training
through :func:`~runner.execution.base.train_task`. Executors are looked up by name in
``runner.executors`` and imported only when a run uses one."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from .. import executors
from .base import Executor, Judge, Outcome

__all__ = ["Executor", "Judge", "Outcome", "make_executor"]


def make_executor(experiment: Any, data: Any, spec: Any, weights_dir: Path) -> Executor:
    """The executor ``experiment.executor`` names (``auto``: serial for one worker, local
    processes for more), built for this run's data, training and weight files."""
    name = executors.chosen(experiment.executor, experiment.workers)
    module, _, cls = executors.EXECUTORS[name].target.partition(":")
    return getattr(importlib.import_module(module), cls)(experiment, data, spec, weights_dir)
