"""Runs searches: the other packages wired into experiments, their runs and run stores.

Layers, top to bottom, each importing only its own and those below (tests/test_layers.py
checks): the ``ecogen`` command line (``cli``); runs started, resumed, shown and shipped
(``session``, ``display``, ``report``, ``export``, ``api``); the evolution loop
(``evolution``); training candidates (``execution``) beside the run store (``store``); the
experiment configuration, the per-epoch judge and a run's files (``config``, ``judge``,
``files``); records, exceptions and registries (``records``, ``errors``, ``failures``,
``executors``, ``proxies``, ``evaluations``, ...). docs/architecture.md gives each module's job."""

from typing import Any

__all__ = ["Run", "evolve", "open_run"]


def __getattr__(name: str) -> Any:
    # The API is imported when first named: `import runner.cli` (and `ecogen --help`) must not
    # import torch and the whole engine with it.
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
