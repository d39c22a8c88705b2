"""Wires the other packages together: the ``ecogen`` command line (and, later, the evolution
engine, executors, run store and reports)."""

__all__: list[str] = []
