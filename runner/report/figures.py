"""The report's figures, drawn with matplotlib (Agg) from a :class:`~runner.report.data.Run`.

Each function returns a figure; :func:`runner.report.write_report` saves it as PNG and SVG.
Graph layouts (the family tree, the genome) are networkx's.
"""

from __future__ import annotations

import collections
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .axes import (
    COST_LABELS,
    PHASE_COLOURS,
    STATUS_MARKERS,
    clip_below,
    floor,
    percent,
    placeholder,
    style,
)
from .data import Individual, Run
from .lineage import family_tree, lineage


def progress(run: Run) -> Any:
    """Best and median validation accuracy of the population per finished generation, against
    cumulative training epochs and against search time; the candidates each generation
    trained; succession phases shaded; generations where extinction stopped candidates marked."""
    rows = run.progress()
    if not rows:
        return placeholder("Progress", "no generation has finished yet")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True, layout="constrained")
    seconds = [r["seconds"] for r in rows]
    minutes = max(seconds) >= 600
    time_label = "search time (minutes)" if minutes else "search time (seconds)"
    phases = {r["generation"]: r["phase"] for r in rows}
    trained = [a for r in rows for a in r["candidates"]]
    low = floor([r["median"] for r in rows], trained)
    high = min(1.005, max(r["best"] for r in rows) + 0.015)
    clipped = 0
    for ax, key, label in (
        (axes[0], "epochs", "training epochs spent (cumulative, all candidates)"),
        (axes[1], "seconds", time_label),
    ):
        scale = 60.0 if key == "seconds" and minutes else 1.0
        xs = [r[key] / scale for r in rows]
        _shade_phases(ax, rows, xs, phases)
        cx = [x for x, r in zip(xs, rows, strict=True) for a in r["candidates"] if a > 0]
        cy, below = clip_below([a for r in rows for a in r["candidates"] if a > 0], low)
        ax.scatter(cx, cy, s=14, color="0.65", alpha=0.6, linewidths=0, zorder=2)
        ax.scatter(
            [x for x, b in zip(cx, below, strict=True) if b],
            [low] * sum(below),
            s=22,
            marker="v",
            color="0.55",
            zorder=2,
            clip_on=False,
        )
        clipped = sum(below)
        ax.plot(xs, [r["best"] for r in rows], "-o", color="#1f77b4", ms=4, zorder=4)
        ax.plot(xs, [r["median"] for r in rows], "--s", color="#ff7f0e", ms=3.5, zorder=3)
        for x, r in zip(xs, rows, strict=True):
            if r["extinct"]:
                ax.axvline(x, color="#d62728", lw=0.8, ls=":", zorder=1)
                ax.plot([x], [high], marker="v", color="#d62728", ms=6, clip_on=False, zorder=5)
        ax.set_xlabel(label)
        ax.set_ylim(low, high)
        ax.set_xlim(0, max(xs) * 1.04 or 1.0)
        ax.grid(alpha=0.3)
        top = ax.twiny()
        top.set_xlim(ax.get_xlim())
        shown = _spaced(xs, ax.get_xlim())
        top.set_xticks([xs[k] for k in shown], [str(rows[k]["generation"]) for k in shown])
        top.set_xlabel("generation", fontsize=9)
        top.tick_params(labelsize=8, length=3)
        top.spines["top"].set_visible(True)
        top.spines["right"].set_visible(False)
    axes[0].set_ylabel("validation accuracy")
    percent(axes[0])
    handles = [
        Line2D([], [], color="#1f77b4", marker="o", ms=4, label="best of the population"),
        Line2D(
            [], [], color="#ff7f0e", marker="s", ms=3.5, ls="--", label="median of the population"
        ),
        Line2D(
            [],
            [],
            color="0.65",
            marker="o",
            ls="",
            ms=4,
            label="candidates trained in the generation",
        ),
    ]
    if clipped:
        handles.append(
            Line2D(
                [],
                [],
                color="0.55",
                marker="v",
                ls="",
                ms=5,
                label=f"candidates below the axis ({clipped})",
            )
        )
    if any(r["extinct"] for r in rows):
        handles.append(
            Line2D(
                [],
                [],
                color="#d62728",
                marker="v",
                ls=":",
                lw=0.8,
                label="extinction stopped candidates",
            )
        )
    for k, phase in enumerate(dict.fromkeys(p for p in phases.values() if p)):
        colour = PHASE_COLOURS[k % len(PHASE_COLOURS)]
        handles.append(Patch(facecolor=colour, label=f"{phase} phase"))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 3), frameon=False
    )
    last = rows[-1]["generation"]
    fig.suptitle(f"Progress, generation 0 to {last}" if last else "Progress, generation 0")
    return fig


