"""Search strategies (selection, succession, extinction, duplication, mimicry) as plugins.

Imports genomics, operators and deap, never torch: a strategy sees metrics as numbers.
"""

__all__: list[str] = []
