"""Watching a run: TensorBoard summaries and a profiler trace, written without TensorFlow."""

import glob
import io
import json
import os
import sys

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_file_loader

from competitive_mixtures import errors, tensorboard_log, train
from conftest import load_config


def _events(workdir):
    files = glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    assert len(files) == 1, files
    return [e for e in event_file_loader.LegacyEventFileLoader(files[0]).Load() if e.summary.value]


def test_summaries_and_profile_of_a_run(tmp_path):
    """Every round's numbers (those of metrics.jsonl) and a samples picture, at step =
    round; a profiler trace of round 1."""
    config = load_config("synthetic", "tiny")
    config.log.tensorboard = True
    config.profile = True
    workdir = str(tmp_path)
    train.train_and_evaluate(config, workdir)
    scalars, images = {}, {}
    for event in _events(workdir):
        for value in event.summary.value:
            if value.HasField("image"):
                images[event.step] = value.image
            else:
                scalars[(value.tag, event.step)] = value.simple_value
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert sorted(images) == [r["round"] for r in records] == [0, 1, 2]
    for r in records:
        step = r["round"]
        for j, loss in enumerate(r["gen_loss"]):
            assert scalars[(f"gen_loss/{j}", step)] == pytest.approx(loss, rel=1e-6)
        for j, alpha in enumerate(r["alphas"]):
            assert scalars[(f"alphas/{j}", step)] == pytest.approx(alpha, rel=1e-6)
        assert scalars[("clustering/nmi", step)] == pytest.approx(r["clustering"]["nmi"],
                                                                  rel=1e-6)
        assert ("round", step) not in scalars
    picture = np.asarray(Image.open(io.BytesIO(images[2].encoded_image_string)))
    assert picture.shape == (images[2].height, images[2].width, 3)
    assert picture.std() > 0  # Not a blank picture.
    traces = glob.glob(os.path.join(workdir, "profile", "**", "*.xplane.pb"), recursive=True)
    assert len(traces) == 1, traces


def test_image_grid_puts_a_component_per_row():
    samples = np.zeros((3, 4, 2, 5, 1), np.float32)
    samples[1] = 1.0
    grid = tensorboard_log.image_grid(samples)
    assert grid.shape == (6, 20, 3) and grid.dtype == np.uint8
    assert (grid[2:4] == 255).all() and (grid[:2] == 0).all() and (grid[4:] == 0).all()


def test_flatten_keeps_finite_numbers_only():
    record = {"round": 3, "pretrain": False, "gen_loss": [1.5, None, float("nan")],
              "clustering": {"nmi": 0.5}, "seconds": 2, "reset_components": []}
    assert tensorboard_log.flatten(record) == {"gen_loss/0": 1.5, "clustering/nmi": 0.5,
                                               "seconds": 2.0}


def test_missing_tensorboard_is_a_one_line_user_error(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.split(".")[0] == "tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(errors.UserError, match=r"pip install -e '\.\[tensorboard\]'"):
        tensorboard_log.Writer(str(tmp_path))
