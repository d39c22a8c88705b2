"""`ecogen report` and the genome drawing: the page and its figures for finished, failing,
extinction, multi-objective, resumed and running runs, read without changing the run; the page
checked in a real browser (headless Chromium)."""

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import given, settings

import genomics as G
import operators as ops
import phenotypes as ph
import zoo
from genomics.testing import genomes
from runner.cli import main
from runner.report import FIGURES, genome_drawing, write_report
from runner.report import figures as fg
from runner.report.data import read_run
from runner.store import Store

ECOGEN = [sys.executable, "-m", "runner.cli"]
FIXTURES = Path(__file__).parent / "fixtures"
TINY = [
    "--dataset", "digits", "--population", "4", "--generations", "2", "--epochs", "1",
    "--final-epochs", "1", "--seed", "3", "--device", "cpu",
]  # fmt: skip
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _evolve(*args: str) -> None:
    result = CliRunner().invoke(main, ["evolve", *args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """A finished tournament run, its report refreshed by `evolve --report` as it went."""
    run = tmp_path_factory.mktemp("plain") / "run"
    _evolve(*TINY, "--report", "--run-dir", str(run))
    return run


@pytest.fixture(scope="module")
def troubled(tmp_path_factory) -> Path:
    """An EIGEN run (succession phases, extinction) with failing candidates: a training that
    raises, and a mutation that raises (a child never trained, of no known size)."""
    folder = tmp_path_factory.mktemp("troubled")
    run = folder / "run"

    @ops.mutation(changes="nothing: it always raises")
    def report_explode(genome, rng, config):
        raise ValueError("report_explode cannot mutate this genome")

    real_train, calls = ph.train, []

    def faulty_train(model, data, spec, on_epoch=None, teacher=None):
        calls.append(1)
        if len(calls) in (2, 7):
            raise RuntimeError("a bug in a layer")
        return real_train(model, data, spec, on_epoch=on_epoch, teacher=teacher)

    config = {
        "strategy": ["eigen"],
        "strategies": {
            "succession": {"primary_epochs": 2, "secondary_epochs": 2},
            "extinction": {"threshold": "kth", "k": 1},
            "duplication": {"candidates": 1},  # room for mutated children every generation
        },
        "weights": {"report_explode": 3.0},
    }
    (folder / "eigen.toml").write_text(tomli_w.dumps(config))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ph, "train", faulty_train)
            _evolve(
                "--config", str(folder / "eigen.toml"), *TINY, "--generations", "3",
                "--epochs", "2", "--run-dir", str(run),
            )  # fmt: skip
    finally:
        ops.OPERATORS.extra.pop("report_explode", None)
    return run


@pytest.fixture(scope="module")
def pareto(tmp_path_factory) -> Path:
    """An NSGA-II run minimising parameters and FLOPs against accuracy."""
    folder = tmp_path_factory.mktemp("pareto")
    config = {"strategy": ["nsga2"], "strategies": {"nsga2": {"objectives": [
        "val_accuracy", "params", "flops"]}}}  # fmt: skip
    (folder / "nsga2.toml").write_text(tomli_w.dumps(config))
    _evolve("--config", str(folder / "nsga2.toml"), *TINY, "--run-dir", str(folder / "run"))
    return folder / "run"


@pytest.fixture(scope="module")
def latency(tmp_path_factory) -> Path:
    """An NSGA-II run minimising latency against accuracy, under a latency limit."""
    folder = tmp_path_factory.mktemp("latency")
    config = {
        "strategy": ["nsga2"],
        "max_latency_ms": 1000.0,
        "crossover_rate": 0.5,
        "strategies": {"nsga2": {"objectives": ["val_accuracy", "latency_ms"]}},
    }
    (folder / "latency.toml").write_text(tomli_w.dumps(config))
    _evolve("--config", str(folder / "latency.toml"), *TINY, "--run-dir", str(folder / "run"))
    return folder / "run"


def _files(run: Path) -> dict[str, str]:
    """The bytes of every file of the run but its report (SQLite's shared-memory index and
    the empty log a read-only look may leave are not the store's content)."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
        and "report" not in p.parts
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and p.stat().st_size == 0)
    }


def _check_page(folder: Path, figures: tuple[str, ...] = FIGURES) -> str:
    page = (folder / "index.html").read_text()
    for name in figures:
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert b"<svg" in svg.read_bytes()[:2000], name
        assert f'src="{name}.png"' in page and f'href="{name}.svg"' in page
    for target in re.findall(r'(?:src|href)="([^"#:]+)"', page):
        assert (folder / target).is_file(), target
    assert not list(folder.glob(".*partial*"))
    return page


# --- the page and what is on it ------------------------------------------------------------


def test_evolve_report_leaves_a_whole_report_of_the_finished_run(plain):
    page = _check_page(plain / "report")
    summary = json.loads((plain / "summary.json").read_text())
    best = summary["best"]["id"]
    assert '<span class="badge complete">complete</span>' in page
    assert f"The genome of {best}" in page
    assert f"{summary['individuals']} individuals, {summary['evaluations']} evaluations" in page
    genome = G.loads((plain / "report" / "genome.json").read_text())
    assert G.canonical_hash(genome) == summary["best"]["genome_hash"]
    dot = (plain / "report" / "genome.dot").read_text()
    assert dot.startswith(f'digraph "{best}"') and dot.count("->") == sum(
        len(n.inputs) for n in genome.nodes
    )


def test_report_reads_the_run_without_changing_a_byte_of_it(plain, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(plain, run)
    shutil.rmtree(run / "report")
    before = _files(run)
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["report", str(run)])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {run / 'report' / 'index.html'}\n"
    assert _files(run) == before
    _check_page(run / "report")
    print(f"report of a tiny run: {seconds:.1f} s")


def test_the_data_behind_the_figures(plain):
    run = read_run(plain)
    summary = json.loads((plain / "summary.json").read_text())
    assert run.best_id() == summary["best"]["id"]
    chain = run.lineage(run.best_id())
    assert chain[0].generation == 0 and chain[-1].id == run.best_id()
    for parent, child in itertools.pairwise(chain):
        assert child.parents[0] == parent.id
    assert [g.generation for g in run.generations] == [0, 1, 2]
    progress = run.progress()
    assert all(r["best"] >= r["median"] for r in progress)
    assert [r["epochs"] for r in progress] == sorted(r["epochs"] for r in progress)
    stats = run.operator_statistics()
    made = [i for i in run.individuals.values() if i.operators]
    assert sum(s["applied"] for s in stats.values()) == sum(len(set(i.operators)) for i in made)
    assert all(0 <= s["improved"] <= s["applied"] for s in stats.values())
    front = run.pareto_front("params")
    assert [i.params for i in front] == sorted(i.params for i in front)
    assert [i.accuracy for i in front] == sorted(i.accuracy for i in front)
    assert front[-1].accuracy == max(i.accuracy for i in run.evaluated())


def test_failures_extinction_and_phases_are_shown(troubled, tmp_path):
    index = write_report(troubled, tmp_path / "report")
    page = _check_page(index.parent)
    run = read_run(troubled)
    statuses = {i.status for i in run.individuals.values()}
    assert {"ok", "failed", "extinct"} <= statuses
    assert any(i.mutation_failed and i.params is None for i in run.individuals.values())
    assert {r["phase"] for r in run.progress()} >= {"primary"}
    assert any(r["extinct"] for r in run.progress())
    for kind in ("extinction: extinct", "extinction: thresholds", "succession: phase"):
        assert kind in page, kind
    fig = fg.individuals(run)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(label.startswith("failed (") and "without a size" in label for label in labels)
    assert any(label.startswith("extinct at a landmark") for label in labels)
    fig = fg.progress(run)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "extinction stopped candidates" in labels and "primary phase" in labels
    fg.plt.close("all")


def test_a_multi_objective_run_has_a_front_per_cost(pareto, tmp_path):
    page = _check_page(write_report(pareto, tmp_path / "report").parent)
    run = read_run(pareto)
    assert run.objectives == ["val_accuracy", "params", "flops"]
    assert "engine: pareto" in page
    fig = fg.individuals(run)
    xlabels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert xlabels == ["parameters (log scale)", "FLOPs per image (log scale)"]
    fg.plt.close("all")


def test_a_latency_limited_run_has_its_front_drawn_against_latency(latency, tmp_path):
    page = _check_page(write_report(latency, tmp_path / "report").parent)
    run = read_run(latency)
    assert run.objectives == ["val_accuracy", "latency_ms"]
    front = run.pareto_front("latency_ms")
    assert front and all(0 < i.latency_ms <= 1000.0 for i in front)
    assert "latency (ms)" in page
    fig = fg.individuals(run)
    xlabels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert xlabels == ["parameters (log scale)", "latency, ms per image (log scale)"]
    fg.plt.close("all")


def test_a_run_killed_mid_generation(tmp_path):
    # A run directory of ecogen 0.1.0 killed mid-generation 1 (tests/fixtures/README.md).
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run-0.1.0", run)
    before = _files(run)
    page = _check_page(write_report(run).parent)
    killed = read_run(run)
    assert killed.status == "running" and killed.in_progress()
    assert "individuals of generation 1 so far" in page
    assert "No summary.json yet" in page
    assert _files(run) == before  # its write-ahead log too, unfolded


@pytest.mark.slow
def test_a_killed_run_resumed_with_report(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run-0.1.0", run)
    result = CliRunner().invoke(main, ["resume", str(run), "--report"])
    assert result.exit_code == 0, result.output
    page = _check_page(run / "report")
    assert '<span class="badge complete">complete</span>' in page
    assert "generation 3 of 3 finished" in page


def test_a_run_that_has_evaluated_nothing_yet(tmp_path):
    Store.create(tmp_path / "ecogen.sqlite", 'dataset = "digits"\n', {"status": "running"}).close()
    page = _check_page(write_report(tmp_path).parent, ("progress", "individuals", "operators"))
    assert "no generation finished yet" in page and "No genome to draw yet." in page
    assert not (tmp_path / "report" / "genome.png").exists()


@pytest.mark.slow
def test_a_report_of_a_running_search_never_disturbs_it(tmp_path):
    """A second process writes the run while reports are written from it, over and over; the
    writer finishes as it would alone, and each report holds what the store held when read."""
    run = tmp_path / "run"
    writer = subprocess.Popen(
        [*ECOGEN, "evolve", *TINY, "--population", "3", "--run-dir", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    store = run / "ecogen.sqlite"
    try:
        deadline = time.monotonic() + 60
        while not store.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        during = []
        while writer.poll() is None:
            before = _count(store)
            index = write_report(run, tmp_path / f"report-{len(during)}")
            after = _count(store)
            shown = int(re.search(r"(\d+) individuals, ", index.read_text()).group(1))
            assert before <= shown <= after
            if writer.poll() is None:
                during.append(index)
        _, errors = writer.communicate(timeout=120)
    finally:
        writer.kill()
    assert writer.returncode == 0, errors
    assert "locked" not in errors
    assert during, "no report was written while the search ran"
    for index in during:
        _check_page(index.parent, ("progress", "individuals", "family-tree", "operators"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["generations"] == 2 and summary["individuals"] == 9
    print(f"{len(during)} reports written while the search ran")


def _count(store: Path) -> int:
    with Store(store, readonly=True) as s:
        return len(list(s.individuals()))


def test_a_reader_in_its_snapshot_does_not_block_the_writer(plain, tmp_path):
    shutil.copytree(plain, tmp_path / "run")
    path = tmp_path / "run" / "ecogen.sqlite"
    with Store(path, readonly=True) as reader, reader.snapshot():
        seen = len(reader.events())
        with Store(path) as writer:
            writer.db.execute("PRAGMA busy_timeout = 0")  # a wait would be an error here
            with writer.transaction():
                writer.add_event(9, "test", "note", data={"x": 1})
        assert len(reader.events()) == seen  # still the snapshot it began with
    with Store(path, readonly=True) as reader:
        assert len(reader.events()) == seen + 1


def test_live_report_passes_everything_on_and_never_stops_the_search(tmp_path):
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from runner.report.live import LiveReport

    class Inner:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            return lambda *args: self.calls.append(name)

    inner, out = Inner(), io.StringIO()
    live = LiveReport(inner, Console(file=out, width=200))
    engine = SimpleNamespace(run_dir=tmp_path / "gone")
    live.started(engine)
    live.evaluating(engine, None)
    live.evaluated(engine, None, {})
    live.generation_done(engine, {"gen": 0})
    live.generation_done(engine, {"gen": 1})
    live.final_training(engine, None)
    assert inner.calls == ["started", "evaluating", "evaluated", "generation_done",
                           "generation_done", "final_training"]  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("report not written: StoreError: ")


def test_report_refuses_what_is_not_a_run_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / 'ecogen.sqlite'}: no run store here (is this a run directory?)"
    ]


def test_without_the_report_extra_the_commands_say_what_to_install(plain):
    code = (
        "import sys\nsys.modules['matplotlib'] = None\n"
        "from runner.cli import main\nmain(sys.argv[1:])"
    )
    for args in (["report", str(plain)], ["show", "lenet5", "--draw", "x.svg"]):
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 1
        command = "ecogen report" if args[0] == "report" else "ecogen show --draw"
        assert done.stderr.splitlines() == [
            f"error: {command} needs matplotlib, networkx (matplotlib not installed):"
            " pip install 'ecogen[report]'"
        ]


def _drawn_texts(fig) -> list:
    """Every piece of text the figure shows, with its extent (tick labels outside the axes'
    limits exist but are not drawn)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * (high - low)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - slack <= tick.get_loc() <= high + slack:
                    hidden.update((id(tick.label1), id(tick.label2)))
    return [
        (t.get_text(), t.get_window_extent(renderer))
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden
    ]


def test_no_figure_has_overlapping_text(plain, troubled, pareto):
    for folder in (plain, troubled, pareto):
        run = read_run(folder)
        best = run.best_id()
        with fg.style():
            for fig in (
                fg.progress(run),
                fg.individuals(run),
                fg.lineage(run, best),
                fg.family_tree(run),
                fg.operators(run),
                fg.best_genome(run, best),
            ):
                texts = _drawn_texts(fig)
                title = fig.get_suptitle()
                fg.plt.close(fig)
                assert len(texts) > 5
                for k, (a, box) in enumerate(texts):
                    for b, other in texts[k + 1 :]:
                        assert not box.overlaps(other), (folder.parent.name, title, a, b)


# --- in a browser ---------------------------------------------------------------------------


def _chromium() -> str:
    for name in (os.environ.get("ECOGEN_CHROMIUM", ""), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    pytest.skip(
        "no Chromium to check the report page in (Debian: apt-get install chromium;"
        " or set ECOGEN_CHROMIUM to its path)"
    )


def test_the_page_loads_in_headless_chromium_with_every_image_and_no_error(plain):
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install 'ecogen[dev]')"
    )
    chromium = _chromium()
    folder = plain / "report"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = []
            page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto((folder / "index.html").as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images, i => [i.getAttribute('src'), i.naturalWidth])"
            )
            # The SVG versions the figures link to load as images too.
            svgs = page.evaluate(
                """() => Promise.all(Array.from(document.images, i => new Promise(done => {
                    const svg = new Image();
                    svg.onload = () => done([svg.src, svg.naturalWidth]);
                    svg.onerror = () => done([svg.src, 0]);
                    svg.src = i.getAttribute('src').replace(/png$/, 'svg');
                })))"""
            )
            title = page.title()
        finally:
            browser.close()
    assert sorted(src for src, _ in images) == sorted(f"{name}.png" for name in FIGURES)
    assert all(width > 0 for _, width in images), images
    assert all(width > 0 for _, width in svgs), svgs
    assert problems == []
    assert title == f"ecogen report: {plain.name}"


