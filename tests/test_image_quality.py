"""Digit-classifier features (domain FID) and the evaluate tool's checks.

`evaluate` on a tiny image run is checked in test_image_run.py, on that run.
"""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from competitive_mixtures.metrics import digit_classifier
from competitive_mixtures.metrics import features
from conftest import REPO


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """The classifier as `evaluate` trains it: offline digits, the runs' held-out split excluded."""
    path = str(tmp_path_factory.mktemp("classifier") / "digits.npz")
    params, info = digit_classifier.train_and_save(path)
    return path, params, info


def test_classifier_accuracy_on_heldout_offline_digits(classifier):
    path, params, info = classifier
    _, _, heldout_x, heldout_label = digit_classifier.training_data("mnist_offline")
    assert info["num_train"] == 4500 and info["num_heldout"] == 500
    accuracy = digit_classifier.accuracy(params, heldout_x, heldout_label)
    assert accuracy > 0.95
    assert info["heldout_accuracy"] == pytest.approx(accuracy)
    # Saved and reused: loading gives the same network.
    loaded, loaded_info = digit_classifier.load(path)
    assert loaded_info == info
    np.testing.assert_array_equal(digit_classifier.features(loaded, heldout_x[:8]),
                                  digit_classifier.features(params, heldout_x[:8]))


def test_domain_fid_separates_real_from_distorted_digits(classifier, tmp_path):
    path, _, _ = classifier
    extractor = features.digit_extractor(path)
    train_x, _, heldout_x, _ = digit_classifier.training_data("mnist_offline")
    cache = str(tmp_path / "reference.npz")
    real = features.quality_metrics(extractor, train_x[:500], heldout_x, cache)
    # Blurred (2x2 block means) and noisy digits move away in feature space.
    blurred = train_x[:500].astype(np.float32).reshape(500, 14, 2, 14, 2, 1).mean(axis=(2, 4))
    blurred = np.repeat(np.repeat(blurred, 2, axis=1), 2, axis=2) / 255.0
    noisy = np.clip(blurred + np.random.default_rng(0).normal(0, 0.3, blurred.shape), 0, 1)
    # The reference side now comes from the cache: the network sees only the samples.
    seen = []
    counting = dataclasses.replace(extractor, apply=lambda x: seen.append(len(x)) or
                                   extractor.apply(x))
    distorted = features.quality_metrics(counting, noisy, heldout_x, cache)
    assert sum(seen) == 500
    assert real["num_samples"] == 500 and real["num_reference"] == 500
    assert real["fid"] < distorted["fid"] / 5
    assert real["precision"] > 0.6 and real["recall"] > 0.6
    assert distorted["precision"] < real["precision"] - 0.1
    # Real training digits against held-out ones, for scale in the README.
    print(f"domain FID real vs held-out {real['fid']:.3f}, distorted {distorted['fid']:.3f}")


def test_evaluate_tool_refuses_a_missing_weights_file(tmp_path):
    done = subprocess.run([sys.executable, "-m", "competitive_mixtures.evaluate",
                           f"--workdir={tmp_path}", f"--inception_weights={tmp_path / 'x.npz'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "not found" in done.stderr and "convert_inception" in done.stderr
