"""init_split='latent' (competitive_mixtures/latent_split.py): one shared VAE,
k-means on its latent means, every component starting from its weights; and
discriminators that read its latent means (disc.features='latent')."""

import copy
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from competitive_mixtures import config as config_lib, data as data_lib, latent_split
from competitive_mixtures import programs as programs_lib, ratio as ratio_lib, seeding
from competitive_mixtures import train
from competitive_mixtures.ratio import base
from competitive_mixtures.models import conv
from competitive_mixtures.ratio import discriminator as disc_lib
from conftest import load_config


def _config(**overrides):
    c = load_config("synthetic", "tiny")
    c.init_split, c.init_epochs = "latent", 1
    for key, value in overrides.items():
        c[key] = value
    return c


@pytest.fixture(scope="module")
def started():
    """(config, programs, fresh state, the started state, its record, points)."""
    config = _config()
    dataset = data_lib.load(config)
    x = jnp.asarray(dataset.x, jnp.float32)
    programs = train.make_programs(config, dataset.data_shape)
    fresh = train.init_state(config, programs, x)
    state, record = latent_split.start(config, programs, fresh, x)
    return config, programs, fresh, state, record, x


def test_every_component_starts_from_the_shared_network(started):
    config, programs, fresh, state, record, x = started
    k = config.num_components
    chex.assert_tree_shape_prefix(state.gen.params, (k,))
    for j in range(1, k):
        chex.assert_trees_all_equal(jax.tree.map(lambda leaf: leaf[j], state.gen.params),
                                    jax.tree.map(lambda leaf: leaf[0], state.gen.params))
    # Trained: not the fresh weights of any component.
    assert not np.allclose(np.asarray(jax.tree.leaves(state.gen.params)[0][0]),
                           np.asarray(jax.tree.leaves(fresh.gen.params)[0][0]))
    # A fresh optimizer state: Adam's step counts are zero.
    counts = [leaf for leaf in jax.tree.leaves(state.gen.opt_state) if leaf.dtype == jnp.int32]
    assert counts and all(int(np.max(c)) == 0 for c in counts)
    assert record["steps"] == int(np.ceil(config.init_epochs * x.shape[0] / config.batch_size))
    assert np.isfinite(record["loss"]) and record["seconds"] > 0


def test_the_split_is_k_means_on_the_shared_latent_means(started):
    """The owners are k-means of the encoder means, each computed here one point batch
    at a time without the sharded scorer; the training sets are the owners' points."""
    config, programs, _, state, record, x = started
    params, model_state = jax.tree.map(lambda leaf: leaf[0],
                                       (state.gen.params, state.gen.model_state))
    z = jnp.concatenate([programs.gen_model.latent_mean(params, model_state, x[i:i + 700])
                         for i in range(0, x.shape[0], 700)])
    chex.assert_shape(z, (x.shape[0], config.model.latent))
    _, split_key = jax.random.split(
        jax.random.fold_in(jax.random.PRNGKey(config.seed), programs_lib.LATENT_STREAM))
    expected = seeding.kmeans_owner(split_key, z, config.num_components)
    np.testing.assert_array_equal(np.asarray(state.owner), np.asarray(expected))
    counts = np.bincount(np.asarray(state.owner), minlength=config.num_components)
    assert record["counts"] == counts.tolist()
    np.testing.assert_array_equal(np.asarray(state.sets.count), counts)
    np.testing.assert_allclose(np.asarray(state.alpha), counts / x.shape[0], rtol=1e-6)


def test_a_rerun_keeps_the_start_and_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    """The start is checkpoint 0: a run stopped before round 0 ends does not train the
    shared network again, and ends where the uninterrupted run does."""
    config = _config(num_rounds=1)
    full, stopped = str(tmp_path / "full"), str(tmp_path / "stopped")
    train.train_and_evaluate(config, full)
    with open(os.path.join(full, "metrics.jsonl")) as f:
        first = json.loads(f.readline())
    assert first["latent_split"]["steps"] > 0
    assert 0.0 <= first["latent_split"]["clustering"]["nmi"] <= 1.0

    run_round, start = train.run_round, latent_split.start
    starts = []

    def stop(*args):
        raise KeyboardInterrupt

    def counted(*args):
        starts.append(1)
        return start(*args)

    monkeypatch.setattr(latent_split, "start", counted)
    monkeypatch.setattr(train, "run_round", stop)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, stopped)
    assert starts == [1] and os.listdir(os.path.join(stopped, "checkpoints")) == ["0"]
    monkeypatch.setattr(train, "run_round", run_round)
    train.train_and_evaluate(config, stopped)
    assert starts == [1]
    with np.load(os.path.join(full, "assignments.npz")) as a, \
            np.load(os.path.join(stopped, "assignments.npz")) as b:
        np.testing.assert_array_equal(a["assignment"], b["assignment"])


