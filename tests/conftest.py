import os
from pathlib import Path

import pytest
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


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """``install_plugin(dist, module, source, entry_points)``: a distribution installed as pip
    would (``module.py`` and a dist-info with ``entry_points``, e.g. ``{"ecogen.operators":
    {"demo": "module:function"}}``) on ``sys.path`` for this test; the registries (operators,
    crossovers, strategies, proxies, evaluations) scan it.
    Returns the folder, for ``PYTHONPATH`` in a subprocess. Undone after the test."""
    import sys
    import textwrap

    import operators
    import strategies
    from runner import evaluations, proxies

    folder = tmp_path / "site-packages"
    folder.mkdir()
    modules = []

    def install(dist: str, module: str, source: str, entry_points: dict) -> Path:
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        info = folder / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = []
        for group, entries in entry_points.items():
            lines.append(f"[{group}]")
            lines.extend(f"{name} = {value}" for name, value in entries.items())
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(folder))
        sys.modules.pop(module, None)
        modules.append(module)
        operators.registered(reload=True)
        operators.registered_crossovers(reload=True)
        strategies.registered(reload=True)
        proxies.registered(reload=True)
        evaluations.registered(reload=True)
        return folder

    yield install
    monkeypatch.undo()  # off sys.path before the registries scan again
    for module in modules:
        sys.modules.pop(module, None)
    for registry in (operators.OPERATORS, operators.CROSSOVERS):
        for name, info in list(registry.extra.items()):
            if info.transform.__module__ in modules:
                del registry.extra[name]
    operators.registered(reload=True)
    operators.registered_crossovers(reload=True)
    strategies.registered(reload=True)
    proxies.registered(reload=True)
    evaluations.registered(reload=True)
