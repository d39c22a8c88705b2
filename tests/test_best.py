"""The best a run reports, trains again, writes to ``best/`` and exports: one individual, the
best by the run's own ranking, ties broken in candidate order whatever order the workers finish
in. Each test began as a failing reproduction of a defect."""

import sqlite3
from pathlib import Path

import pytest
from reordering import NewestFirst

import genomics as G
import phenotypes as ph
from runner import config as cfg
from runner.session import prepare_resume, start

TINY = {
    "dataset": "digits",
    "population": 3,
    "generations": 1,
    "epochs": 1,
    "final_epochs": 1,
    "seed": 2,
    "device": "cpu",
    "init": "random",
}


def _run(
    tmp_path: Path, rewrite: dict[str, dict], capacity: int = 2, **values
) -> tuple[dict, Path, list[str]]:
    run_dir = tmp_path / "run"
    experiment = cfg.from_dict({**TINY, **values, "run_dir": str(run_dir)})
    engine = start(experiment, ph.load_dataset(experiment.dataset, seed=experiment.seed))
    executor = engine.executor = NewestFirst(
        engine.executor, rewrite, capacity, default={"val_accuracy": 0.1}
    )
    try:
        summary = engine.run()
    finally:
        engine.store.close()
    return summary, run_dir, [individual for individual, _ in executor.order]


def test_the_best_of_tied_candidates_is_the_first_in_candidate_order(tmp_path):
    """Two candidates tied on accuracy and parameters: one worker reports the earlier, so two
    workers, the later arriving first, must report it too."""
    tied = {"val_accuracy": 0.9, "params": 1000}
    summary, _, order = _run(tmp_path, {"g0_0": tied, "g0_1": tied}, generations=0)
    assert order.index("g0_1") < order.index("g0_0")  # the later did arrive first
    assert summary["best"]["id"] == "g0_0"


def test_final_epochs_0_keeps_the_search_weights_of_the_best_it_reports(tmp_path):
    """The most accurate is also the first at the top accuracy only when it is the smaller: here
    the smaller comes later, and its weights must be the ones kept and reported, with no
    training from scratch behind ``final_epochs = 0``."""
    rewrite = {
        "g0_0": {"val_accuracy": 0.9, "params": 2000},
        "g0_1": {"val_accuracy": 0.9, "params": 1000},
    }
    summary, run_dir, _ = _run(
        tmp_path, rewrite, capacity=1, generations=0, final_epochs=0, keep_weights=0
    )
    assert summary["best"]["id"] == "g0_1"
    assert summary["best"]["final_from"] == "weights"
    assert _best_hash(run_dir) == summary["best"]["genome_hash"]


def _best_hash(run_dir: Path) -> str:
    """The genome hash of the network in ``best/model.pt``."""
    genome, _ = ph.load_model(run_dir / "best" / "model.pt")
    return G.canonical_hash(genome)


def test_cost_aware_reports_trains_and_exports_the_best_by_its_reward(tmp_path):
    """cost-aware selects by MnasNet's reward: the network it delivers must be the best by that
    reward, not the most accurate at any cost, and the summary says what ranked it."""
    rewrite = {
        "g0_0": {"val_accuracy": 0.6, "params": 1000, "flops": 100_000_000},
        "g0_1": {"val_accuracy": 0.55, "params": 1000, "flops": 10_000},
    }
    summary, run_dir, _ = _run(
        tmp_path, rewrite, generations=0, strategy=["cost-aware"], final_epochs=0, keep_weights=0
    )
    assert summary["best"]["id"] == "g0_1"
    assert "reward" in summary["best"]["ranked_by"]
    assert _best_hash(run_dir) == summary["best"]["genome_hash"]


@pytest.mark.parametrize("strategy", ["tournament", "nsga2"])
def test_the_summary_says_what_ranked_the_best(tmp_path, strategy):
    tied = {"val_accuracy": 0.9, "params": 1000}
    summary, _, _ = _run(tmp_path, {"g0_0": tied}, generations=0, strategy=[strategy])
    assert summary["best"]["ranked_by"].startswith("val_accuracy")


def test_a_stopped_run_resumed_unchanged_finishes_with_the_best_it_stopped_with(tmp_path):
    """A limit reached within a generation, then the run killed in its final training: the
    best found in that generation is still the best when it is resumed (the budget is spent:
    nothing is searched further)."""
    best = {"val_accuracy": 0.99, "params": 1000}
    first, run_dir, _ = _run(
        tmp_path, {"g1_0": best}, generations=2, max_evaluations=5, time_budget=1000
    )
    assert first["best"]["id"] == "g1_0"
    with sqlite3.connect(run_dir / "ecogen.sqlite") as db:  # the budget spent after g1_0
        db.execute("UPDATE meta SET value = '5000' WHERE key = 'seconds'")
        db.execute("UPDATE meta SET value = 'searched' WHERE key = 'status'")
    resumption = prepare_resume(run_dir)
    engine = resumption.engine(ph.load_dataset("digits", seed=TINY["seed"]))
    try:
        again = engine.run()
    finally:
        engine.store.close()
    assert again["best"]["id"] == "g1_0"


def test_a_strategy_s_ranking_must_be_a_ranking():
    import strategies as st

    class Bad(st.Strategy):
        name = "bad-ranking"

        @st.hookimpl
        def ecogen_ranking(self):
            return lambda individual: individual.fitness.values

    with pytest.raises(st.StrategyError, match="ecogen_ranking must return a Ranking"):
        st.Search([Bad()]).ranking()
    assert st.Search(st.create(["cost-aware"])).ranking().objective.startswith("cost-aware")
    assert st.Search(st.create(["tournament"])).ranking() is st.DEFAULT_RANKING
