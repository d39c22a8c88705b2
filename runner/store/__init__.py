"""The run store: one SQLite file per run, every result written the moment it is known
(:class:`Store`; its schema in docs/run-store.md)."""

from .database import Store
from .schema import FILENAME, SCHEMA_VERSION, check_file

__all__ = ["FILENAME", "SCHEMA_VERSION", "Store", "check_file"]
