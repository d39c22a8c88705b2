"""What every figure of the report shares: the style, placeholders, percent axes and the axis
floor that keeps outliers from squashing the rest."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.ticker import PercentFormatter

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

PHASE_COLOURS = ("#deebf7", "#fee6ce", "#e5f5e0", "#efedf5")
STATUS_MARKERS = {"ok": "o", "extinct": "v", "stopped": "s"}
COST_LABELS = {
    "params": "parameters (log scale)",
    "size_bytes": "size in bytes (log scale)",
    "flops": "FLOPs per image (log scale)",
    "latency_ms": "latency, ms per image (log scale)",
}


def placeholder(title: str, text: str) -> Any:
    """A small figure that says there is nothing to draw yet."""
    fig, ax = plt.subplots(figsize=(8, 1.6), layout="constrained")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.axis("off")
    fig.suptitle(title)
    return fig


def floor(focus: list[float], others: list[float]) -> float:
    """The lower end of an accuracy axis: below what matters (``focus``: the best, medians,
    the front) and most of ``others``, but not down to every outlier; those are drawn on the
    axis' edge (:func:`clip_below`)."""
    ranked = sorted(a for a in others if a > 0)
    typical = ranked[len(ranked) // 10] if ranked else 1.0
    low = min([*focus, typical], default=0.0)
    return max(0.0, low - max(0.03, (1.0 - low) * 0.15))


def clip_below(values: list[float], low: float) -> tuple[list[float], list[bool]]:
    """Values below ``low`` moved onto it, and which were."""
    return [max(v, low) for v in values], [v < low for v in values]


def percent(ax: Any, axis: str = "y") -> None:
    formatter = PercentFormatter(1.0, decimals=0)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


# --- 1. progress ---------------------------------------------------------------------------


def style() -> Any:
    return matplotlib.rc_context(STYLE)
