"""The plugin's own property tests, with the strategies ecogen exports for them."""

from ecogen_ageing import Ageing
from hypothesis import given, settings
from hypothesis import strategies as hs

from strategies import Search
from strategies.testing import check_strategy, decide, generations


@settings(max_examples=20, deadline=None)
@given(generations(), hs.integers(0, 2**32 - 1))
def test_ageing_honours_the_strategy_contract(generation, seed):
    population, children = generation
    check_strategy(lambda: [Ageing(sample=3)], population, children, seed)


@settings(max_examples=20, deadline=None)
@given(generations(min_size=2))
def test_the_oldest_die_whatever_their_fitness(generation):
    population, children = generation
    decided = decide(Search([Ageing()]), population, children)
    count = min(len(population), len(population) + len(children))  # the plan keeps P
    # Every child is younger than every parent; within a generation, the later made is younger.
    if count <= len(children):
        youngest = children[len(children) - count :]
    else:
        youngest = population[len(population) - (count - len(children)) :] + children
    assert decided["survivors"] == [i.id for i in youngest]
