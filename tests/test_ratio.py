"""Density-ratio estimators: known ratios recovered, estimators agree, runs end to end."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures import kernels
from competitive_mixtures import models
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import train
from competitive_mixtures import restore
from competitive_mixtures.data import synthetic
from competitive_mixtures import ratio as ratio_lib
from competitive_mixtures.ratio import discriminator
from competitive_mixtures.ratio import ensemble
from competitive_mixtures.ratio import kernel
from competitive_mixtures.ratio import multiclass
from conftest import load_config


def _gaussians(dim, shift, n=2000, seed=0):
    """Data ~ N(0, I) and samples ~ N(shift e_1, I): log ratio shift x_1 - shift^2 / 2."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    mean = np.zeros(dim, np.float32)
    mean[0] = shift
    samples = (rng.standard_normal((1, n, dim)) + mean).astype(np.float32)
    return x, samples, x @ mean - 0.5 * mean @ mean


@pytest.mark.parametrize("dim", [1, 2])
def test_kernel_ratio_recovers_gaussian_ratio(dim):
    """Stated error: mean |log r - log r_true| < 0.1 nats over the central 90% of the data
    (measured 0.043 in 1-D and 0.052 in 2-D), with the default eps and width."""
    x, samples, truth = _gaussians(dim, 0.5)
    log_r = np.asarray(kernel.log_ratios(jnp.asarray(x), jnp.asarray(samples),
                                         jax.random.PRNGKey(0), eps=1e-3, width_scale=1.0,
                                         exact_max=4096, landmarks=256))[:, 0]
    radius = np.linalg.norm(x, axis=1)
    central = radius < np.quantile(radius, 0.9)
    error = np.abs(log_r - truth)[central]
    assert error.mean() < 0.1, error.mean()
    # The ratio varies by a factor e^2 over the central points; the estimate follows it.
    assert np.corrcoef(log_r[central], truth[central])[0, 1] > 0.98


def test_nystrom_equals_exact_with_every_point_a_landmark():
    x, samples, _ = _gaussians(2, 1.0, n=300)
    x, samples = jnp.asarray(x), jnp.asarray(samples)
    width = kernels.median_distance(x)
    exact = jax.jit(kernel.exact_ratio)(x, samples, width, 1e-3)
    approx = jax.jit(kernel.nystrom_ratio)(x, samples, x, width, 1e-3)
    np.testing.assert_allclose(np.asarray(approx), np.asarray(exact), atol=2e-3, rtol=2e-3)


def test_nystrom_error_against_exact_on_mixture():
    """256 landmarks of 1,024 points of the 3-mode set: the stated approximation is
    within 1% (relative L2) of the exact solve and picks the same best component."""
    data = synthetic.gaussian_mixture(3, num_points=1024, seed=0)
    rng = np.random.default_rng(1)
    samples = np.stack([data.x[rng.choice(np.flatnonzero(data.label == j), 512)]
                        for j in range(3)])
    error = kernel.approximation_error(jnp.asarray(data.x), jnp.asarray(samples),
                                       jax.random.PRNGKey(0), eps=1e-3, width_scale=1.0,
                                       landmarks=256)
    assert error["relative_l2"] < 0.01, error
    assert error["argmax_agreement"] > 0.999, error


def test_kernel_ratio_of_images_is_finite():
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (64, 4, 4, 1), np.uint8))
    samples = jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 4, 4, 1))
    log_r = kernel.log_ratios(x, samples, jax.random.PRNGKey(0), eps=1e-3, width_scale=1.0,
                              exact_max=4096, landmarks=16)
    chex.assert_shape(log_r, (64, 2))
    chex.assert_tree_all_finite(log_r)


def _gaussian_components(mu: np.ndarray, kind: str):
    """Components N(mu_j, I) (`kmeans` family), linear classifiers of `ratio.kind`, and
    2,000 data points ~ N(0, I): (config, gen_model, gen, x)."""
    config = config_lib.base_config()
    config.model.family = "kmeans"  # A component is N(mu_j, I).
    config.ratio.kind = kind
    config.num_components = mu.shape[0]
    config.disc.hidden = ()
    config.disc.epochs = 20
    config.disc.batch_size = 256
    config.disc.learning_rate = 0.05
    config.steps_per_chunk = 200
    gen_model = models.generator(config, (2,))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2000, 2)).astype(np.float32))
    gen = stacking.init(gen_model, models.generator_optimizer(config),
                        jax.random.split(jax.random.PRNGKey(0), mu.shape[0]), x[:8])
    return config, gen_model, gen.replace(params={"mu": jnp.asarray(mu)}), x


