import os

from hypothesis import HealthCheck, settings

# The tests train tiny networks, for which a thread pool only adds waiting; on a busy machine its
# threads also spin for each other, turning seconds into minutes. One thread for PyTorch here and
# in the processes tests start (read when torch is imported, after this file); an
# OMP_NUM_THREADS of your own wins. Results do not depend on it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Generated genomes are built and compiled, which is slower than hypothesis' default budget.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile("ci" if os.environ.get("CI") else "default")
