"""The compiled steps are traced once per shape, however many rounds run."""

import jax
import numpy as np

from competitive_mixtures import bench
from competitive_mixtures import data as data_lib
from competitive_mixtures import sharding
from competitive_mixtures import train
from conftest import load_config


def test_steps_compile_once_across_rounds():
    config = load_config("synthetic", "tiny")
    config.num_rounds = 3
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    x = jax.device_put(dataset.x, sharding.replicated(programs.mesh))
    state = train.init_state(config, programs, x)
    counts, compiles, traces = [], [], []
    for _ in range(4):  # Pre-training and three rounds.
        with bench.CompileMonitor() as monitor:  # jax.monitoring's compile events.
            state, record = train.run_round(config, programs, state, x)
        counts.append(record["counts"])
        compiles.append(monitor.count)
        traces.append(list(bench.program_traces(monitor).values()))
    # Pre-training compiles the steps; the rounds after it compile nothing.
    assert compiles[0] > 0 and compiles[1:] == [0, 0, 0], compiles
    # The bench finds the round's four programs by the names their traces carry.
    assert traces == [[1, 1, 1, 1]] + [[0, 0, 0, 0]] * 3, traces
    # The counts changed between rounds, so different data did flow through.
    assert len({tuple(c) for c in counts}) > 1
    assert np.sum(counts[-1]) == dataset.num_points
