"""The Flax FID InceptionV3 against pytorch-fid's network, and its FID-specific details.

Reference: `tests/data/inception_reference.npz` holds the pool3 features that
pytorch-fid's own `InceptionV3` (its FID blocks, input resizing and scaling)
gave for two images, with the deterministic random weights of
`inception_reference.random_state_dict` loaded into it
(`tests/make_inception_reference.py` regenerates it; it needs torch,
torchvision and pytorch-fid, which the tests do not). The same weights go
through our converter and `.npz` file into the Flax network here.
"""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from flax import traverse_util
import flax.linen as nn

import inception_reference
from competitive_mixtures.metrics import features as features_lib
from competitive_mixtures.metrics import inception

# Largest feature difference allowed, against features of magnitude ~1 to 10:
# float32 convolutions summed in another order through 94 layers.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    with np.load(inception_reference.FIXTURE) as f:
        images, expected = f["images"], f["features"]
        layout = inception_reference.layout_from_json(str(f["layout"]))
    state = inception_reference.random_state_dict(layout)
    flat = inception.convert_state_dict(state)
    path = str(tmp_path_factory.mktemp("inception") / "random_inception.npz")
    inception.save_variables(path, flat, source="random test weights")
    return images, expected, path, state


def test_features_match_pytorch_fid(reference):
    images, expected, path, _ = reference
    extractor = features_lib.inception_extractor(path, batch_size=2)
    got = extractor(images)
    assert got.shape == (2, inception.FEATURE_DIM)
    # The reference is not degenerate: features of size ~1, and the two
    # images differ by far more than the tolerance.
    assert 0.5 < np.abs(expected).mean() < 5
    assert np.abs(expected[0] - expected[1]).max() > 100 * TOLERANCE
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("variant", ["avg pool in Mixed_7c", "padding counted in avg pools"])
def test_standard_inception_blocks_would_fail(reference, monkeypatch, variant):
    """The reference distinguishes the FID blocks from the usual InceptionV3 ones."""
    images, expected, path, _ = reference
    variables = inception.load_variables(path)
    if variant == "avg pool in Mixed_7c":
        monkeypatch.setattr(inception, "_max_pool_same", inception._avg_pool_same)
    else:
        monkeypatch.setattr(inception, "_avg_pool_same", lambda x: nn.avg_pool(
            x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=True))
    # A fresh function, so that no earlier trace of the network is reused.
    got = np.asarray(jax.jit(lambda v, x: inception.features(v, x))(variables, images))
    assert np.abs(got - expected).max() > 100 * TOLERANCE


def test_fid_pools_by_hand():
    x = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # 1..9
    # Average over the pixels inside the image: the corner (0, 0) averages
    # 1, 2, 4, 5 (not /9); the centre all nine.
    avg = np.asarray(inception._avg_pool_same(x))[0, :, :, 0]
    assert avg[0, 0] == pytest.approx(3.0)
    assert avg[1, 1] == pytest.approx(5.0)
    assert avg[0, 1] == pytest.approx((1 + 2 + 3 + 4 + 5 + 6) / 6)
    # Max pool with padding never sees padded values, even for negative inputs.
    mx = np.asarray(inception._max_pool_same(-x))[0, :, :, 0]
    np.testing.assert_array_equal(mx, [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]])


def test_preprocess_resizes_like_torch_bilinear_and_scales():
    # torch.nn.functional.interpolate(bilinear, align_corners=False) takes
    # [a, b] to [a, 3a/4 + b/4, a/4 + 3b/4, b] (edge samples clamp).
    row = jnp.array([0.0, 1.0]).reshape(1, 1, 2, 1)
    image = jnp.tile(row, (1, 2, 1, 1))
    out = np.asarray(inception.preprocess(image, size=4))
    assert out.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(out[0, 0, :, 0], 2 * np.array([0, 0.25, 0.75, 1.0]) - 1)
    # Grey images are the same image in all three channels.
    grey = jax.random.uniform(jax.random.PRNGKey(0), (2, 28, 28, 1))
    np.testing.assert_array_equal(inception.preprocess(grey),
                                  inception.preprocess(jnp.repeat(grey, 3, axis=-1)))
    with pytest.raises(ValueError, match="1 or 3"):
        inception.preprocess(jnp.zeros((1, 8, 8, 2)))


def test_converter_and_loader_refuse_wrong_weights(reference, tmp_path):
    _, _, path, state = reference
    with pytest.raises(inception.WeightsError, match="missing"):
        inception.convert_state_dict(dict(list(state.items())[:40]))
    full = dict(state, **{"Mixed_5b.branch1x1.conv.weight": np.zeros((64, 192, 3, 3), np.float32)})
    with pytest.raises(inception.WeightsError, match="Mixed_5b.branch1x1.conv.weight"):
        inception.convert_state_dict(full)
    with pytest.raises(FileNotFoundError, match="convert_inception"):
        inception.load_variables(str(tmp_path / "absent.npz"))
    (tmp_path / "not.npz").write_bytes(b"not a zip file")
    with pytest.raises(inception.WeightsError, match="convert_inception"):
        inception.load_variables(str(tmp_path / "not.npz"))
    flat = traverse_util.flatten_dict(inception.load_variables(path), sep="/")
    flat.pop("params/Mixed_7c/branch_pool/conv/kernel")
    inception.save_variables(str(tmp_path / "short.npz"),
                             {k: np.asarray(v) for k, v in flat.items()})
    with pytest.raises(inception.WeightsError, match="Mixed_7c"):
        inception.load_variables(str(tmp_path / "short.npz"))