def test_multiclass_and_binary_agree_where_both_are_optimal():
    """Data N(0, I), components N(mu_j, I): log dP_gj/dP_X = mu_j.x - |mu_j|^2/2 is linear,
    so linear classifiers (no hidden layer) can reach the optimum of both losses."""
    mu = np.array([[1.0, 0.0], [-0.5, 0.8]], np.float32)
    config, gen_model, gen, x = _gaussian_components(mu, "discriminator")
    mesh = sharding.make_mesh()
    truth = np.asarray(x) @ mu.T - 0.5 * np.sum(mu ** 2, axis=1)
    estimates = []
    for make in (discriminator.make, multiclass.make):
        estimator = make(config, gen_model, (2,), mesh)
        state = estimator.init(jax.random.PRNGKey(1), x[:8])
        state, _ = estimator.fit(state, gen, x, jax.random.PRNGKey(2), jax.random.PRNGKey(3),
                                 np.ones(2, bool))
        log_r = np.asarray(estimator.log_ratios(state, gen, x, jax.random.PRNGKey(4)))
        chex.assert_shape(log_r, (2000, 2))
        assert np.abs(log_r - truth).mean() < 0.15, (make.__module__,
                                                     np.abs(log_r - truth).mean())
        estimates.append(log_r)
    # Measured: 0.058 mean absolute difference (the truth varies over ~2 nats).
    assert np.abs(estimates[0] - estimates[1]).mean() < 0.15


def test_ensemble_is_its_members_fitted_alone_and_averaged():
    """disc.ensemble = M: M members initialised and fitted as a single estimator would be
    (keys folded with the member's index); the score is the mean of their log ratios."""
    mu = np.array([[1.0, 0.0], [-0.5, 0.8]], np.float32)
    config, gen_model, gen, x = _gaussian_components(mu, "discriminator")
    config.disc.epochs = 1
    mesh = sharding.make_mesh()
    single = ratio_lib.make(config, gen_model, (2,), mesh)
    config.disc.ensemble = 3
    estimator = ratio_lib.make(config, gen_model, (2,), mesh)
    assert isinstance(estimator, ensemble.Ensemble) and estimator.kind == "discriminator"
    init_key, fit_key, reinit_key, score_key = jax.random.split(jax.random.PRNGKey(5), 4)
    active = np.ones(2, bool)
    state = estimator.init(init_key, x[:8])
    assert isinstance(state, tuple) and len(state) == 3
    state, record = estimator.fit(state, gen, x, fit_key, reinit_key, active)
    assert len(record["disc_loss"]) == 2
    members = []
    for i, (member, key) in enumerate(zip(state, jax.random.split(init_key, 3))):
        alone = single.init(key, x[:8])
        alone, _ = single.fit(alone, gen, x, jax.random.fold_in(fit_key, i),
                              jax.random.fold_in(reinit_key, i), active)
        chex.assert_trees_all_close(alone.params, member.params, rtol=1e-6, atol=1e-6)
        members.append(np.asarray(single.log_ratios(alone, gen, x, score_key)))
    # The members differ (independent initialisations), and the score is their mean.
    assert np.abs(members[0] - members[1]).mean() > 1e-3
    np.testing.assert_allclose(np.asarray(estimator.log_ratios(state, gen, x, score_key)),
                               np.mean(members, axis=0), rtol=1e-5, atol=1e-5)


