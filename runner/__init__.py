"""Wires the other packages together: the experiment configuration, the evolution loop
(``engine``) with its candidates, executors, budget and checkpoints, the SQLite run store,
starting and resuming runs (``session``), the files of a run (``artifacts``) and the ``ecogen``
command line (``cli``). docs/architecture.md shows how a candidate flows through them."""

__all__: list[str] = []