def test_latent_needs_an_encoder():
    config = _config()
    config.model.family = "gan"
    with pytest.raises(config_lib.ConfigError, match="'latent' only with model.family"):
        config_lib.validate(config)


def test_the_digits_latent_argument_moves_a_third_of_pre_training():
    quick, latent = load_config("mnist", "offline"), load_config("mnist", "offline,latent")
    assert (latent.init_split, latent.init_epochs, latent.pretrain_epochs) == ("latent", 10, 20)
    assert latent.init_epochs + latent.pretrain_epochs == quick.pretrain_epochs
    elbo = load_config("mnist", "offline,elbo,latent")
    assert (elbo.ratio.kind, elbo.init_split) == ("elbo", "latent")
    for other in ("vae8", "strategy=bagging"):  # Their budget would shrink for nothing.
        with pytest.raises(config_lib.ConfigError, match="'latent' starts competing"):
            load_config("mnist", f"offline,latent,{other}")


@pytest.fixture(scope="module")
def latent_disc():
    """(config, programs, points, the started state): digits whose discriminators read
    the shared VAE's latent means (`disc.features='latent'`)."""
    config = load_config("mnist", "offline,latent_disc,small")
    config.data.num_points, config.init_epochs = 160, 1
    dataset = data_lib.load(config)
    x = jnp.asarray(dataset.x)
    programs = train.make_programs(config, dataset.data_shape)
    state, _ = latent_split.start(config, programs, train.init_state(config, programs, x), x)
    return config, programs, x, state


def _features(disc):
    return disc.params["features"], disc.model_state["batch_stats"]["features"]


def test_latent_discriminators_read_the_shared_encoder_and_keep_it(latent_disc):
    """Every discriminator holds the shared network's encoder, which a fit leaves exactly
    as it is while it trains the MLP; a re-initialisation keeps it too."""
    config, programs, x, state = latent_disc
    encoder = (state.gen.params["encoder"], state.gen.model_state["batch_stats"]["encoder"])
    chex.assert_trees_all_equal(_features(state.disc), encoder)
    key = jax.random.PRNGKey(3)
    active = np.ones(config.num_components, bool)
    # The fit donates the networks it is given: fit a copy.
    fitted, record = programs.ratio.fit(jax.tree.map(jnp.copy, state.disc), state.gen, x,
                                        key, key, active)
    assert all(np.isfinite(record["disc_loss"]))
    chex.assert_trees_all_equal(_features(fitted), encoder)
    head = {name: p for name, p in fitted.params.items() if name != "features"}
    before = {name: p for name, p in state.disc.params.items() if name != "features"}
    assert not np.allclose(np.asarray(jax.tree.leaves(head)[0]),
                           np.asarray(jax.tree.leaves(before)[0]))
    fresh = programs.ratio.init(jax.random.PRNGKey(4), x[:8])
    chex.assert_trees_all_equal(_features(base.keep_features(fresh, fitted)), encoder)


