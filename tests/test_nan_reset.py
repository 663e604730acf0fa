"""A component whose loss turns NaN is re-initialised; the others are untouched."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from competitive_mixtures import data as data_lib, stacking, train
from conftest import load_config


def _copy(tree):
    """A fresh device copy (run_round's M-step donates the generator buffers)."""
    return jax.tree.map(jnp.array, tree)


def _component(tree, j):
    return jax.tree.map(lambda leaf: np.asarray(leaf)[j], tree)


def test_nan_component_is_reset_alone():
    """Component 1 NaN: record says [1], it comes back finite, 0 and 2 match a clean round."""
    # configs/synthetic.py:tiny as is: test_train compiles the same programs (shared cache).
    config = load_config("synthetic", "tiny")
    assert config.num_components == 3
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    x = jnp.asarray(dataset.x, jnp.float32)
    start = train.init_state(config, programs, x)

    clean_state, clean = train.run_round(config, programs, _copy(start), x)
    assert clean["reset_components"] == []
    assert all(v is not None and np.isfinite(v) for v in clean["gen_loss"])

    broken = _copy(start)
    nan_params = jax.tree.map(lambda p: p.at[1].set(jnp.nan), broken.gen.params)
    broken = broken.replace(gen=broken.gen.replace(params=nan_params))
    np.testing.assert_array_equal(stacking.all_finite(broken.gen.params), [True, False, True])
    state, record = train.run_round(config, programs, broken, x)

    assert record["reset_components"] == [1]
    assert record["gen_loss"][1] is None
    np.testing.assert_allclose([record["gen_loss"][j] for j in (0, 2)],
                               [clean["gen_loss"][j] for j in (0, 2)], rtol=1e-6)
    np.testing.assert_array_equal(stacking.all_finite(state.gen.params), [True, True, True])
    np.testing.assert_array_equal(stacking.all_finite(state.gen.opt_state), [True, True, True])
    for j in (0, 2):
        chex.assert_trees_all_equal(_component(state.gen.params, j),
                                    _component(clean_state.gen.params, j))
        chex.assert_trees_all_equal(_component(state.gen.opt_state, j),
                                    _component(clean_state.gen.opt_state, j))
    # The reset component restarts: a fresh optimizer state and new parameters.
    np.testing.assert_array_equal(np.asarray(state.gen.opt_state[0].count), [
        int(clean_state.gen.opt_state[0].count[0]), 0, int(clean_state.gen.opt_state[0].count[2])])
    kernel = next(leaf for leaf in jax.tree.leaves(state.gen.params) if leaf.ndim == 3)
    start_kernel = next(leaf for leaf in jax.tree.leaves(start.gen.params) if leaf.ndim == 3)
    assert not np.allclose(kernel[1], start_kernel[1])
