"""A genome drawn as a graph: one box per node (its gene's key fields, output shape and
parameters), arrows for the data flow, top to bottom.

The layout is networkx's ``multipartite_layout`` over the graph's topological generations (each
node one row below its deepest input); matplotlib draws it. :func:`to_dot` writes the same
graph for Graphviz and needs neither.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genomics import (
    Add,
    Concat,
    Conv,
    Dense,
    Dropout,
    Genome,
    Input,
    Output,
    Pool,
    infer_shapes,
    parameter_counts,
)

#: The formats ``ecogen show --draw`` writes; all but dot through matplotlib.
FORMATS = ("svg", "png", "pdf", "dot")

# Box colours by kind of gene (colour-blind safe, light enough for black text).
_COLOURS = {
    "input": "#e0e0e0",
    "conv": "#a6cee3",
    "binarized conv": "#1f78b4",
    "pool": "#b2df8a",
    "dropout": "#f0f0f0",
    "dense": "#fdbf6f",
    "join": "#cab2d6",
    "output": "#e0e0e0",
}
_WIDTH = 34  # characters per line in a box


def gene_summary(gene: Any) -> str:
    """The gene's kind and key fields, as a person says them: ``conv 3x3, 16 ch, stride 2``."""
    if isinstance(gene, Input):
        return "input image"
    if isinstance(gene, Output):
        return "output: logits"
    if isinstance(gene, Conv):
        parts = [f"conv {gene.kernel}x{gene.kernel}", f"{gene.out_channels} ch"]
        if gene.stride != 1:
            parts.append(f"stride {gene.stride}")
        if gene.groups != 1:
            parts.append(f"groups {gene.groups}")
        if gene.binarized:
            parts.append(f"binarized ({gene.binary_scale})")
        if not gene.batch_norm:
            parts.append("no BN")
        if gene.activation != "relu":
            parts.append("linear" if gene.activation == "none" else gene.activation)
        return ", ".join(parts)
    if isinstance(gene, Pool):
        if gene.global_pool:
            return f"global {gene.mode} pool"
        text = f"{gene.mode} pool {gene.kernel}x{gene.kernel}"
        return text + (f", stride {gene.stride}" if gene.stride != gene.kernel else "")
    if isinstance(gene, Dropout):
        if gene.kind == "evolutional":
            return f"evolutional dropout, samples {gene.samples:g}"
        return f"dropout {gene.rate:g}"
    if isinstance(gene, Dense):
        return f"dense {gene.units} units" + (
            ", linear" if gene.activation == "none" else f", {gene.activation}"
        )
    if isinstance(gene, Add):
        return "add" + (f", {gene.activation}" if gene.activation != "none" else "")
    if isinstance(gene, Concat):
        return "concat"
    return gene.TYPE


def gene_kind(gene: Any) -> str:
    if isinstance(gene, Conv):
        return "binarized conv" if gene.binarized else "conv"
    if isinstance(gene, (Add, Concat)):
        return "join"
    return gene.TYPE


def node_labels(genome: Genome) -> dict[str, list[str]]:
    """Per node id: its lines of text (id, gene summary, output shape and parameters)."""
    shapes = infer_shapes(genome)
    params = parameter_counts(genome, shapes)
    labels = {}
    for node in genome.nodes:
        shape = "x".join(map(str, shapes[node.id]))
        count = params[node.id]
        last = shape + (f" · {count:,} params" if count else "")
        summary = gene_summary(node.gene)
        head = [summary] if node.id == node.gene.TYPE else [node.id, summary]
        labels[node.id] = [_fit(t) for t in (*head, last)]
    return labels


def _fit(text: str) -> str:
    return text if len(text) <= _WIDTH else text[: _WIDTH - 1] + "…"


