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
    kept = len(decided["survivors"])
    youngest = [c.id for c in children][-kept:] if kept <= len(children) else None
    if youngest is not None:
        assert decided["survivors"] == youngest
