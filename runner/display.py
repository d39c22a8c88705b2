"""The live display of ``ecogen evolve`` and ``ecogen resume``, and their final table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class RichReporter:
    """One progress line (generation, evaluations, best so far, elapsed and remaining time)
    and one log line per finished generation, on stderr. Log lines are printed whole, never
    wrapped: in a log file or CI output a wrapped row is two half rows."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]gen {task.fields[gen]}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task = None
        self.best = ""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _update(self, run: Any, doing: str) -> None:
        e = run.experiment
        if run.capacity > 1:  # what each worker is training, and how many wait
            busy = run.busy
            idle = run.capacity - len(busy)
            doing = "  ".join(f"{w}: {i}" for w, i in busy.items()) + (
                f"  idle {idle}" if idle else ""
            )
        remaining = run.remaining
        left = f"  left {_clock(remaining)}" if remaining is not None else ""
        text = (
            f"evals {run.evaluations}  best {self.best or '-'}  {doing}"
            f"  elapsed {_clock(run.seconds)}{left}"
        )
        if self.task is None:
            self.task = self.progress.add_task(text, total=e.generations + 1, gen="0")
        self.progress.update(
            self.task,
            description=text,
            completed=max(run.generation, 0),
            gen=f"{max(run.generation, 0)}/{e.generations}",
        )

    def started(self, run: Any) -> None:
        e = run.experiment
        limits = [f"{e.generations} generations"]
        if e.max_epochs:
            limits.append(f"{e.max_epochs} training epochs")
        if e.time_budget:
            limits.append(f"{_clock(e.time_budget)} budget")
        if e.max_evaluations:
            limits.append(f"{e.max_evaluations} evaluations")
        self.console.print(
            f"[bold]ecogen evolve[/] {e.dataset}: strategy {'+'.join(run.strategies)},"
            f" population {e.population},"
            f" {', '.join(limits)}, {e.epochs} epochs per candidate, on {run.device}"
            f"{_workers(run.executor_stats)}"
            f" -> {run.run_dir}",
            soft_wrap=True,
        )
        self._update(run, "")

    def evaluating(self, run: Any, individual: Any) -> None:
        self._update(run, f"training {individual.id}")

    def evaluated(self, run: Any, individual: Any, result: dict) -> None:
        evaluated = [i for i in run.population if i.fitness.valid and i is not individual]
        best = max([*evaluated, individual], key=run.ranking.key)
        params = best.evaluation.get("params") or 0
        self.best = f"{best.fitness.values[0]:.2%} ({params:,} params)"
        if result["status"] == "failed":
            self.console.print(
                f"[yellow]{individual.id} failed:[/] {result['reason']}", soft_wrap=True
            )
        self._update(run, "")

    def generation_done(self, run: Any, record: dict) -> None:
        self.console.print(
            f"gen {record['gen']:>3}  evals {record['evals']:>3}  reused {record['reused']:>3}"
            f"  failed {record['failed']:>2}  extinct {record.get('extinct', 0):>2}"
            f"  val max {record['max']:.2%}"
            f"  mean {record['mean']:.2%}  best params {record['params'] or 0:,}"
            f"  [dim]{_clock(record['seconds'])}[/]",
            soft_wrap=True,
        )
        self._update(run, "")

    def final_training(self, run: Any, genome: Any) -> None:
        e = run.experiment
        self._update(run, f"final training of the best ({e.final_epochs} epochs)")


def _workers(stats: dict[str, Any]) -> str:
    if stats["executor"] == "serial":
        return ""
    return f" ({stats['workers']} {stats['executor']} workers)"


def final_table(summary: dict[str, Any]) -> Table:
    best = summary["best"]
    table = Table(title=f"best of {summary['run_dir']}", show_header=False)
    rows = (
        ("individual", f"{best['id']} (generation {best['generation']})"),
        ("test accuracy", _share(best["test_accuracy"])),
        ("val accuracy", f"{best['val_accuracy']:.2%} (search: {best['search_val_accuracy']:.2%})"),
        ("parameters", "-" if best["params"] is None else f"{best['params']:,}"),
        ("FLOPs / image", "-" if best["flops"] is None else f"{best['flops']:,}"),
        ("mutations", " ".join(best["operators"]) or "-"),
        ("generations", str(summary["generations"])),
        ("evaluations", f"{summary['evaluations']} ({summary['epochs_trained']} epochs)"),
        ("de-duplicated", str(summary["dedup_hits"])),
        ("failures", str(summary["failures"])),
        ("search time", f"{_clock(summary['seconds'])} (stopped by {summary['stopped_by']})"),
        ("final training", _final(summary)),
        ("workers", _worker_row(summary)),
        ("disk", f"{summary['disk_bytes'] / 2**20:,.1f} MiB"),
        ("written to", f"{summary['run_dir']}/best"),
    )
    for key, value in rows:
        table.add_row(key, value)
    return table


def _share(value: float | None) -> str:
    # A user evaluation may give no test accuracy.
    return "-" if value is None else f"{value:.2%}"


def _final(summary: dict[str, Any]) -> str:
    if summary.get("evaluation"):
        return f"none (evaluated by {summary['evaluation']})"
    return _clock(summary["final_training_seconds"])


def _worker_row(summary: dict[str, Any]) -> str:
    idle = summary.get("worker_idle_seconds")
    waited = f", idle {_clock(idle)} in all" if idle else ""
    return f"{summary.get('workers', 1)} ({summary.get('executor', 'serial')}{waited})"
