import os

from hypothesis import HealthCheck, settings

# Generated genomes are built and compiled, which is slower than hypothesis' default budget.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile("ci" if os.environ.get("CI") else "default")