def to_dot(genome: Genome, name: str = "genome") -> str:
    """The genome as a Graphviz ``digraph`` (``dot -Tsvg``), top to bottom."""
    labels = node_labels(genome)

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"digraph {quote(name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        "  edge [arrowsize=0.7];",
    ]
    for node in genome.nodes:
        label = "\\n".join(t.replace("\\", "\\\\").replace('"', '\\"') for t in labels[node.id])
        colour = _COLOURS[gene_kind(node.gene)]
        lines.append(f'  {quote(node.id)} [label="{label}", fillcolor="{colour}"];')
    for node in genome.nodes:
        for position, source in enumerate(node.inputs):
            # A join's first input is primary: it fixes the result's size (docs/genome.md).
            primary = (
                ' [style=bold, tooltip="primary"]' if position == 0 and len(node.inputs) > 1 else ""
            )
            lines.append(f"  {quote(source)} -> {quote(node.id)}{primary};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def layers(genome: Genome) -> dict[int, list[str]]:
    """Rows of the drawing: networkx's topological generations of the data-flow graph, each
    row ordered by where its inputs are (fewer crossing arrows)."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(n.id for n in genome.nodes)
    graph.add_edges_from((src, n.id) for n in genome.nodes for src in n.inputs)
    order = {n.id: k for k, n in enumerate(genome.nodes)}
    rows: dict[int, list[str]] = {}
    place: dict[str, float] = {}
    for depth, row in enumerate(nx.topological_generations(graph)):

        def key(node: str) -> tuple[float, int]:
            above = [place[p] for p in graph.predecessors(node)]
            return (sum(above) / len(above) if above else 0.0, order[node])

        row = sorted(row, key=key)
        for k, node in enumerate(row):
            place[node] = k - (len(row) - 1) / 2
        rows[depth] = row
    return rows


def figure(genome: Genome, title: str | None = None) -> Any:
    """A matplotlib figure of ``genome`` (Agg backend; the caller saves and closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import networkx as nx
    from matplotlib import pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Patch

    labels = node_labels(genome)
    rows = layers(genome)
    kinds = {n.id: gene_kind(n.gene) for n in genome.nodes}
    graph = nx.DiGraph()
    graph.add_nodes_from(labels)
    graph.add_edges_from((src, n.id) for n in genome.nodes for src in n.inputs)
    raw = nx.multipartite_layout(graph, subset_key=rows, align="horizontal")
    # networkx spaces rows and columns one unit apart, then scales the whole layout; turn its
    # units into inches: columns wide enough for a box, rows tall enough for three lines.
    depth = {node: d for d, row in rows.items() for node in row}
    unit = _unit(raw)
    pos = {n: (float(x) / unit * _COLUMN, depth[n] * _ROW) for n, (x, _) in raw.items()}
    widest = max(len(row) for row in rows.values())
    # Room on both sides for arrows that go around rows (see _route).
    margin = (
        0.9 if any(depth[n.id] - depth[src] > 1 for n in genome.nodes for src in n.inputs) else 0.3
    )
    width = max(widest * _COLUMN + 2 * margin, 6.0)
    top = 1.0 if title else 0.6  # a band for the title and the legend
    height = len(rows) * _ROW + top
    fig = plt.figure(figsize=(width, height))
    # The axes are the figure less the band, 1 data unit to the inch both ways.
    ax = fig.add_axes((0, 0, 1, 1 - top / height))
    ax.set_xlim(-width / 2, width / 2)
    ax.set_ylim(len(rows) * _ROW - 0.5, -0.5)
    ax.axis("off")
    boxes = {}
    for node, (x, y) in pos.items():
        kind = kinds[node]
        boxes[node] = ax.text(
            x,
            y,
            "\n".join(labels[node]),
            ha="center",
            va="center",
            fontsize=8,
            linespacing=1.25,
            color="white" if kind == "binarized conv" else "black",
            bbox={
                "boxstyle": "round,pad=0.4",
                "facecolor": _COLOURS[kind],
                "edgecolor": "#555555",
                "linewidth": 0.8,
            },
            zorder=3,
        )
    # Arrows run from the bottom edge of a box to the top edge of the next: the boxes' sizes
    # are known once the text is laid out, in data units (inches), whatever the resolution.
    fig.canvas.draw()
    inverse = ax.transData.inverted()
    edges = {}
    for node, text in boxes.items():
        (x0, y0), (x1, y1) = inverse.transform(text.get_bbox_patch().get_window_extent())
        edges[node] = _Box(min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1))
    lanes: list[tuple[float, float, float]] = []
    for target in genome.nodes:
        for position, source in enumerate(target.inputs):
            path = _route(source, target, position, pos, edges, rows, depth, lanes, width)
            ax.add_patch(
                FancyArrowPatch(
                    path=path,
                    arrowstyle="-|>",
                    color="#333333",
                    linewidth=1.3 if position == 0 else 0.9,
                    mutation_scale=10,
                    shrinkA=0,
                    shrinkB=0,
                    zorder=2,
                )
            )
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
    handles = [
        Patch(facecolor=_COLOURS[k], edgecolor="#555555", label=k)
        for k in dict.fromkeys(kinds.values())
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - (top - 0.45) / height),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        handlelength=1.2,
        columnspacing=1.0,
    )
    return fig


