"""The report's lineage figures: the best individual's ancestors, and the family tree of the
last population (networkx's multipartite layout)."""

from __future__ import annotations

from typing import Any

import networkx as nx
from matplotlib import pyplot as plt
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .axes import floor, percent, placeholder
from .data import Run


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
    low = floor(accuracy, [])
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
    percent(ax, "x")
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
        return placeholder("Family tree of the final population", "no generation has finished yet")
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
