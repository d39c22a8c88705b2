"""Mutations and their registry, as DEAP operators (the 15 mutations of the thesis table).

Imports genomics and deap, never torch.
"""

__all__: list[str] = []