def test_ensemble_of_classifiers_logs_their_mean_loss():
    mu = np.array([[1.0, 0.0], [-0.5, 0.8]], np.float32)
    config, gen_model, gen, x = _gaussian_components(mu, "posterior")
    config.disc.epochs = 1
    config.disc.ensemble = 2
    estimator = ratio_lib.make(config, gen_model, (2,), sharding.make_mesh())
    assert isinstance(estimator, ensemble.Ensemble) and not estimator.normalise
    state = estimator.init(jax.random.PRNGKey(0), x[:8])
    members = [jax.tree.map(jnp.copy, member) for member in state]
    state, record = estimator.fit(state, gen, x, jax.random.PRNGKey(1), jax.random.PRNGKey(2),
                                  np.ones(2, bool))
    assert isinstance(record["classifier_loss"], float)
    # The logged loss is the mean of the members' losses, each fitted alone with the
    # keys the ensemble gives it.
    alone = [estimator.member.fit(member, gen, x, jax.random.fold_in(jax.random.PRNGKey(1), i),
                                  jax.random.fold_in(jax.random.PRNGKey(2), i),
                                  np.ones(2, bool))[1]["classifier_loss"]
             for i, member in enumerate(members)]
    assert alone[0] != pytest.approx(alone[1], rel=1e-3)
    assert record["classifier_loss"] == pytest.approx(np.mean(alone), rel=1e-6)
    chex.assert_shape(estimator.log_ratios(state, gen, x, jax.random.PRNGKey(3)), (2000, 2))


def test_ensemble_run_checkpoints_every_member(tmp_path):
    """A tiny run with disc.ensemble = 2 restores both members, and scoring with them
    gives back the run's last assignment."""
    config = load_config("synthetic", "tiny")
    config.data.num_points = 1000
    config.eval.num_samples = 500
    config.disc.ensemble = 2
    summary = train.train_and_evaluate(config, str(tmp_path))
    assert summary["clustering"]["nmi"] > 0.9, summary["clustering"]
    _, programs, state = restore.restore_run(str(tmp_path))
    assert isinstance(state.disc, tuple) and len(state.disc) == 2
    first, second = (jax.tree.leaves(d.params)[0] for d in state.disc)
    assert np.abs(np.asarray(first) - np.asarray(second)).max() > 1e-3
    x = jnp.asarray(data_lib.load(config).x, jnp.float32)
    scores = programs.ratio.log_ratios(state.disc, state.gen, x, jax.random.PRNGKey(0))
    result, _ = programs.assigner(scores, state.active)
    with np.load(tmp_path / "assignments.npz") as f:
        np.testing.assert_array_equal(np.asarray(result.owner), f["assignment"])


def test_input_noise_estimates_the_ratio_of_the_smoothed_densities():
    """Data N(0, I), components N(mu_j, I), noise s on both: the smoothed densities are
    N(0, (1 + s^2) I) and N(mu_j, (1 + s^2) I), whose log ratio is the clean one over
    1 + s^2; at s = 1 the discriminators learn half the clean log ratio."""
    mu = np.array([[1.0, 0.0], [-0.5, 0.8]], np.float32)
    config, gen_model, gen, x = _gaussian_components(mu, "discriminator")
    config.disc.input_noise = 1.0
    estimator = discriminator.make(config, gen_model, (2,), sharding.make_mesh())
    state = estimator.init(jax.random.PRNGKey(1), x[:8])
    state, _ = estimator.fit(state, gen, x, jax.random.PRNGKey(2), jax.random.PRNGKey(3),
                             np.ones(2, bool))
    log_r = np.asarray(estimator.log_ratios(state, gen, x, jax.random.PRNGKey(4)))
    truth = np.asarray(x) @ mu.T - 0.5 * np.sum(mu ** 2, axis=1)
    error = np.abs(log_r - truth / 2).mean()
    assert error < 0.15, error
    assert np.abs(log_r - truth).mean() > 2 * error


def test_posterior_kind_recovers_the_components_posterior():
    """ratio.kind='posterior': components N(mu_j, I); the K-way classifier of their samples
    estimates log p_j(x) - log sum_j' p_j'(x), linear in x up to the softmax, so a linear
    classifier can reach it. Its scores skip the dataset normaliser."""
    mu = np.array([[1.0, 0.0], [-0.5, 0.8], [0.0, -1.0]], np.float32)
    config, gen_model, gen, x = _gaussian_components(mu, "posterior")
    mesh = sharding.make_mesh()
    logits = np.asarray(x) @ mu.T - 0.5 * np.sum(mu ** 2, axis=1)
    truth = np.asarray(jax.nn.log_softmax(logits, axis=1))
    estimator = multiclass.make(config, gen_model, (2,), mesh)
    assert estimator.kind == "posterior" and not estimator.normalise
    state = estimator.init(jax.random.PRNGKey(1), x[:8])
    state, record = estimator.fit(state, gen, x, jax.random.PRNGKey(2), jax.random.PRNGKey(3),
                                  np.ones(3, bool))
    assert np.isfinite(record["classifier_loss"])
    log_p = np.asarray(estimator.log_ratios(state, gen, x, jax.random.PRNGKey(4)))
    chex.assert_shape(log_p, (2000, 3))
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-5)
    assert np.abs(log_p - truth).mean() < 0.15, np.abs(log_p - truth).mean()
    assert np.mean(log_p.argmax(1) == truth.argmax(1)) > 0.95


