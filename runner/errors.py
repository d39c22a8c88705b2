"""Every exception the runner raises on purpose; the CLI prints each as one line (``--debug``
shows the traceback)."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EvaluationTimeout",
    "ExportError",
    "FailureLimit",
    "MissingExtra",
    "RunError",
    "StoreError",
]


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key."""


class RunError(Exception):
    """A run cannot start or resume; the message says why and what to do."""


class StoreError(Exception):
    """The run store is missing, damaged, from another version, or not an ecogen store."""


class FailureLimit(RunError):
    """Too many evaluations failed in a row; the message names the last reasons."""


class MissingExtra(RunError):
    """A command needs packages of an optional extra that are not installed."""


class ExportError(RunError):
    """The model cannot be exported, or the export does not compute what the model does."""


class EvaluationTimeout(Exception):
    """A candidate's evaluation ran past its time limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"evaluation took longer than its {seconds:g} s limit")
