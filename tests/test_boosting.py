"""AdaGAN boosting: data weights against hand-computed cases, and the strategy end to end."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from competitive_mixtures import assign
from competitive_mixtures import boosting
from competitive_mixtures import checkpointing
from competitive_mixtures import data as data_lib
from competitive_mixtures import sharding
from competitive_mixtures import strategies
from competitive_mixtures import train
from competitive_mixtures import restore
from conftest import load_config


def _bisection_star(h, beta):
    """lambda* of sum_i (lambda - (1 - beta) h_i)_+ = beta N by float64 bisection."""
    a = (1 - beta) * np.asarray(h, np.float64)
    lo, hi = 0.0, a.max() + beta * len(a) + 1
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.maximum(mid - a, 0).sum() < beta * len(a) else (lo, mid)
    return np.maximum(lo - a, 0) / (beta * len(a))


def _bisection_dagger(h, beta):
    """lambda-dagger of sum_i (1 - lambda (1 - beta) h_i)_+ = beta N by float64 bisection."""
    c = (1 - beta) * np.asarray(h, np.float64)
    lo, hi = 0.0, 1e12
    for _ in range(400):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.maximum(1 - mid * c, 0).sum() > beta * len(c) else (lo, mid)
    return np.maximum(1 - lo * c, 0) / (beta * len(c))


def test_star_weights_hand_computed():
    # h = (0, 1, 2, 3), beta = 1/2: a = (0, .5, 1, 1.5), beta N = 2. Three points:
    # lambda = (2 + 1.5) / 3 = 7/6 > a_(3) = 1, while four would need (2 + 3) / 4 < 1.5.
    # w = (7/6 - a)_+ / 2 = (7/12, 1/3, 1/12, 0).
    w = boosting.data_weights(jnp.array([0.0, 1.0, 2.0, 3.0]), 0.5)
    chex.assert_trees_all_close(w, jnp.array([7 / 12, 1 / 3, 1 / 12, 0.0]), atol=1e-6)
    # The order of the points does not matter.
    w = boosting.data_weights(jnp.array([3.0, 0.0, 2.0, 1.0]), 0.5)
    chex.assert_trees_all_close(w, jnp.array([0.0, 7 / 12, 1 / 12, 1 / 3]), atol=1e-6)


def test_dagger_weights_hand_computed():
    # Same h and beta: c = (0, .5, 1, 1.5). k = 3 points: lambda = (3 - 2) / 1.5 = 2/3, and
    # 1 - 2/3 * 1 > 0 >= 1 - 2/3 * 1.5. w = (1 - 2/3 c)_+ / 2 = (1/2, 1/3, 1/6, 0).
    w = boosting.data_weights_dagger(jnp.array([0.0, 1.0, 2.0, 3.0]), 0.5)
    chex.assert_trees_all_close(w, jnp.array([0.5, 1 / 3, 1 / 6, 0.0]), atol=1e-6)
    # More than beta N points with h = 0: the limit lambda -> inf, uniform over them.
    w = boosting.data_weights_dagger(jnp.array([0.0, 0.0, 0.0, 5.0]), 0.5)
    chex.assert_trees_all_close(w, jnp.array([1 / 3, 1 / 3, 1 / 3, 0.0]), atol=1e-6)


def test_fewer_nonzero_weights_than_a_batch():
    # h = (0, .1, 1000 x 98), beta = 1/2: a = (0, .05, 500, ...), beta N = 50. Two points:
    # lambda = 50.05 / 2 = 25.025 > .05; a third would need (50.05 + 500) / 3 = 183 > 500.
    h = jnp.concatenate([jnp.array([0.0, 0.1]), jnp.full((98,), 1000.0)])
    w = boosting.data_weights(h, 0.5)
    expected = np.zeros(100)
    expected[:2] = [25.025 / 50, 24.975 / 50]
    chex.assert_trees_all_close(w, jnp.asarray(expected, jnp.float32), atol=1e-6)
    # A list of N points and then an M-step batch of 32 are still drawn, from these two only.
    points = boosting.draw_training_points(jax.random.PRNGKey(0), w, 100)
    assert set(np.unique(points)) == {0, 1}
    sets = strategies.boosting_sets(points, 1, 3)
    batch = np.asarray(assign.sample_training_points(sets, jax.random.PRNGKey(1), 32))
    assert set(np.unique(batch[1])) <= {0, 1}
    np.testing.assert_array_equal(np.asarray(sets.size), [0, 100, 0])


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("weighting", ["star", "dagger"])
def test_weights_sum_to_one_and_match_bisection(beta, weighting):
    rng = np.random.default_rng(int(beta * 10))
    # Ratios of a mixture that explains some points well (h large) and misses others.
    h = np.exp(rng.normal(0.0, 2.0, 500)).astype(np.float32)
    w = np.asarray(boosting.weights(jnp.asarray(h), beta, weighting))
    assert w.min() >= 0.0
    assert w.sum() == pytest.approx(1.0, abs=1e-5)
    reference = (_bisection_star if weighting == "star" else _bisection_dagger)(h, beta)
    np.testing.assert_allclose(w, reference, atol=2e-6)
    # Zero exactly where h is large, positive below; never increasing in h.
    order = np.argsort(h)
    assert np.all(np.diff(w[order]) <= 1e-9)
    assert w[np.argmax(h)] == 0.0 and w[np.argmin(h)] > 0.0


def test_beta_one_gives_uniform_weights():
    h = jnp.array([0.0, 2.0, 1e6, jnp.inf])
    for weighting in ("star", "dagger"):
        chex.assert_trees_all_close(boosting.weights(h, 1.0, weighting), jnp.full(4, 0.25))


def test_mixture_weights_and_schedules():
    alpha = jnp.array([1.0, 0.0, 0.0])
    for stage, expected in ((1, [0.5, 0.5, 0.0]), (2, [1 / 3, 1 / 3, 1 / 3])):
        alpha = boosting.add_component(alpha, stage, boosting.beta("1/t", stage))
        chex.assert_trees_all_close(alpha, jnp.array(expected), atol=1e-7)
    alpha = boosting.add_component(jnp.array([0.5, 0.5, 0.0]), 2,
                                   boosting.beta("constant", 2, 0.3))
    chex.assert_trees_all_close(alpha, jnp.array([0.35, 0.35, 0.3]), atol=1e-7)
    assert boosting.beta("constant", 0, 0.3) == 1.0  # G_1 = Q_1.
    assert boosting.beta("one", 2) == 1.0
    with pytest.raises(ValueError, match="unknown beta schedule"):
        boosting.beta("cosine", 1)


def test_mixture_log_ratio_and_owners_ignore_absent_components():
    log_ratio = jnp.log(jnp.array([[2.0, 0.5, jnp.inf], [0.1, 3.0, 5.0]]))
    alpha = jnp.array([0.75, 0.25, 0.0])
    chex.assert_trees_all_close(boosting.mixture_log_ratio(log_ratio, alpha),
                                jnp.log(jnp.array([1.625, 0.825])), atol=1e-6)
    np.testing.assert_array_equal(boosting.owners(log_ratio, alpha), [0, 1])


def test_stage_schedule():
    # 16 rounds for 3 components: 6, 5, 5; the last round of each stage ends it.
    stages = [boosting.stage(r, 15, 3) for r in range(16)]
    assert stages == [0] * 6 + [1] * 5 + [2] * 5
    ends = [r for r in range(16) if boosting.stage_ends(r, 15, 3)]
    assert ends == [5, 10, 15]
    assert [boosting.stage(r, 2, 3) for r in range(3)] == [0, 1, 2]


def _boosting_config():
    config = load_config("synthetic", "tiny,strategy=boosting")
    config.data.num_points = 1000
    config.eval.num_samples = 500
    return config


def test_boosting_end_to_end_with_resume_in_the_middle(tmp_path, monkeypatch):
    """Components join one per stage; a run stopped after the second joined resumes and
    adds the third exactly as an uninterrupted run does."""
    config = _boosting_config()
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    x = sharding.put(dataset.x.astype(np.float32), sharding.replicated(programs.mesh))
    state = train.init_state(config, programs, x)
    alphas = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]]
    for r in range(3):
        before = jax.tree.map(np.asarray, state.gen.params)  # The M-step donates the state.
        state, record = train.run_round(config, programs, state, x)
        changed = [not all(np.array_equal(a[j], b[j]) for a, b in
                           zip(jax.tree.leaves(before), jax.tree.leaves(state.gen.params)))
                   for j in range(3)]
        assert changed == [j == r for j in range(3)], (r, changed)
        np.testing.assert_allclose(np.asarray(state.alpha), alphas[r], atol=1e-6)
        assert record["boosting"]["stage"] == r
        if r < 2:
            # The next component alone has a training list, of N points.
            np.testing.assert_array_equal(np.asarray(state.sets.size),
                                          [1000 if j == r + 1 else 0 for j in range(3)])
            assert 0.0 <= record["boosting"]["zero_weight_share"] < 1.0
        # Points belong to components already in the mixture only.
        assert set(np.unique(np.asarray(state.owner))) <= set(range(r + 1))

    real_save = checkpointing.Checkpointer.save

    def save_then_stop(self, step, saved):
        # The process dies right after the checkpoint of round 1 is on disk.
        real_save(self, step, saved)
        if step == 2:
            self.wait()
            raise KeyboardInterrupt

    workdir = str(tmp_path / "run")
    monkeypatch.setattr(checkpointing.Checkpointer, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, workdir)
    monkeypatch.setattr(checkpointing.Checkpointer, "save", real_save)
    _, _, middle = restore.restore_run(workdir)
    assert int(middle.round) == 2
    np.testing.assert_allclose(np.asarray(middle.alpha), alphas[1], atol=1e-6)
    summary = train.train_and_evaluate(config, workdir)
    np.testing.assert_allclose(summary["alphas"], alphas[2], atol=1e-6)
    _, _, resumed = restore.restore_run(workdir)
    chex.assert_trees_all_equal(resumed.gen.params, state.gen.params)
    chex.assert_trees_all_equal(resumed.sets, state.sets)
    np.testing.assert_array_equal(np.asarray(resumed.owner), np.asarray(state.owner))
