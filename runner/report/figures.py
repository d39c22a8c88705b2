"""The report's figures, drawn with matplotlib (Agg) from a :class:`~runner.report.data.Run`.

Each function returns a figure; :func:`runner.report.write_report` saves it as PNG and SVG.
Graph layouts (the family tree, the genome) are networkx's.
"""

from __future__ import annotations

import collections
from typing import Any

import matplotlib

matplotlib.use("Agg")

import networkx as nx
from matplotlib import pyplot as plt
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .data import Individual, Run

STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

_PHASE_COLOURS = ("#deebf7", "#fee6ce", "#e5f5e0", "#efedf5")
_STATUS_MARKERS = {"ok": "o", "extinct": "v", "stopped": "s"}
_COST_LABELS = {
    "params": "parameters (log scale)",
    "size_bytes": "size in bytes (log scale)",
    "flops": "FLOPs per image (log scale)",
    "latency_ms": "latency, ms per image (log scale)",
}


def _placeholder(title: str, text: str) -> Any:
    """A small figure that says there is nothing to draw yet."""
    fig, ax = plt.subplots(figsize=(8, 1.6), layout="constrained")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.axis("off")
    fig.suptitle(title)
    return fig


def _floor(focus: list[float], others: list[float]) -> float:
    """The lower end of an accuracy axis: below what matters (``focus``: the best, medians,
    the front) and most of ``others``, but not down to every outlier; those are drawn on the
    axis' edge (:func:`_clip_below`)."""
    ranked = sorted(a for a in others if a > 0)
    typical = ranked[len(ranked) // 10] if ranked else 1.0
    low = min([*focus, typical], default=0.0)
    return max(0.0, low - max(0.03, (1.0 - low) * 0.15))


def _clip_below(values: list[float], low: float) -> tuple[list[float], list[bool]]:
    """Values below ``low`` moved onto it, and which were."""
    return [max(v, low) for v in values], [v < low for v in values]


def _percent(ax: Any, axis: str = "y") -> None:
    formatter = PercentFormatter(1.0, decimals=0)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


# --- 1. progress ---------------------------------------------------------------------------


def progress(run: Run) -> Any:
    """Best and median validation accuracy of the population per finished generation, against
    cumulative training epochs and against search time; the candidates each generation
    trained; succession phases shaded; generations where extinction stopped candidates marked."""
    rows = run.progress()
    if not rows:
        return _placeholder("Progress", "no generation has finished yet")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True, layout="constrained")
    seconds = [r["seconds"] for r in rows]
    minutes = max(seconds) >= 600
    time_label = "search time (minutes)" if minutes else "search time (seconds)"
    phases = {r["generation"]: r["phase"] for r in rows}
    trained = [a for r in rows for a in r["candidates"]]
    low = _floor([r["median"] for r in rows], trained)
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
        cy, below = _clip_below([a for r in rows for a in r["candidates"] if a > 0], low)
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
    _percent(axes[0])
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
        colour = _PHASE_COLOURS[k % len(_PHASE_COLOURS)]
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
            colour = _PHASE_COLOURS[names.index(phase) % len(_PHASE_COLOURS)]
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
        return _placeholder("Every individual", "no individual has been evaluated yet")
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
    low = _floor(
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
        for status, marker in _STATUS_MARKERS.items():
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
        ax.set_xlabel(_COST_LABELS.get(cost, cost))
        ax.grid(alpha=0.3, which="major")
    axes[0].set_ylabel("validation accuracy")
    _percent(axes[0])
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


def lineage(run: Run, best: str) -> Any:
    """The best's ancestors from generation 0: each step's accuracy and the mutations that made
    it from the one before."""
    chain = run.lineage(best)
    height = 0.42 * len(chain) + 1.6
    fig, (ax, notes) = plt.subplots(
        1,
        2,
        figsize=(11, height),
        sharey=True,
        gridspec_kw={"width_ratios": [3, 2], "wspace": 0.02},
        layout="constrained",
    )
    ys = list(range(len(chain)))
    accuracy = [i.accuracy for i in chain]
    low = _floor(accuracy, [])
    ax.plot(accuracy, ys, "-", color="#9ecae1", lw=1.5, zorder=2)
    for y, ind in zip(ys, chain, strict=True):
        failed = ind.status != "ok"
        ax.plot(
            max(ind.accuracy, low),
            y,
            "x" if failed else "o",
            color="#d62728" if failed else "#1f77b4",
            ms=8,
            zorder=3,
            clip_on=False,
        )
        ax.annotate(
            f"{ind.accuracy:.2%}" + ("" if ind.status == "ok" else f" ({ind.status})"),
            (max(ind.accuracy, low), y),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize=8.5,
        )
    ax.set_yticks(ys, [f"{i.id}  (generation {i.generation})" for i in chain])
    ax.set_ylim(len(chain) - 0.5, -0.7)
    ax.set_xlim(low, 1.005)
    _percent(ax, "x")
    ax.set_xlabel("validation accuracy")
    ax.grid(axis="x", alpha=0.3)
    notes.set_xlim(0, 1)
    notes.axis("off")
    notes.set_title("made from the step above by", loc="left", fontsize=10)
    for y, ind in zip(ys, chain, strict=True):
        if ind.operators:
            text = ", ".join(ind.operators)
        else:
            text = "the first population" if ind.generation == 0 else "(no mutation recorded)"
        if len(text) > 52:
            text = text[:51] + "…"
        params = f"{ind.params:,} params" if ind.params else ""
        notes.text(0.02, y - 0.12, text, va="center", fontsize=9)
        notes.text(0.02, y + 0.22, params, va="center", fontsize=8, color="0.4")
    fig.suptitle(f"Lineage of the best, {best}: {len(chain)} steps from generation 0")
    return fig


def family_tree(run: Run, limit: int = 250) -> Any:
    """Every ancestor of the final population, by generation (networkx's multipartite layout),
    coloured by accuracy; the final population ringed, the best starred."""
    final = run.final_population()
    note = ""
    ids = run.ancestry(final)
    if len(ids) > limit:
        final = final[:10]
        ids = run.ancestry(final)
        note = " (its 10 best)"
    if not ids:
        return _placeholder("Family tree of the final population", "no generation has finished yet")
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(ids, key=lambda i: run.individuals[i].generation))
    for child in ids:
        for parent in run.individuals[child].parents:
            if parent in ids:
                graph.add_edge(parent, child)
    generation = {i: run.individuals[i].generation for i in ids}
    layers = _ordered_layers(graph, generation)
    raw = nx.multipartite_layout(graph, subset_key=layers, align="horizontal")
    widest = max(len(v) for v in layers.values())
    span = max(generation.values()) + 1
    width = min(max(8.0, 0.85 * widest + 3.0), 18.0)
    height = max(3.5, 0.62 * span + 2.0)
    spread = max(abs(float(x)) for x, _ in raw.values()) or 1.0
    half = (width - 3.0) / 2
    pos = {n: (float(x) / spread * half, generation[n]) for n, (x, _) in raw.items()}
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    accuracy = [run.individuals[n].accuracy for n in graph.nodes]
    low = min(accuracy)
    norm = Normalize(low, max(max(accuracy), low + 1e-6))
    nx.draw_networkx_edges(
        graph, pos, ax=ax, edge_color="0.6", width=0.8, arrows=True, arrowsize=8, node_size=180
    )
    finals = set(final)
    best = run.best_id()
    nodes = nx.draw_networkx_nodes(
        graph,
        pos,
        ax=ax,
        node_color=accuracy,
        cmap="viridis",
        vmin=norm.vmin,
        vmax=norm.vmax,
        node_size=180,
        edgecolors=["black" if n in finals else "none" for n in graph.nodes],
        linewidths=[1.6 if n in finals else 0 for n in graph.nodes],
    )
    nodes.set_zorder(3)
    if best in pos:
        ax.plot(*pos[best], marker="*", ms=20, color="#ffbf00", mec="black", mew=0.8, zorder=4)
    # Ids under the nodes while they have room (about half an inch each in the widest row).
    if (width - 3.0) / max(widest - 1, 1) >= 0.5:
        for node, (x, y) in pos.items():
            ax.text(
                x,
                y + 0.3,
                node,
                ha="center",
                va="center",
                fontsize=7,
                zorder=5,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
            )
    ax.set_ylim(span - 0.3, -0.7)
    ax.set_xlim(-half - 0.6, half + 0.6)
    ax.set_ylabel("generation")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(left=True, labelleft=True)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    colourbar = fig.colorbar(nodes, ax=ax, pad=0.01, aspect=30, shrink=0.9)
    colourbar.set_label("validation accuracy")
    colourbar.formatter = PercentFormatter(1.0, decimals=1)
    colourbar.update_ticks()
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            mfc="0.8",
            mec="black",
            mew=1.6,
            ms=8,
            label="final population",
        ),
        Line2D([], [], marker="o", ls="", mfc="0.8", mec="none", ms=8, label="ancestor"),
    ]
    if best in pos:
        handles.append(
            Line2D(
                [],
                [],
                marker="*",
                ls="",
                ms=12,
                color="#ffbf00",
                mec="black",
                label=f"best: {best}",
            )
        )
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    fig.suptitle(f"Family tree of the final population{note}: {len(ids)} individuals")
    return fig


def _ordered_layers(graph: Any, generation: dict[str, int]) -> dict[int, list[str]]:
    """Each generation's individuals, ordered by where their parents are (fewer crossings)."""
    layers: dict[int, list[str]] = {}
    place: dict[str, float] = {}
    for g in sorted(set(generation.values())):
        members = [n for n in graph.nodes if generation[n] == g]

        def key(node: str) -> tuple[float, str]:
            above = [place[p] for p in graph.predecessors(node) if p in place]
            return (sum(above) / len(above) if above else 0.0, node)

        members.sort(key=key)
        for k, node in enumerate(members):
            place[node] = k - (len(members) - 1) / 2
        layers[g] = members
    return layers


# --- 5. operators ------------------------------------------------------------------------------


def operators(run: Run) -> Any:
    """Per mutation: children made with it, and how many of them beat their parent."""
    table = run.operator_statistics()
    if not table:
        return _placeholder("Mutations", "no child has been made yet (generation 0 only)")
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


def style() -> Any:
    return matplotlib.rc_context(STYLE)


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
