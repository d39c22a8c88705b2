"""A tabular benchmark for tests: user evaluations (``runner.evaluations``) that look a genome's
accuracy up instead of training it, importable by name (``tabular:lookup``) in worker and
command-line processes alike."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from genomics import canonical_hash, parameter_counts

#: The JSON file of the table (genome hash -> validation accuracy), when a test writes one.
TABLE = "ECOGEN_TEST_TABLE"


def accuracy_of(params: int) -> float:
    """A deterministic accuracy for a parameter count: best about 3,000 parameters."""
    return round(0.5 + 0.45 * math.exp(-((math.log10(max(params, 1)) - 3.5) ** 2)), 6)


def lookup(genome, context) -> dict:
    """Look the genome's accuracy up in the table ``ECOGEN_TEST_TABLE`` names (a function of
    its parameter count where the table has none)."""
    params = sum(parameter_counts(genome).values())
    path = os.environ.get(TABLE)
    table = json.loads(Path(path).read_text()) if path else {}
    accuracy = table.get(canonical_hash(genome), accuracy_of(params))
    return {
        "val_accuracy": accuracy,
        "test_accuracy": round(accuracy - 0.01, 6),
        "params": params,
        "source": "table" if canonical_hash(genome) in table else "formula",
    }