def test_multiclass_leaves_out_inactive_components():
    """A component marked inactive is not a class of the fit: its samples do not enter
    the loss, so moving it leaves the fitted classifier unchanged."""
    config = config_lib.base_config()
    config.num_components = 2
    mesh = sharding.make_mesh()
    gen_model = models.generator(config, (2,))
    estimator = multiclass.make(config, gen_model, (2,), mesh)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((256, 2)).astype(np.float32))
    loss = multiclass.classifier_loss(estimator.model)
    params, model_state = estimator.model.init(jax.random.PRNGKey(0), x[:8])
    real = x[:16]
    fake = jnp.stack([x[16:32] + 3.0, x[32:48] - 3.0], axis=1)
    moved = fake.at[:, 1].add(100.0)
    active = jnp.array([True, False])
    value, _ = loss(params, model_state, real, fake, active)
    value_moved, _ = loss(params, model_state, real, moved, active)
    assert float(value) == pytest.approx(float(value_moved))
    value_all, _ = loss(params, model_state, real, moved, jnp.array([True, True]))
    assert float(value_all) != pytest.approx(float(value))


@pytest.mark.parametrize("kind", ["kernel", "multiclass", "posterior"])
def test_competitive_run_end_to_end(kind, tmp_path):
    """A tiny competitive run with the estimator trains, assigns, checkpoints and evaluates;
    the owners move from the random split towards the true modes."""
    config = load_config("synthetic", f"tiny,ratio={kind}")
    config.data.num_points = 1000
    config.eval.num_samples = 500
    config.ratio.kernel.samples = 512
    summary = train.train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(summary["kde"]["log_likelihood"])
    assert sum(summary["counts"]) == 1000
    assert min(summary["counts"]) > 0
    # The random pre-training split scores NMI ~0.002 against the modes; after two
    # assignment passes the owners follow the modes (measured: kernel 0.19, multiclass 0.9).
    assert summary["clustering"]["nmi"] > 0.1, summary["clustering"]
    restored_config, programs, state = restore.restore_run(str(tmp_path))
    assert programs.ratio.kind == kind and restored_config.ratio.kind == kind
    assert int(state.round) == config.num_rounds + 1
    with np.load(tmp_path / "assignments.npz") as f:
        np.testing.assert_array_equal(f["assignment"], np.asarray(state.owner))


def test_elbo_kind_scores_are_each_components_elbo_and_not_normalised():
    """ratio.kind='elbo': score_ij is component j's ELBO of point i (the same noise as
    `stacking.elbo`); the assignment is argmax_j ELBO_j(x_i), with no dataset normaliser."""
    config = load_config("synthetic", "tiny")
    config.ratio.kind = "elbo"
    config_lib.validate(config)
    data = synthetic.gaussian_mixture(3, num_points=600, num_heldout=10, seed=0)
    x = jnp.asarray(data.x)
    programs = train.make_programs(config, (2,))
    state = train.init_state(config, programs, x)
    key = jax.random.PRNGKey(5)
    scores = np.asarray(programs.ratio.log_ratios(state.disc, state.gen, x, key))
    chex.assert_shape(scores, (600, 3))
    expected = np.asarray(stacking.elbo(programs.gen_model, state.gen, x,
                                        jax.random.fold_in(key, 0)))
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    result, _ = programs.assigner(jnp.asarray(scores))
    np.testing.assert_array_equal(np.asarray(result.owner), np.argmax(scores, axis=1))


def test_elbo_kind_needs_a_vae():
    config = load_config("gan_ring", "tiny")
    config.ratio.kind = "elbo"
    with pytest.raises(config_lib.ConfigError, match="elbo"):
        config_lib.validate(config)
