"""``ecogen report``: what a search did, as a page of figures and tables.

:func:`write_report` reads a run directory (finished, failed, resumed or still running: the
store is opened read-only and read in one short transaction, so the writer never waits) and
writes ``RUN_DIR/report/index.html`` with each figure beside it as PNG and SVG. Needs the
``report`` extra (matplotlib, networkx); :mod:`runner.report.data` alone needs neither.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..extras import require

#: The figures, by file name.
FIGURES = ("progress", "individuals", "lineage", "family-tree", "genome", "operators")


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``RUN_DIR/report``) and return the
    path of its ``index.html``. Every file is replaced whole (written under a temporary name,
    then renamed), so a browser reloading the page meanwhile sees the old one or the new."""
    require("ecogen report", "report")
    from genomics import dumps, loads

    from . import figures as fg
    from . import genome_drawing
    from .data import read_run
    from .page import render

    started = time.perf_counter()
    run = read_run(run_dir)
    folder = Path(out) if out is not None else run.run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    best = run.best_id()
    made = []
    with fg.style():
        drawings = {
            "progress": lambda: fg.progress(run),
            "individuals": lambda: fg.individuals(run),
            "family-tree": lambda: fg.family_tree(run),
            "operators": lambda: fg.operators(run),
        }
        if best is not None:
            drawings["lineage"] = lambda: fg.lineage(run, best)
            drawings["genome"] = lambda: fg.best_genome(run, best)
        for name, draw in drawings.items():
            fig = draw()
            try:
                for fmt in ("png", "svg"):
                    path = folder / f"{name}.{fmt}"
                    _replace(path, lambda p, fig=fig, f=fmt: genome_drawing.save(fig, p, f))
            finally:
                fg.plt.close(fig)
            made.append(name)
    if best is not None:
        genome = loads(run.individuals[best].genome)
        _replace(folder / "genome.json", lambda p: p.write_text(dumps(genome)))
        _replace(folder / "genome.dot", lambda p: p.write_text(genome_drawing.to_dot(genome, best)))
    page = render(run, made, time.perf_counter() - started)
    index = folder / "index.html"
    _replace(index, lambda p: p.write_text(page, encoding="utf-8"))
    return index


def _replace(path: Path, write) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
