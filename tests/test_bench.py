"""The benchmark scripts in bench/ keep working: none is named like a module it would shadow, and
each runs (``--smoke``: the same code at a tiny size, a few seconds each; slow tests).

A script run as ``python bench/NAME.py`` has bench/ first on sys.path, so a bench/phenotypes.py
is what ``import phenotypes`` finds there, in that script and in every module it imports."""

import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "bench").glob("*.py"))
# Where the commands that run them are shown.
DOCUMENTED_IN = [
    "Makefile",
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
]


def project_modules() -> set[str]:
    """What ``import NAME`` finds at the repository root: its packages and modules."""
    return {p.parent.name for p in ROOT.glob("*/__init__.py")} | {p.stem for p in ROOT.glob("*.py")}


def test_the_bench_scripts_are_found():
    assert len(SCRIPTS) >= 5, [p.name for p in SCRIPTS]


def test_no_bench_script_is_named_like_a_package_of_the_project():
    modules = project_modules()
    assert {"genomics", "operators", "phenotypes", "strategies", "zoo", "runner"} <= modules
    clashes = [f"bench/{p.name}" for p in SCRIPTS if p.stem in modules]
    assert not clashes, f"{clashes} would shadow the project's {sorted(modules)}: rename them"


def test_no_bench_script_is_named_like_a_library_module():
    libraries = set(sys.stdlib_module_names) | set(packages_distributions())
    clashes = [f"bench/{p.name}" for p in SCRIPTS if p.stem in libraries]
    assert not clashes, f"{clashes} would shadow a standard or installed module: rename them"


@pytest.mark.parametrize("document", DOCUMENTED_IN)
def test_the_bench_scripts_a_document_runs_exist(document):
    named = set(re.findall(r"\bbench/(\w+\.py)\b", (ROOT / document).read_text()))
    missing = sorted(named - {p.name for p in SCRIPTS})
    assert not missing, f"{document} runs bench/{missing}, which does not exist"


def _run(script: Path, option: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``python bench/NAME.py OPTION`` from the repository root, as the documents show it, with
    this checkout's packages first on the path. Temporary files (search_strategies.py's run
    directories) go to ``tmp_path``; no script writes anywhere else unless told to."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, f"bench/{script.name}", option],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_bench_script_runs_at_its_smoke_size(script, tmp_path):
    shown = _run(script, "--help", tmp_path)
    assert shown.returncode == 0, f"bench/{script.name} --help failed:\n{shown.stderr}"
    assert "--smoke" in shown.stdout, f"bench/{script.name} has no --smoke option"
    done = _run(script, "--smoke", tmp_path)
    assert done.returncode == 0, (
        f"bench/{script.name} --smoke exited {done.returncode}:\n{done.stderr}"
    )
    assert done.stdout.strip(), f"bench/{script.name} --smoke printed nothing"