def test_latent_discriminators_train_on_grey_digits(latent_disc, monkeypatch):
    """Without binarisation the data reach the step as uint8; the latent noise is
    float all the same."""
    config, programs, x, state = latent_disc
    grey = copy.deepcopy(config)
    grey.disc.binarize = False
    reached = []
    loss_of = disc_lib.discriminator_loss

    def recording_loss(disc_model):
        loss = loss_of(disc_model)

        def recorded(params, model_state, batch):
            reached.append(tuple(part.dtype for part in batch))  # At trace time.
            return loss(params, model_state, batch)
        return recorded

    monkeypatch.setattr(disc_lib, "discriminator_loss", recording_loss)
    estimator = ratio_lib.make(grey, programs.gen_model, x.shape[1:], programs.mesh)
    key = jax.random.PRNGKey(6)
    fitted, record = estimator.fit(jax.tree.map(jnp.copy, state.disc), state.gen, x, key, key,
                                   np.ones(config.num_components, bool))
    # Real digits, samples, and the noise on both latent means.
    assert reached and set(reached) == {(np.dtype(np.uint8),) + (np.dtype(np.float32),) * 3}
    assert all(np.isfinite(record["disc_loss"]))


def _by_hand(state, programs, j, x, noise=0.0):
    """Discriminator j's logits at images `x`, computed here: its MLP (leaky ReLU 0.2)
    of the encoder means, plus `noise`; the encoder is component j's, which the
    discriminators hold before any component trains."""
    gen = jax.tree.map(lambda leaf: leaf[j], (state.gen.params, state.gen.model_state))
    h = programs.gen_model.latent_mean(*gen, x) + noise
    dense = jax.tree.map(lambda leaf: leaf[j], state.disc.params)
    layers = sorted((name for name in dense if name.startswith("Dense_")),
                    key=lambda name: int(name.split("_")[1]))
    for name in layers[:-1]:
        h = jax.nn.leaky_relu(h @ dense[name]["kernel"] + dense[name]["bias"], 0.2)
    return h @ dense[layers[-1]]["kernel"][:, 0] + dense[layers[-1]]["bias"][0]


def test_latent_discriminators_score_an_mlp_of_the_latent_means(latent_disc):
    """The log ratio of a digit is minus the MLP of the encoder's mean of the digit
    (binarised at 0.5, as the pixel discriminators score it)."""
    config, programs, x, state = latent_disc
    scores = programs.ratio.log_ratios(state.disc, state.gen, x, jax.random.PRNGKey(0))
    chex.assert_shape(scores, (x.shape[0], config.num_components))
    binary = conv.binarize_images(None, x)
    for j in range(config.num_components):
        np.testing.assert_allclose(np.asarray(scores[:, j]),
                                   -np.asarray(_by_hand(state, programs, j, binary)),
                                   rtol=1e-4, atol=1e-4)


def test_latent_discriminators_take_the_input_noise_on_the_latent_means(latent_disc):
    """With `disc.input_noise` the training loss sees the latent means plus the noise."""
    config, programs, x, state = latent_disc
    assert config.disc.input_noise == 0.5
    real, fake = x[:8], x[8:16]
    noise = 0.5 * jax.random.normal(jax.random.PRNGKey(5), (2, 8, config.model.latent))
    params, model_state = jax.tree.map(lambda leaf: leaf[1],
                                       (state.disc.params, state.disc.model_state))
    loss, _ = disc_lib.discriminator_loss(programs.ratio.model)(
        params, model_state, (real, fake, noise[0], noise[1]))
    expected = (jnp.mean(jax.nn.softplus(-_by_hand(state, programs, 1, real, noise[0])))
                + jnp.mean(jax.nn.softplus(_by_hand(state, programs, 1, fake, noise[1]))))
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    plain, _ = disc_lib.discriminator_loss(programs.ratio.model)(params, model_state,
                                                               (real, fake))
    assert abs(float(plain) - float(loss)) > 1e-4


def test_the_digits_latent_disc_argument():
    c = load_config("mnist", "offline,latent_disc")
    assert (c.disc.features, c.init_split, c.disc.input_blur) == ("latent", "latent", 0.0)
    assert (c.init_epochs, c.pretrain_epochs, c.ratio.kind) == (10, 20, "discriminator")
    assert c.disc.input_noise == 0.5
    config_lib.validate(c)
    for field, value, words in (("init_split", "kmeans", "init_split='latent'"),
                                ("disc.input_blur", 3.0, "disc.input_blur=0")):
        bad = load_config("mnist", "offline,latent_disc")
        with bad.unlocked():
            bad.update_from_flattened_dict({field: value})
        with pytest.raises(config_lib.ConfigError, match=words):
            config_lib.validate(bad)
