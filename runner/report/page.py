"""The report's ``index.html``: one self-contained page (no server, no script, no network)
around the figures, which lie beside it as PNG (shown) and SVG (linked)."""

from __future__ import annotations

import html
import json
import time
from typing import Any

from .data import Individual, Run

CSS = """
body { font-family: system-ui, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1180px; padding: 0 1.5rem 3rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 1.4rem 0 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.4rem; border-bottom: 1px solid #ddd;
     padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
.status { color: #555; margin: 0 0 1rem; }
.badge { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 0.6rem; font-size: 0.85rem;
         background: #e8e8e8; }
.badge.running { background: #fff3bf; } .badge.complete { background: #d3f9d8; }
.badge.interrupted, .badge.stopped { background: #ffe3e3; }
nav a { margin-right: 0.9rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.25rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.note { color: #666; font-size: 0.9rem; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _int(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if k in numeric else f"<td>{_e(c)}</td>"
            for k, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(name: str, alt: str, caption: str) -> str:
    return (
        f'<figure><a href="{name}.svg"><img src="{name}.png" alt="{_e(alt)}"></a>'
        f'<figcaption>{caption} (<a href="{name}.svg">SVG</a>)</figcaption></figure>'
    )


def render(run: Run, figures: list[str], seconds: float) -> str:
    best = run.best_id()
    experiment = run.experiment
    name = run.run_dir.resolve().name
    generations = run.generations[-1].generation if run.generations else None
    planned = experiment.get("generations")
    status = run.status
    done = (
        f"generation {generations} of {planned} finished"
        if generations is not None
        else "no generation finished yet"
    )
    in_progress = run.in_progress()
    if in_progress:
        done += f"; {len(in_progress)} individuals of generation {in_progress[0].generation} so far"
    strategy = "+".join(experiment.get("strategy", [])) or "tournament"
    parts = [
        f'<span class="badge {_e(status)}">{_e(status)}</span>',
        _e(done),
        f"dataset {_e(experiment.get('dataset', '?'))}",
        f"strategy {_e(strategy)}",
        f"population {_e(experiment.get('population', '?'))}",
        f"{len(run.individuals)} individuals, {len(run.evaluated())} evaluations",
    ]
    sections = [
        f"<h1>ecogen report: {_e(name)}</h1>",
        f'<p class="status">{" · ".join(parts)}</p>',
        '<nav><a href="#progress">Progress</a><a href="#individuals">Individuals</a>'
        '<a href="#lineage">Lineage</a><a href="#genome">Best genome</a>'
        '<a href="#operators">Mutations and strategies</a><a href="#tables">Tables</a></nav>',
    ]
    sections.append('<h2 id="progress">1. Progress</h2>')
    sections.append(
        _figure(
            "progress",
            "best and median validation accuracy per generation",
            "Best and median validation accuracy of the population after each finished"
            " generation, against the training epochs spent so far and the search time; grey"
            " points are the candidates each generation trained (failures left out).",
        )
    )
    sections.append(_generations_table(run))
    sections.append('<h2 id="individuals">2. Every individual</h2>')
    sections.append(
        _figure(
            "individuals",
            "validation accuracy against parameters for every individual",
            "Validation accuracy against size for every individual, coloured by generation;"
            " the black steps are the Pareto front (no other individual is both more accurate"
            " and smaller). A failed candidate counts as 0%.",
        )
    )
    sections.append('<h2 id="lineage">3. Lineage</h2>')
    if best is not None and "lineage" in figures:
        sections.append(
            _figure(
                "lineage",
                f"lineage of {best}",
                f"The ancestors of the best, {_e(best)}, from generation 0 (first parents),"
                " with the mutations that made each from the one before.",
            )
        )
        sections.append(_lineage_table(run, best))
    else:
        sections.append('<p class="note">No individual has been evaluated yet.</p>')
    sections.append(
        _figure(
            "family-tree",
            "family tree of the final population",
            "Every ancestor of the last finished generation's population, one row per"
            " generation; arrows go from parent to child.",
        )
    )
    sections.append('<h2 id="genome">4. The best genome</h2>')
    if best is not None and "genome" in figures:
        sections.append(
            _figure(
                "genome",
                f"the genome of {best}",
                f"The genome of {_e(best)}: one box per node (gene, output shape C x H x W,"
                " parameters), arrows for the data flow; a join's first input (left, bold) is"
                ' primary. Also as <a href="genome.dot">Graphviz DOT</a> and'
                ' <a href="genome.json">genome JSON</a>.',
            )
        )
    else:
        sections.append('<p class="note">No genome to draw yet.</p>')
    sections.append('<h2 id="operators">5. Mutations and strategies</h2>')
    sections.append(
        _figure(
            "operators",
            "mutation statistics",
            "How often each mutation made a child, and how often that child's validation"
            " accuracy beat its parent's.",
        )
    )
    sections.append(_operators_table(run))
    sections.append("<h3>Strategy events</h3>")
    sections.append(_events(run))
    sections.append('<h2 id="tables">6. Tables</h2>')
    sections.append("<h3>The 10 best individuals</h3>")
    sections.append(_top_table(run))
    sections.append("<h3>Summary</h3>")
    sections.append(_summary(run))
    sections.append("<h3>The experiment, resolved</h3>")
    sections.append(f"<pre>{_e(run.config.strip())}</pre>")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sections.append(
        f'<p class="note">Written by <code>ecogen report</code> at {stamp} in {seconds:.1f} s'
        f" from {_e(run.run_dir)} (read-only).</p>"
    )
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>ecogen report: {_e(name)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _generations_table(run: Run) -> str:
    rows = []
    for r in run.progress():
        rows.append(
            [
                r["generation"],
                _pct(r["best"]),
                _pct(r["median"]),
                len(r["candidates"]),
                r["failed"],
                r["extinct"],
                _int(r["epochs"]),
                f"{r['seconds']:.1f}",
                r["phase"] or "",
            ]
        )
    if not rows:
        return ""
    header = ["generation", "best", "median", "trained", "failed", "extinct"]
    header += ["epochs so far", "seconds so far", "phase"]
    if not any(row[-1] for row in rows):  # no phases (no succession): no column
        header, rows = header[:-1], [row[:-1] for row in rows]
    return (
        "<details><summary>Per generation</summary>"
        + _table(header, rows, numeric=set(range(8)))
        + "</details>"
    )


def _lineage_table(run: Run, best: str) -> str:
    rows = []
    for ind in run.lineage(best):
        rows.append(
            [
                ind.id,
                ind.generation,
                ", ".join(ind.operators) or "",
                _pct(ind.accuracy),
                _int(ind.params),
                ind.status,
            ]
        )
    return _table(
        ["individual", "generation", "mutations", "val accuracy", "parameters", "status"],
        rows,
        numeric={1, 3, 4},
    )


def _operators_table(run: Run) -> str:
    table = run.operator_statistics()
    if not table:
        return ""
    rows = [
        [
            name,
            row["applied"],
            row["improved"],
            f"{row['improved'] / row['applied']:.0%}" if row["applied"] else "",
            row["failed"],
        ]
        for name, row in table.items()
    ]
    return _table(
        ["mutation", "children", "beat their parent", "share", "failed"], rows, numeric={1, 2, 3, 4}
    )


def _event_text(event: dict[str, Any]) -> str:
    data, kind = event["data"], event["kind"]
    if kind == "phase":
        return f"{data.get('before', '?')} → {data.get('after', '?')} ({data.get('reason', '')})"
    if kind == "thresholds":
        return "; ".join(
            f"trainings of {p} epochs: epoch {e} needs {s:.2%}"
            for p, e, s in data.get("thresholds", [])
        )
    if kind == "extinct":
        return (
            f"stopped at epoch {data.get('landmark_epoch')} (T{data.get('landmark')}):"
            f" {data.get('val_accuracy', 0):.2%} < threshold {data.get('threshold', 0):.2%}"
        )
    if kind == "pareto":
        front = data.get("front", [])
        return (
            f"front of {len(front)}: "
            + ", ".join(m.get("id", "?") for m in front[:12])
            + (" …" if len(front) > 12 else "")
        )
    text = json.dumps(data, sort_keys=True)
    return text if len(text) <= 160 else text[:159] + "…"


def _events(run: Run, limit: int = 40) -> str:
    if not run.events:
        return '<p class="note">No strategy recorded an event.</p>'
    counts: dict[tuple[str, str], int] = {}
    for event in run.events:
        key = (event["source"], event["kind"])
        counts[key] = counts.get(key, 0) + 1
    parts = [
        _table(
            ["strategy", "event", "count"],
            [[s, k, n] for (s, k), n in sorted(counts.items())],
            numeric={2},
        )
    ]
    for source, kind in sorted(counts):
        events = [e for e in run.events if (e["source"], e["kind"]) == (source, kind)]
        shown = events[-limit:]
        more = (
            f'<p class="note">The last {limit} of {len(events)}.</p>' if len(events) > limit else ""
        )
        rows = [[e["generation"], e.get("individual") or "", _event_text(e)] for e in shown]
        parts.append(
            f"<details><summary>{_e(source)}: {_e(kind)} ({len(events)})</summary>{more}"
            + _table(["generation", "individual", "what"], rows, numeric={0})
            + "</details>"
        )
    return "\n".join(parts)


def _top_table(run: Run, count: int = 10) -> str:
    ranked: list[Individual] = sorted(
        (i for i in run.evaluated() if i.status == "ok"),
        key=lambda i: (-i.accuracy, i.params or 0, i.id),
    )[:count]
    if not ranked:
        return '<p class="note">No individual has been trained yet.</p>'
    latency = any(i.latency_ms is not None for i in ranked)  # measured only when asked for
    rows = [
        [
            k,
            i.id,
            i.generation,
            _pct(i.accuracy),
            _int(i.params),
            _int(i.size_bytes),
            _int(i.flops),
            *([_ms(i.latency_ms)] if latency else []),
            i.epochs,
            f"{i.seconds:.1f}",
            ", ".join(i.operators),
        ]
        for k, i in enumerate(ranked, 1)
    ]
    header = ["rank", "individual", "generation", "val accuracy", "parameters", "bytes", "FLOPs"]
    header += ["latency (ms)"] * latency + ["epochs", "seconds", "mutations"]
    return _table(header, rows, numeric=set(range(len(header) - 1)) - {1})


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out = []
        for key, inner in value.items():
            out.extend(_flatten(inner, f"{prefix}{key}."))
        return out
    key = prefix.rstrip(".")
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return [(key, f"{len(value)} entries")]
        return [(key, ", ".join(map(str, value)))]
    return [(key, _value(key, value))]


def _number(key: str, value: str) -> Any:
    """A meta value (all text in the store) that is a number, as one."""
    kind = {"created": float, "seconds": float, "generation": int}.get(key)
    try:
        return kind(value) if kind else value
    except ValueError:
        return value


def _value(key: str, value: Any) -> str:
    """A summary or meta value as a person reads it: accuracies in percent, counts with
    thousands separators, Unix times as dates."""
    if isinstance(value, bool):
        return str(value).lower()
    if key.endswith("accuracy") and isinstance(value, float):
        return f"{value:.2%}"
    if key.endswith("created") and isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if key.endswith("seconds") else f"{value:.6g}"
    return str(value)


def _summary(run: Run) -> str:
    meta = [(f"store: {k}", _value(k, _number(k, v))) for k, v in sorted(run.meta.items())]
    if run.summary is None:
        note = '<p class="note">No summary.json yet: the run has not finished.</p>'
        return note + _table(["field", "value"], [list(r) for r in meta])
    note = ""
    if not run.summary_is_current:
        note = (
            '<p class="note">summary.json is from an earlier finish of this run, which has'
            " gone on since.</p>"
        )
    rows = [list(r) for r in _flatten(run.summary)] + [list(r) for r in meta]
    return note + _table(["field", "value"], rows)