def _spaced(xs: list[float], limits: tuple[float, float], room: float = 0.045) -> list[int]:
    """Indices of ``xs`` (ascending) to label, at least ``room`` of the axis apart, the last
    always: generations that cost next to nothing (all re-used, failed early) share a place."""
    gap = (limits[1] - limits[0]) * room
    shown: list[int] = []
    for k, x in enumerate(xs):
        if not shown or x - xs[shown[-1]] >= gap:
            shown.append(k)
    while len(shown) > 1 and xs[-1] - xs[shown[-2]] < gap:
        shown.pop(-2)
    if shown[-1] != len(xs) - 1:
        shown[-1] = len(xs) - 1
    return shown


def _shade_phases(ax: Any, rows: list[dict], xs: list[float], phases: dict[int, str]) -> None:
    names = list(dict.fromkeys(p for p in phases.values() if p))
    if not names:
        return
    start = 0.0  # a generation's work lies between the previous checkpoint and its own
    for k, (x, row) in enumerate(zip(xs, rows, strict=True)):
        phase = phases.get(row["generation"], "")
        if phase:
            colour = PHASE_COLOURS[names.index(phase) % len(PHASE_COLOURS)]
            ax.axvspan(start if k else 0.0, x, color=colour, lw=0, zorder=0)
        start = x


# --- 2. every individual ---------------------------------------------------------------------


def individuals(run: Run) -> Any:
    """Every evaluated individual's validation accuracy against its parameters (and the other
    costs a multi-objective run minimised), coloured by generation; failed, extinct, stopped
    and reused ones marked; the Pareto front of each."""
    costs = ["params", *(c for c in run.objectives[1:] if c != "params")]
    everyone = list(run.individuals.values())
    if not everyone:
        return placeholder("Every individual", "no individual has been evaluated yet")
    width = max(10.0, 5.0 * len(costs) + 1.6)
    fig, axes = plt.subplots(
        1, len(costs), figsize=(width, 5.6), sharey=True, layout="constrained", squeeze=False
    )
    axes = list(axes[0])
    last = max(i.generation for i in everyone)
    norm = Normalize(0, max(last, 1))
    cmap = plt.get_cmap("viridis")
    best = run.best_id()
    fronts = {cost: run.pareto_front(cost) for cost in costs}
    low = floor(
        [i.accuracy for f in fronts.values() for i in f],
        [i.accuracy for i in everyone if i.status == "ok"],
    )
    unplaced = below = 0
    for ax, cost in zip(axes, costs, strict=True):
        placed = [i for i in everyone if (getattr(i, cost) or 0) > 0]
        if cost == "params":
            unplaced = len(everyone) - len(placed)
            below = sum(1 for i in placed if not i.reused and i.accuracy < low)

        def points(group: list[Individual], cost: str = cost) -> tuple[list, list]:
            return [getattr(i, cost) for i in group], [max(i.accuracy, low) for i in group]

        fresh = [i for i in placed if not i.reused]
        for status, marker in STATUS_MARKERS.items():
            group = [i for i in fresh if i.status == status]
            if group:
                ax.scatter(
                    *points(group),
                    c=[i.generation for i in group],
                    cmap=cmap,
                    norm=norm,
                    marker=marker,
                    s=30 if status == "ok" else 42,
                    edgecolors="none",
                    alpha=0.85,
                    zorder=3,
                    clip_on=False,
                )
        failed = [i for i in fresh if i.status == "failed"]
        if failed:
            ax.scatter(*points(failed), marker="x", color="#d62728", s=36, zorder=4, clip_on=False)
        reused = [i for i in placed if i.reused]
        if reused:
            ax.scatter(
                *points(reused),
                marker="o",
                s=95,
                facecolors="none",
                edgecolors="0.35",
                linewidths=0.8,
                zorder=2,
                clip_on=False,
            )
        front = fronts[cost]
        if front:
            xs, ys = points(front)
            ax.step(xs, ys, where="post", color="black", lw=1.2, zorder=5)
            ax.plot(xs, ys, "o", ms=7, mfc="none", mec="black", mew=1.2, zorder=5)
        star = run.individuals.get(best) if best else None
        if star is not None and (getattr(star, cost) or 0) > 0:
            at = (getattr(star, cost), max(star.accuracy, low))
            ax.plot(*at, marker="*", ms=16, color="#ffbf00", mec="black", mew=0.8, zorder=6)
            ax.annotate(
                star.id, at, xytext=(9, -13), textcoords="offset points", fontsize=9, zorder=6
            )
        if placed:
            ax.set_xscale("log")
        ax.set_xlabel(COST_LABELS.get(cost, cost))
        ax.grid(alpha=0.3, which="major")
    axes[0].set_ylabel("validation accuracy")
    percent(axes[0])
    axes[0].set_ylim(low, 1.005)
    colourbar = fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, pad=0.01, aspect=30
    )
    colourbar.set_label("generation")
    colourbar.locator = MaxNLocator(integer=True)
    colourbar.update_ticks()
    counts = collections.Counter(i.status for i in everyone if not i.reused)
    grey = "0.45"

    def handle(label: str, **style: Any) -> Line2D:
        return Line2D([], [], ls=style.pop("ls", ""), label=label, **style)

    handles = [handle(f"trained ({counts['ok']})", marker="o", color=grey)]
    if counts["extinct"]:
        handles.append(
            handle(f"extinct at a landmark ({counts['extinct']})", marker="v", color=grey)
        )
    if counts["stopped"]:
        handles.append(handle(f"stopped early ({counts['stopped']})", marker="s", color=grey))
    if counts["failed"]:
        note = f", {unplaced} without a size not shown" if unplaced else ""
        handles.append(handle(f"failed ({counts['failed']}{note})", marker="x", color="#d62728"))
    reused_count = sum(1 for i in everyone if i.reused)
    if reused_count:
        handles.append(
            handle(f"reused evaluation ({reused_count})", marker="o", mfc="none", mec="0.35", ms=9)
        )
    handles.append(handle("Pareto front", color="black", marker="o", mfc="none", ls="-"))
    if best:
        handles.append(handle(f"best: {best}", marker="*", ms=12, color="#ffbf00", mec="black"))
    if below:
        handles.append(
            handle(f"below the axis, drawn on its edge ({below})", marker="_", color=grey, ms=10)
        )
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False)
    fig.suptitle(f"Every individual: {len(everyone)} made, {len(run.evaluated())} evaluations")
    return fig