_COLUMN, _ROW = 2.9, 1.0  # inches between neighbours in a row, and between rows
_GAP = 0.22  # inches between an arrow going around and the boxes it passes


@dataclass(frozen=True)
class _Box:
    left: float
    right: float
    top: float  # the smaller y: rows go down
    bottom: float


def _unit(raw: dict) -> float:
    """The length networkx's layout gives one step between rows (or neighbours in a row)."""
    ys = sorted({round(float(y), 9) for _, y in raw.values()})
    steps = [b - a for a, b in itertools.pairwise(ys)]
    if not steps:
        xs = sorted({round(float(x), 9) for x, _ in raw.values()})
        steps = [b - a for a, b in itertools.pairwise(xs)] or [1.0]
    return min(steps)


def _route(source, target, position, pos, edges, rows, depth, lanes, width) -> Any:
    """The arrow's path from ``source``'s bottom edge to ``target``'s top edge: straight when
    nothing is in between; past rows in between, around their boxes in a lane at the side
    (lanes: (x, from y, to y) taken so far, kept apart)."""
    from matplotlib.path import Path as MplPath

    box, into = edges[source], edges[target.id]
    count = len(target.inputs)
    # A join's inputs meet its top edge side by side, the first (primary) leftmost.
    spread = min((into.right - into.left) / (count + 1), 0.45)
    x1 = pos[target.id][0] + (position - (count - 1) / 2) * spread
    x0, y0, y1 = pos[source][0], box.bottom, into.top
    between = [edges[n] for d in range(depth[source] + 1, depth[target.id]) for n in rows[d]]
    low, high = min(x0, x1) - 0.05, max(x0, x1) + 0.05
    if not any(b.left < high and b.right > low for b in between):
        return MplPath([(x0, y0), (x1, y1)])
    # Go around on the nearer side, in the first lane free over these rows.
    left = min(b.left for b in between) - _GAP
    right = max(b.right for b in between) + _GAP
    middle = (x0 + x1) / 2
    side = -1 if middle - left <= right - middle else 1
    lane = left if side < 0 else right
    ya, yb = y0 + 0.12, y1 - 0.12
    while any(abs(x - lane) < 0.1 and a < yb and b > ya for x, a, b in lanes):
        lane += side * 0.12
    lane = max(min(lane, width / 2 - 0.05), -width / 2 + 0.05)
    lanes.append((lane, ya, yb))
    return MplPath([(x0, y0), (x0, ya), (lane, ya), (lane, yb), (x1, yb), (x1, y1)])


def draw(genome: Genome, path: str | os.PathLike, fmt: str | None = None, title: str = "") -> Path:
    """Write the drawing of ``genome`` to ``path`` as ``fmt`` (svg, png, pdf or dot; default:
    from the file's ending)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        from ..errors import RunError

        raise RunError(
            f"{path}: cannot tell the drawing's format from its ending; name one with --format"
            f" ({', '.join(FORMATS)})"
        )
    if fmt == "dot":
        path.write_text(to_dot(genome, title or path.stem))
        return path
    fig = figure(genome, title or None)
    try:
        save(fig, path, fmt)
    finally:
        from matplotlib import pyplot as plt

        plt.close(fig)
    return path


def save(fig: Any, path: Path, fmt: str) -> None:
    """Save a figure at a resolution that keeps very tall drawings within 16k pixels."""
    dpi = 100
    if fmt == "png":
        height = fig.get_figheight()
        dpi = min(100, int(16000 / max(height, 1)))
    fig.savefig(path, format=fmt, dpi=dpi)
