"""The experiment configuration: one TOML file, flags on top, written back resolved
(:class:`Experiment`, its value checks and its documents)."""

from ..errors import ConfigError, RunError
from .checks import MAX_SEED
from .documents import INTRODUCED, dumps, from_dict, introduced, load, resume_changes, tomllib
from .experiment import ADJUSTABLE, AUGMENTS, EXECUTORS, FIELDS, LIMITS, Experiment

__all__ = [
    "ADJUSTABLE",
    "AUGMENTS",
    "EXECUTORS",
    "FIELDS",
    "INTRODUCED",
    "LIMITS",
    "MAX_SEED",
    "ConfigError",
    "Experiment",
    "RunError",
    "dumps",
    "from_dict",
    "introduced",
    "load",
    "resume_changes",
    "tomllib",
]
