"""A tiny competitive run of convolutional VAEs on the offline MNIST digits."""

import json
import os

import numpy as np

from competitive_mixtures import train
from conftest import load_config


def test_offline_digits_end_to_end(tmp_path):
    config = load_config("mnist", "offline,small")
    workdir = str(tmp_path)
    summary = train.train_and_evaluate(config, workdir)
    for name in ("components.png", "classes.png", "counts.png"):
        assert os.path.getsize(os.path.join(workdir, "figures", name)) > 1000, name
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["round"] for r in records] == list(range(config.num_rounds + 1))
    assert all("nmi" in r["clustering"] for r in records)
    assert sum(records[-1]["counts"]) == config.data.num_points
    with np.load(os.path.join(workdir, "heldout.npz")) as f:
        assert f["x"].dtype == np.uint8 and f["x"].shape[1:] == (28, 28, 1)
    assert np.isfinite(summary["kde"]["log_likelihood"])
    _, programs, state = train.restore_run(workdir)
    samples, _ = train.draw_samples(programs.gen_model, state.gen, state.alpha,
                                    state.rng, 16)
    assert samples.shape == (16, 28, 28, 1)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
