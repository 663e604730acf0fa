"""Baseline strategies share the loop and differ only in how points are owned."""

import jax
import numpy as np

from competitive_mixtures import data as data_lib
from competitive_mixtures import sharding
from competitive_mixtures import train
from conftest import load_config


def _rounds(config, n):
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    x = sharding.put(dataset.x, sharding.replicated(programs.mesh))
    state = train.init_state(config, programs, x)
    owners, records = [np.asarray(state.owner)], []
    for _ in range(n):
        state, record = train.run_round(config, programs, state, x)
        owners.append(np.asarray(state.owner))
        records.append(record)
    return state, owners, records


def test_bagging_assignments_never_change():
    config = load_config("synthetic", "tiny,strategy=bagging")
    state, owners, records = _rounds(config, 3)
    for owner in owners[1:]:
        np.testing.assert_array_equal(owner, owners[0])
    counts = np.bincount(owners[0], minlength=3)
    assert counts.max() - counts.min() <= 1  # A disjoint split into K near-equal bags.
    np.testing.assert_allclose(np.asarray(state.alpha), np.full(3, 1 / 3), rtol=1e-6)
    assert all("seconds_disc" not in r for r in records)  # No discriminators are trained.


def test_bagging_bootstrap_draws_with_replacement():
    config = load_config("synthetic", "tiny,strategy=bagging")
    config.bagging.bootstrap = True
    state, owners, _ = _rounds(config, 1)
    sets = state.sets
    assert np.asarray(sets.balanced).all()
    assert sets.best.shape == (3, config.data.num_points // 3)
    best = np.asarray(sets.best)
    # With replacement: some point appears twice within a bag.
    assert any(len(np.unique(row)) < len(row) for row in best)


def test_single_trains_one_component_on_all_points():
    config = load_config("synthetic", "tiny,vae150")
    assert config.num_components == 1 and tuple(config.model.hidden) == (150, 150)
    state, owners, records = _rounds(config, 2)
    assert all((owner == 0).all() for owner in owners)
    assert records[-1]["counts"] == [config.data.num_points]
    np.testing.assert_allclose(np.asarray(state.alpha), [1.0])
    assert jax.tree.leaves(state.gen.params)[0].shape[0] == 1


def test_budgets_match_across_strategies(monkeypatch):
    """Every strategy spends the same generator budget: the steps its M-steps take, summed
    over the components, are ceil(epochs * points / batch) per round (up to one step of
    rounding per component), whether K components share the points (competitive,
    bagging), one model holds them all (vae150) or one component trains a stage at a
    time (boosting)."""
    taken = {}
    run_m_step = train.run_m_step

    def counting(programs, gen, num_steps, *args, **kwargs):
        taken[arg].append(int(np.sum(num_steps)))
        return run_m_step(programs, gen, num_steps, *args, **kwargs)

    monkeypatch.setattr(train, "run_m_step", counting)
    for arg in ("tiny", "tiny,strategy=bagging", "tiny,vae150", "tiny,strategy=boosting"):
        config = load_config("synthetic", arg)
        taken[arg] = []
        _rounds(config, 3)
        n, k = config.data.num_points, config.num_components
        expected = [np.ceil(e * n / config.batch_size)
                    for e in (config.pretrain_epochs,) + (config.epochs_per_round,) * 2]
        assert len(taken[arg]) == 3, arg
        for got, want in zip(taken[arg], expected):
            assert want <= got <= want + k, (arg, taken[arg], expected)