# --- 3. lineage --------------------------------------------------------------------------------


def operators(run: Run) -> Any:
    """Per mutation: children made with it, and how many of them beat their parent."""
    table = run.operator_statistics()
    if not table:
        return placeholder("Mutations", "no child has been made yet (generation 0 only)")
    height = 0.36 * max(len(table), 3) + 1.7
    fig, ax = plt.subplots(figsize=(10, height), layout="constrained")
    names = list(table)
    ys = range(len(names))
    applied = [table[n]["applied"] for n in names]
    improved = [table[n]["improved"] for n in names]
    failed = [table[n]["failed"] for n in names]
    ax.barh(ys, applied, color="#c6dbef", height=0.7, label="children made with it")
    ax.barh(ys, improved, color="#2171b5", height=0.7, label="… that beat their parent")
    if any(failed):
        ax.barh(ys, failed, left=improved, color="#fcbba1", height=0.7, label="… that failed")
    for y, n in zip(ys, names, strict=True):
        row = table[n]
        share = row["improved"] / row["applied"] if row["applied"] else 0
        ax.text(
            row["applied"] + max(applied) * 0.01,
            y,
            f"{row['improved']} of {row['applied']} better ({share:.0%})",
            va="center",
            fontsize=9,
        )
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(applied) * 1.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("children (a child made by several mutations counts for each)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    fig.suptitle("Mutations: how often applied, how often the child beat its parent")
    return fig


# --- 4. the best genome ------------------------------------------------------------------------


def best_genome(run: Run, best: str) -> Any:
    from genomics import loads

    from . import genome_drawing

    ind = run.individuals[best]
    accuracy = f"{ind.accuracy:.2%}" if ind.status == "ok" else ind.status
    params = f", {ind.params:,} parameters" if ind.params else ""
    return genome_drawing.figure(
        loads(ind.genome), f"The best genome, {best}: validation accuracy {accuracy}{params}"
    )


__all__ = [
    "Individual",
    "best_genome",
    "family_tree",
    "individuals",
    "lineage",
    "operators",
    "progress",
    "style",
]
