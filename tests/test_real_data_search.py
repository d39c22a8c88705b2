"""bench/real_data_search.py's contestants: the hand CNN and Optuna's trials train with the
recipe ecogen's candidates train with, and none of them is reported over ``--max-params``."""

import argparse
import sys
from pathlib import Path

import attrs
import pytest

import phenotypes as ph
from runner import config as cfg

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
import real_data_search as bench


def _args(**values) -> argparse.Namespace:
    defaults = {"budget": 1.0, "max_params": 100_000, "search_epochs": 1, "epochs": 1}
    return argparse.Namespace(device="cpu", **{**defaults, **values})


def test_the_hand_cnn_and_optunas_trials_train_with_ecogens_recipe():
    """Before, they took TrainSpec's own defaults (batch 128) and ecogen's candidates batch 64:
    the hand CNN took half the steps of a candidate for the same epochs."""
    engine = attrs.asdict(cfg.Experiment(epochs=15, seed=3).train_spec("cpu", seed=3))
    assert attrs.asdict(bench.recipe(_args(), 3, 15)) == engine
    assert bench.recipe(_args(), 3, 15).batch_size == cfg.Experiment().batch_size
    tuned = bench.recipe(_args(), 3, 8, lr=0.2)
    assert (tuned.lr, tuned.epochs, tuned.batch_size) == (0.2, 8, cfg.Experiment().batch_size)


def test_optuna_never_reports_a_network_over_max_params():
    """With no trial completed, Optuna's row was trial 0's network, which a limit of 100
    parameters had pruned: it reported a network of over 100,000 parameters."""
    pytest.importorskip("optuna")
    data = ph.load_dataset("digits", seed=0)
    # The smallest network of the space (one block of 8 channels) has 178 parameters.
    with pytest.raises(SystemExit) as raised:
        bench.optuna_search(data, _args(max_params=100), 0)
    message = str(raised.value)
    assert message.startswith("error: optuna: no trial within --max-params 100 trained")
    assert "\n" not in message
