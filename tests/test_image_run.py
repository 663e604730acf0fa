"""A tiny competitive run of convolutional VAEs on the offline MNIST digits."""

import glob
import json
import logging
import os

import numpy as np
import pytest

from competitive_mixtures import sampling, train
from competitive_mixtures import restore
from competitive_mixtures.experiments import latent_fit
from competitive_mixtures.metrics import digit_classifier
from competitive_mixtures.metrics import report
from conftest import load_config

pytestmark = pytest.mark.slow


def test_offline_digits_end_to_end(tmp_path, caplog):
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
    _, programs, state = restore.restore_run(workdir)
    samples, _ = sampling.draw_samples(programs.gen_model, state.gen, state.alpha,
                                    state.rng, 16)
    assert samples.shape == (16, 28, 28, 1)
    assert samples.min() >= 0.0 and samples.max() <= 1.0

    # evaluate on this run: domain FID and precision / recall with their
    # sample counts; Inception FID skipped (no weights file) with a message.
    classifier = str(tmp_path / "digit_classifier.npz")
    digit_classifier.train_and_save(classifier, epochs=1)
    with caplog.at_level(logging.INFO):
        result = report.evaluate_run(workdir, num_samples=300, digit_classifier=classifier)
    assert "Inception features skipped" in caplog.text and "convert_inception" in caplog.text
    with open(os.path.join(workdir, "eval.json")) as f:
        quality = json.load(f)["image_quality"]
    digits = quality["digits"]
    assert digits["num_samples"] == 300 and digits["num_reference"] == 200
    assert np.isfinite(digits["fid"]) and digits["fid"] > 0
    assert 0 <= digits["precision"] <= 1 and 0 <= digits["recall"] <= 1
    assert digits["pr_num_points"] == 200 and digits["k"] == 3
    assert "skipped" in quality["inception"]
    assert os.path.exists(os.path.join(workdir, "fid_reference_digits.npz"))
    assert "300 samples vs 200 held-out" in report.table(result)

    # latent_fit on this run: every row scored with the same features, and
    # nothing in the workdir written.
    files = {path: os.path.getmtime(path) for path in glob.glob(f"{workdir}/**", recursive=True)}
    fit = latent_fit.evaluate(workdir, [1, 2], num_samples=60,
                              digit_classifier=classifier)["digits"]
    assert list(fit) == ["reconstructions", "prior", "fitted 1", "fitted 2"]
    assert fit["reconstructions"]["num_samples"] == 200
    assert all(fit[name]["num_samples"] == 60 for name in ("prior", "fitted 1", "fitted 2"))
    assert all(np.isfinite(m["fid"]) and m["num_reference"] == 200 for m in fit.values())
    assert {path: os.path.getmtime(path)
            for path in glob.glob(f"{workdir}/**", recursive=True)} == files
