"""TensorBoard summaries, written without TensorFlow (a run that writes them: test_train)."""

import sys

import numpy as np
import pytest

from competitive_mixtures import errors, tensorboard_log


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
    # `None` in sys.modules makes an import raise ImportError, imported before or not.
    for name in ["tensorboard"] + [m for m in sys.modules if m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(errors.UserError, match=r"pip install -e '\.\[tensorboard\]'"):
        tensorboard_log.Writer(str(tmp_path))
