"""Tests for competitive_mixtures.data.synthetic."""

import dataclasses
import itertools

import chex
import numpy as np
import pytest

from competitive_mixtures.data import synthetic


def _unskew(x):
    x = np.array(x, np.float64)
    x[:, 1] -= 0.04 * np.square(x[:, 0]) - 4.0
    return x


@pytest.mark.parametrize('name,kwargs', [
    ('gaussians', dict(modes=3)),
    ('gaussians', dict(modes=5)),
    ('gaussians', dict(modes=9)),
    ('ring', {}),
    ('grid', {}),
])
def test_shapes_dtypes_and_determinism(name, kwargs):
    d = synthetic.load(name, num_points=3000, num_heldout=500, seed=3,
                       **kwargs)
    chex.assert_shape(d.x, (3000, 2))
    chex.assert_shape(d.label, (3000,))
    chex.assert_shape(d.heldout_x, (500, 2))
    chex.assert_shape(d.heldout_label, (500,))
    assert d.x.dtype == np.float32 and d.heldout_x.dtype == np.float32
    assert d.label.dtype == np.int32 and d.heldout_label.dtype == np.int32
    assert d.num_points == 3000
    assert d.data_shape == (2,)
    assert d.num_classes == len(d.centres)
    assert d.mode_std > 0

    again = synthetic.load(name, num_points=3000, num_heldout=500, seed=3,
                           **kwargs)
    np.testing.assert_array_equal(d.x, again.x)
    np.testing.assert_array_equal(d.label, again.label)
    np.testing.assert_array_equal(d.heldout_x, again.heldout_x)

    other = synthetic.load(name, num_points=3000, num_heldout=500, seed=4,
                           **kwargs)
    assert not np.array_equal(d.x, other.x)
    # Held-out points use their own stream, not a prefix of the training one.
    assert not np.array_equal(d.x[:500], d.heldout_x)


def test_nine_mode_label_counts_follow_geometric_weights():
    d = synthetic.gaussian_mixture(9, num_points=20000, num_heldout=5000)
    weights = 0.7 ** np.arange(9)
    weights /= weights.sum()
    freq = np.bincount(d.label, minlength=9) / d.num_points
    np.testing.assert_allclose(freq, weights, atol=0.01)
    held_freq = np.bincount(d.heldout_label, minlength=9) / 5000
    np.testing.assert_allclose(held_freq, weights, atol=0.015)
    assert freq[0] > 10 * freq[8]


def test_three_modes_have_equal_weights():
    d = synthetic.gaussian_mixture(3, num_points=9000, num_heldout=10)
    freq = np.bincount(d.label, minlength=3) / d.num_points
    np.testing.assert_allclose(freq, np.full(3, 1 / 3), atol=0.02)


@pytest.mark.parametrize('modes', [3, 5, 9])
def test_skew_is_applied(modes):
    d = synthetic.gaussian_mixture(modes, num_points=20000, num_heldout=10)
    pre_centres = _unskew(d.centres)
    # Centres are the images of the pre-skew centres.
    np.testing.assert_allclose(
        synthetic.skew(pre_centres), d.centres, atol=1e-5)
    unskewed = _unskew(d.x)
    for k in range(modes):
        np.testing.assert_allclose(
            unskewed[d.label == k].mean(axis=0), pre_centres[k], atol=0.15)
    # Before the skew x2 is independent of x1 within a mode, after it is not.
    left = d.label == 0
    raw_corr = np.corrcoef(d.x[left, 0], d.x[left, 1])[0, 1]
    unskewed_corr = np.corrcoef(unskewed[left, 0], unskewed[left, 1])[0, 1]
    assert abs(unskewed_corr) < 0.05
    assert raw_corr < -0.2


def test_three_mode_centres_are_skewed_values():
    d = synthetic.gaussian_mixture(3, num_points=10, num_heldout=10)
    np.testing.assert_allclose(
        d.centres, [[-6.0, -2.56], [6.0, -2.56], [0.0, 3.0]], atol=1e-5)


def test_five_mode_arc():
    d = synthetic.gaussian_mixture(5, num_points=20000, num_heldout=10)
    arc = d.x[d.label == 4].astype(np.float64)
    assert abs(arc[:, 0].std() - 4.0) < 0.15
    residual = arc[:, 1] - (3.0 + 0.04 * np.square(arc[:, 0]))
    assert abs(residual.std() - 0.5) < 0.03
    for k in range(4):
        cov = np.cov(_unskew(d.x[d.label == k]).T)
        np.testing.assert_allclose(cov, np.eye(2), atol=0.1)


@pytest.mark.parametrize('modes', [3, 5, 9])
def test_gaussian_modes_are_separated(modes):
    d = synthetic.gaussian_mixture(modes, num_points=10, num_heldout=10)
    dist = [np.linalg.norm(a - b)
            for a, b in itertools.combinations(d.centres, 2)]
    assert min(dist) >= 6 * d.mode_std
    assert np.all(np.abs(_unskew(d.centres)) <= 10)


def test_ring():
    d = synthetic.ring(num_points=4000, num_heldout=100, seed=1)
    chex.assert_shape(d.centres, (8, 2))
    np.testing.assert_allclose(np.linalg.norm(d.centres, axis=1), 2.0,
                               rtol=1e-6)
    np.testing.assert_allclose(d.centres[2], [0.0, 2.0], atol=1e-6)
    dist = np.linalg.norm(d.x - d.centres[d.label], axis=1)
    assert dist.max() < 6 * 0.02
    assert d.mode_std == 0.02
    counts = np.bincount(d.label, minlength=8)
    assert counts.min() > 400


def test_grid():
    d = synthetic.grid(num_points=5000, num_heldout=100, seed=1)
    chex.assert_shape(d.centres, (25, 2))
    np.testing.assert_allclose(np.unique(d.centres[:, 0]),
                               [-4, -2, 0, 2, 4])
    np.testing.assert_allclose(np.unique(d.centres[:, 1]),
                               [-4, -2, 0, 2, 4])
    dist = np.linalg.norm(d.x - d.centres[d.label], axis=1)
    assert dist.max() < 6 * 0.05
    assert d.num_classes == 25


def test_load():
    np.testing.assert_array_equal(
        synthetic.load('grid', num_points=50, num_heldout=5).x,
        synthetic.grid(num_points=50, num_heldout=5).x)
    with pytest.raises(ValueError, match='ring'):
        synthetic.load('moons')
    with pytest.raises(ValueError, match='modes'):
        synthetic.load('gaussians', modes=4)
    assert set(synthetic.NAMES) == {'gaussians', 'ring', 'grid'}


def test_num_classes_ignores_unknown_labels():
    d = synthetic.Dataset(
        x=np.zeros((4, 2), np.float32),
        label=np.array([-1, -1, 0, 2], np.int32),
        heldout_x=np.zeros((0, 2), np.float32),
        heldout_label=np.zeros((0,), np.int32),
        name='toy')
    assert d.num_classes == 2
    no_labels = dataclasses.replace(d, label=np.full(4, -1, np.int32))
    assert no_labels.num_classes == 0

