"""InceptionV3 as used for FID (the TTUR / pytorch-fid network), in Flax Linen.

The network is the 2015-12-05 TensorFlow Inception graph that FID was
defined with (Heusel et al. 2017), as ported to PyTorch by `pytorch-fid`.
Its features are the 2048 activations of the final average pool ("pool3").
It differs from the usual InceptionV3 in three places, all reproduced here:

  * the 3x3 average pools inside Mixed_5b-d, Mixed_6b-e and Mixed_7b divide
    by the number of pixels inside the image, not by 9 (TensorFlow's
    padding semantics: padded zeros are not counted);
  * the pool branch of the last block, Mixed_7c, uses a 3x3 *max* pool;
  * the classifier has 1008 classes (unused: features stop at pool3).

Every convolution is followed by batch norm (epsilon 1e-3, running
statistics only) and a ReLU. Inputs are images in [0, 1], resized to 299x299
with bilinear interpolation (half-pixel centres, no antialiasing, as
`torch.nn.functional.interpolate(..., align_corners=False)`), then scaled to
[-1, 1]; one-channel images are repeated over three channels.

Weights are never downloaded. `convert_state_dict` turns the pytorch-fid
state dict (`pt_inception-2015-12-05-6726825d.pth`) into this module's
variables; `python -m competitive_mixtures.metrics.convert_inception` does it
once and writes an `.npz` that `load_variables` reads.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util
import numpy as np

from competitive_mixtures import errors

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPSILON = 1e-3
# pytorch-fid's weights file; torch hub names files by their SHA-256 prefix.
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256_PREFIX = "6726825d"

Padding = tuple[int, int]


class WeightsError(errors.UserError, ValueError):
    """A weights file or state dict that does not fit this network."""


class ConvBN(nn.Module):
    """Convolution without bias, batch norm in inference mode, ReLU."""

    features: int
    kernel: tuple[int, int]
    strides: int = 1
    padding: Padding = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ph, pw = self.padding
        x = nn.Conv(self.features, self.kernel, strides=self.strides,
                    padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name="bn")(x)
        return nn.relu(x)


def _avg_pool_same(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average over the pixels inside the image (padding not counted)."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                       count_include_pad=False)


def _max_pool_same(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_reduce(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
    """Mixed_5b-d: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool-1x1 (35x35 grid)."""

    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = ConvBN(64, (1, 1), name="branch1x1")(x)
        b5 = ConvBN(48, (1, 1), name="branch5x5_1")(x)
        b5 = ConvBN(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = ConvBN(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_same(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = ConvBN(384, (3, 3), strides=2, name="branch3x3")(x)
        bd = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = ConvBN(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_reduce(x)], axis=-1)


class InceptionC(nn.Module):
    """Mixed_6b-e: factorised 7x7 convolutions (17x17 grid)."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c7 = self.channels_7x7
        b1 = ConvBN(192, (1, 1), name="branch1x1")(x)
        b7 = ConvBN(c7, (1, 1), name="branch7x7_1")(x)
        b7 = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = ConvBN(c7, (1, 1), name="branch7x7dbl_1")(x)
        bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = ConvBN(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = ConvBN(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = ConvBN(192, (1, 1), name="branch_pool")(_avg_pool_same(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = ConvBN(192, (1, 1), name="branch3x3_1")(x)
        b3 = ConvBN(320, (3, 3), strides=2, name="branch3x3_2")(b3)
        b7 = ConvBN(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = ConvBN(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_reduce(x)], axis=-1)


class InceptionE(nn.Module):
    """Mixed_7b-c: expanded filter banks (8x8 grid); `pool` is 'avg' or 'max'."""

    pool: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = ConvBN(320, (1, 1), name="branch1x1")(x)
        b3 = ConvBN(384, (1, 1), name="branch3x3_1")(x)
        b3 = jnp.concatenate([ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                              ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)],
                             axis=-1)
        bd = ConvBN(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = ConvBN(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([ConvBN(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                              ConvBN(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)],
                             axis=-1)
        pooled = _max_pool_same(x) if self.pool == "max" else _avg_pool_same(x)
        bp = ConvBN(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3FID(nn.Module):
    """The FID InceptionV3 up to pool3: `[B, 299, 299, 3]` in [-1, 1] -> `[B, 2048]`."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = ConvBN(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
        x = ConvBN(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = ConvBN(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = _max_pool_reduce(x)
        x = ConvBN(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = ConvBN(192, (3, 3), name="Conv2d_4a_3x3")(x)
        x = _max_pool_reduce(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE("avg", name="Mixed_7b")(x)
        x = InceptionE("max", name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


def preprocess(images: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
    """Images `[B, H, W, C]` in [0, 1], C in {1, 3} -> `[B, size, size, 3]` in [-1, 1]."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected images [B, H, W, 1 or 3], got shape {images.shape}")
    x = images.astype(jnp.float32)
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    x = jax.image.resize(x, (x.shape[0], size, size, 3), method="bilinear", antialias=False)
    return 2.0 * x - 1.0


def features(variables: Mapping[str, Any], images: jax.Array) -> jax.Array:
    """pool3 features `[B, 2048]` of images `[B, H, W, C]` in [0, 1]."""
    return InceptionV3FID().apply(variables, preprocess(images))


def abstract_variables() -> dict:
    """Shapes and dtypes of the module's variables (`params` and `batch_stats`)."""
    shape = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    return jax.eval_shape(lambda x: InceptionV3FID().init(jax.random.PRNGKey(0), x), shape)


# ---------------------------------------------------------------------------
# Weights: pytorch-fid state dict -> Flax variables -> .npz.

# torch leaf name -> (collection, flax leaf name, whether a conv kernel to transpose).
_LEAVES = {
    ("conv", "weight"): ("params", "kernel"),
    ("bn", "weight"): ("params", "scale"),
    ("bn", "bias"): ("params", "bias"),
    ("bn", "running_mean"): ("batch_stats", "mean"),
    ("bn", "running_var"): ("batch_stats", "var"),
}
# Entries of the state dict that pool3 features do not use.
_UNUSED_SUFFIXES = (".num_batches_tracked",)
_UNUSED_PREFIXES = ("fc.", "AuxLogits.")


def convert_state_dict(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """pytorch-fid's InceptionV3 state dict -> flat variables `{'params/.../kernel': array}`.

    Convolution kernels go from torch's `[out, in, kh, kw]` to Flax's
    `[kh, kw, in, out]`; batch-norm weight/bias become scale/bias and the
    running statistics go to the `batch_stats` collection. The classifier
    (`fc.*`) and batch counters are dropped.

    Raises:
      WeightsError: naming missing or unexpected entries, or a shape that does
        not match this network.
    """
    expected = traverse_util.flatten_dict(abstract_variables(), sep="/")
    out: dict[str, np.ndarray] = {}
    unexpected = []
    for key, value in state.items():
        if key.endswith(_UNUSED_SUFFIXES) or key.startswith(_UNUSED_PREFIXES):
            continue
        parts = key.split(".")
        leaf = _LEAVES.get(tuple(parts[-2:]))
        if leaf is None:
            unexpected.append(key)
            continue
        collection, name = leaf
        value = np.asarray(value, np.float32)
        if name == "kernel":
            value = np.transpose(value, (2, 3, 1, 0))
        flat = "/".join([collection, *parts[:-1], name])
        if flat not in expected:
            unexpected.append(key)
            continue
        if value.shape != expected[flat].shape:
            raise WeightsError(f"{key}: shape {value.shape} (after conversion) does not match "
                             f"this network's {expected[flat].shape} at {flat}")
        out[flat] = value
    missing = sorted(set(expected) - set(out))
    if unexpected or missing:
        raise WeightsError("not a pytorch-fid InceptionV3 state dict: "
                         f"{len(unexpected)} unexpected entries {unexpected[:5]}, "
                         f"{len(missing)} missing variables {missing[:5]}")
    return out


def save_variables(path: str, flat: Mapping[str, np.ndarray], source: str = "") -> None:
    """Writes flat variables (from `convert_state_dict`) to an `.npz` file (through a
    temporary name, so a stopped conversion never leaves half a file)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, __source__=np.asarray(source), **flat)
    os.replace(tmp, path)


def load_variables(path: str) -> dict:
    """Variables `{'params': ..., 'batch_stats': ...}` from an `.npz` of `save_variables`.

    Raises:
      FileNotFoundError: with the steps that create the file.
      WeightsError: the file does not hold this network's variables.
    """
    try:
        with open(path, "rb") as f, np.load(f) as npz:
            flat = {k: np.asarray(npz[k]) for k in npz.files if k != "__source__"}
    except FileNotFoundError:
        raise FileNotFoundError(f"Inception weights {path!r} not found. {HOW_TO_GET}") from None
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise WeightsError(f"{path} is not a converted weights .npz ({error}). "
                           f"{HOW_TO_GET}") from None
    expected = traverse_util.flatten_dict(abstract_variables(), sep="/")
    wrong = sorted(k for k in expected if k not in flat or flat[k].shape != expected[k].shape)
    if wrong or set(flat) - set(expected):
        raise WeightsError(f"{path} does not hold FID InceptionV3 variables (first mismatches: "
                           f"{wrong[:5]}). {HOW_TO_GET}")
    return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()}, sep="/")


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


HOW_TO_GET = (
    f"Get pytorch-fid's weights file {WEIGHTS_FILE} (a release asset of the pytorch-fid "
    "project on GitHub) on a machine with internet access, then convert it once: "
    f"python -m competitive_mixtures.metrics.convert_inception --input={WEIGHTS_FILE} "
    "--output=inception_fid.npz (needs torch to read the .pth file), and pass "
    "--inception_weights=inception_fid.npz to evaluate.")