# --- the genome drawing ------------------------------------------------------------------------


def _boxes_apart(genome: G.Genome) -> None:
    """One box per node, none overlapping another, and one arrow per input."""
    fig = genome_drawing.figure(genome, "title")
    try:
        fig.canvas.draw()
        ax = fig.axes[0]
        boxes = [t.get_bbox_patch().get_window_extent() for t in ax.texts]
        assert len(boxes) == len(genome.nodes)
        for k, a in enumerate(boxes):
            for b in boxes[k + 1 :]:
                assert not a.overlaps(b), (a, b)
        assert len(ax.patches) == sum(len(n.inputs) for n in genome.nodes)
    finally:
        fg.plt.close(fig)


@pytest.mark.parametrize("name", ["lenet5", "sepnet-r-cifar", "squeezenet1_1"])
def test_zoo_genomes_are_drawn_with_boxes_apart(name):
    _boxes_apart(zoo.load(name))


@settings(max_examples=8)
@given(genomes(max_convs=5))
def test_generated_genomes_are_drawn_with_boxes_apart(genome):
    _boxes_apart(genome)


def test_show_draws_svg_png_pdf_and_dot(tmp_path):
    runner = CliRunner()
    for ending in ("svg", "png", "pdf", "gv"):
        path = tmp_path / f"lenet5.{ending}"
        result = runner.invoke(main, ["show", "lenet5", "--draw", str(path)])
        assert result.exit_code == 0, result.output
        assert result.output == f"wrote {path}\n"
        assert path.stat().st_size > 0
    assert (tmp_path / "lenet5.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "lenet5.pdf").read_bytes()[:4] == b"%PDF"
    result = runner.invoke(main, ["show", "lenet5", "--format", "dot"])
    assert result.exit_code == 0
    assert result.output == (tmp_path / "lenet5.gv").read_text()
    genome = zoo.load("lenet5")
    assert result.output.startswith('digraph "lenet5" {')
    for node in genome.nodes:
        assert f'"{node.id}" [label=' in result.output
    named = tmp_path / "drawing"
    result = runner.invoke(main, ["show", "lenet5", "--draw", str(named), "--format", "svg"])
    assert result.exit_code == 0 and b"<svg" in named.read_bytes()[:2000]
    result = runner.invoke(main, ["show", "lenet5", "--draw", str(named)])
    assert result.exit_code == 1
    assert "cannot tell the drawing's format from its ending" in result.output
    result = runner.invoke(main, ["show", "lenet5", "--format", "svg"])
    assert result.exit_code == 2 and "--format svg: needs --draw FILE" in result.output


def test_the_dot_text_escapes_what_it_quotes():
    genome = zoo.load("lenet5")
    dot = genome_drawing.to_dot(genome, 'a "quoted" name')
    assert dot.startswith('digraph "a \\"quoted\\" name" {')
    assert dot.count("{") == dot.count("}") == 1
