"""The run store: one SQLite file per run, every result written the moment it is known.

:class:`Store` opens, creates and writes it (:mod:`.database`), with the queries of a run under
way (:mod:`.queries`) and the reads of its whole history (:mod:`.history`); :mod:`.schema` holds
the tables, the version and the migrations (docs/run-store.md documents them)."""

from .database import Store
from .schema import FILENAME, SCHEMA_VERSION, check_file

__all__ = ["FILENAME", "SCHEMA_VERSION", "Store", "check_file"]
