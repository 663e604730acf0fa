"""The k-curve driver: a preset swept over K, scored by auto_k's held-out criterion."""

import json
import os

import numpy as np
import pytest

from competitive_mixtures import auto_k
from competitive_mixtures import data as data_lib
from competitive_mixtures.experiments import k_curve
from competitive_mixtures.mixture import Mixture
from conftest import REPO, tree_hashes


def test_within_price_reads_the_curve():
    curve = {1: -5.0, 2: -4.2, 3: -4.0, 4: -4.03}
    assert [k for k in curve if k_curve.within_price(curve, k, 0.05)] == [3, 4]
    assert not k_curve.within_price(curve, 7, 0.05)


@pytest.mark.slow
def test_sweep_scores_runs_by_the_criterion_and_resumes(tmp_path):
    workdir = str(tmp_path / "curve")
    args = ("configs/synthetic.py:tiny", [1, 2], 1, [], workdir, str(REPO / "configs"))
    result = k_curve.run(*args)
    assert os.path.getsize(os.path.join(workdir, "k_curve.png")) > 1000
    # Every markdown table has as many cells in its header, rule and rows.
    with open(os.path.join(workdir, "k_curve.md")) as f:
        tables = [block.splitlines() for block in f.read().split("\n\n")
                  if block.startswith("|")]
    assert len(tables) == 2
    for table in tables:
        assert len({line.count("|") for line in table}) == 1, table
    with open(os.path.join(workdir, "k_curve.json")) as f:
        assert json.load(f)["curves"] == {"0": {"1": result["curves"]["0"]["1"],
                                                "2": result["curves"]["0"]["2"]}}
    # K = 1: C is the mean over the validation points of the one component's ELBO,
    # averaged over auto_k's draws.
    run = os.path.join(workdir, "k1", "seed0")
    m = Mixture.load(run)
    heldout = data_lib.load(m.config).heldout_x
    validation, _, _ = auto_k.split_heldout(m.config, heldout, np.zeros(len(heldout), int))
    elbo = np.mean([m.elbo(validation, seed=d, space="model")[:, 0]
                    for d in range(m.config.auto_k.elbo_samples)], axis=0)
    assert result["curves"]["0"]["1"] == pytest.approx(float(np.mean(elbo)), abs=1e-4)
    # A second call reuses the finished runs: nothing in them changes.
    before = tree_hashes(workdir, exclude=("k_curve",))
    again = k_curve.run(*args)
    assert again["curves"] == result["curves"]
    assert tree_hashes(workdir, exclude=("k_curve",)) == before
