"""Whether a change of code changes a run: the same search, run by two revisions of ecogen,
compared individual by individual.

Each revision (``--base``, and ``--head`` or the working tree) runs ``ecogen evolve`` on digits
with ``make demo``'s population and epochs for 4 generations and no time budget (so the result does
not depend on the machine's speed), in a ``git worktree`` of its own. The two run stores are then
compared: every individual's genome hash, reused flag, status, fitness, epochs and each epoch's
loss and accuracy; the events; the checkpoints (populations, hall of fame, counters, logbook,
strategy state; their times left out). A refactoring must print ``identical`` on all three. The
wall time of each run is printed as a ratio, head to base.

    python bench/same_run.py --base ffee65f            # the working tree against ffee65f
    python bench/same_run.py --base HEAD~3 --head HEAD
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ["--population", "12", "--generations", "4", "--epochs", "8", "--final-epochs", "1"]
SMOKE = ["--population", "4", "--generations", "1", "--epochs", "1", "--final-epochs", "1"]


def checkout(revision: str | None, where: Path) -> Path:
    """The source tree of ``revision`` (a worktree under ``where``), or this one for None."""
    if revision is None:
        return ROOT
    tree = where / revision.replace("/", "_").replace("~", "-")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), revision],
        check=True,
    )
    return tree


def run(tree: Path, run_dir: Path, settings: list[str], seed: int) -> float:
    """Run the search with ``tree``'s code; its wall time in seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "runner.cli", "evolve", "--dataset", "digits"]
    command += [*settings, "--time-budget", "0", "--seed", str(seed), "--run-dir", str(run_dir)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{tree}: ecogen evolve exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


def individuals(db: sqlite3.Connection) -> dict[str, tuple]:
    rows = db.execute(
        "SELECT i.id, i.genome_hash, i.reused, e.status, e.fitness, e.epochs, e.history"
        " FROM individuals i JOIN evaluations e ON e.id = i.evaluation"
        " ORDER BY i.generation, i.id"
    )
    found = {}
    for id_, genome_hash, reused, status, fitness, epochs, history in rows:
        # Losses to 6 places: the same training gives the same float, printed alike.
        epochs_seen = [
            (h["epoch"], round(h["train_loss"], 6), h["val_accuracy"]) for h in _json(history)
        ]
        found[id_] = (genome_hash, reused, status, _json(fitness), epochs, epochs_seen)
    return found


def events(db: sqlite3.Connection) -> list[tuple]:
    query = "SELECT generation, source, kind, individual, data FROM events ORDER BY id"
    return [tuple(row) for row in db.execute(query)]


def checkpoints(db: sqlite3.Connection) -> list[dict]:
    db.row_factory = sqlite3.Row
    found = []
    for row in db.execute("SELECT * FROM checkpoints ORDER BY generation"):
        values = {key: _json(row[key]) for key in row.keys() if key != "created_at"}
        if isinstance(values.get("counters"), dict):
            values["counters"].pop("seconds", None)
        for record in values.get("logbook") or []:
            record.pop("seconds", None)
        found.append(values)
    db.row_factory = None
    return found


def compare(base: Path, head: Path) -> bool:
    """Print how the two stores compare; whether they are the same run."""
    a, b = sqlite3.connect(base), sqlite3.connect(head)
    ia, ib = individuals(a), individuals(b)
    differ = [k for k in sorted(set(ia) | set(ib)) if ia.get(k) != ib.get(k)]
    same = len(ia) - len([k for k in differ if k in ia])
    print(f"individuals: {same} of {len(ia)} identical ({len(ib)} in head)")
    for key in differ[:5]:
        print(f"  {key}: base {str(ia.get(key))[:120]} | head {str(ib.get(key))[:120]}")
    ea, eb = events(a), events(b)
    print(f"events: {'identical' if ea == eb else 'differ'} ({len(ea)} and {len(eb)})")
    ca, cb = checkpoints(a), checkpoints(b)
    print(f"checkpoints: {'identical' if ca == cb else 'differ'} ({len(ca)} and {len(cb)})")
    return not differ and len(ia) == len(ib) and ea == eb and ca == cb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="revision to compare with [HEAD]")
    parser.add_argument("--head", default=None, help="revision to compare [the working tree]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a tiny search (seconds)")
    args = parser.parse_args()
    settings = SMOKE if args.smoke else DEMO
    where = Path(tempfile.mkdtemp(prefix="same-run-"))
    trees = []
    try:
        seconds = {}
        for name, revision in (("base", args.base), ("head", args.head)):
            tree = checkout(revision, where)
            if revision is not None:
                trees.append(tree)
            seconds[name] = run(tree, where / f"run-{name}", settings, args.seed)
            print(f"{name}: {revision or 'working tree'}, {seconds[name]:.1f} s")
        same = compare(where / "run-base" / "ecogen.sqlite", where / "run-head" / "ecogen.sqlite")
        print(f"wall time head / base: {seconds['head'] / seconds['base']:.2f}")
        print("same run" if same else "NOT the same run")
    finally:
        for tree in trees:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])
        shutil.rmtree(where, ignore_errors=True)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
