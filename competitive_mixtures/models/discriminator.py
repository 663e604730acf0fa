"""The discriminators D_j(x) = sigmoid(logit): data (label 1) against samples of g_j
(label 0), one network per component; with `outputs` > 1 the same networks are
classifiers over that many classes (ratio/multiclass.py).

  MLPDiscriminator     vectors `[B, D]`;
  ConvDiscriminator    images `[B, H, W, C]`, uint8 data or float samples in [0, 1];
  LatentDiscriminator  images read through a fixed conv encoder (`disc.features='latent'`).

`make(config, data_shape)` builds the one a config asks for.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import ml_collections

from competitive_mixtures.models.base import LinenModel, MLP
from competitive_mixtures.models.conv import ConvEncoder, gaussian_blur, to_unit_interval


class MLPDiscriminator(nn.Module):
    """MLP to one logit per point: `[B, D]` -> `[B]`; with `outputs` > 1, `[B, outputs]`
    (the logits of a classifier over that many classes)."""

    hidden: tuple[int, ...]
    outputs: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        logits = MLP((*self.hidden, self.outputs))(x)
        return logits[:, 0] if self.outputs == 1 else logits


class LatentDiscriminator(nn.Module):
    """Images `[B, H, W, C]` -> one logit per image `[B]`, read off a fixed encoder.

    The image passes through a conv VAE's encoder (submodule `features`, the
    same shape as `ConvEncoder`, evaluation-mode batch norm) and its latent
    mean through an MLP with leaky ReLU. The encoder's output is cut from the
    gradient, so training moves the MLP alone: the encoder's parameters are
    those put there from a trained VAE (`ratio.discriminator.install_features`)
    and stay so. The discriminator then tells the data from a component's
    samples by where the encoder places them, so its ratio is that of the two
    densities of the latent means (`config.disc.features`). `noise` `[B, latent]`,
    when given, is added to the latent means (`config.disc.input_noise`: the
    ratio of the two densities smoothed at that scale).
    """

    encoder_channels: Sequence[int] = (8, 16, 32, 64)
    kernel: int = 4
    latent: int = 8
    batch_norm: bool = True
    hidden: Sequence[int] = (64, 64)
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True,
                 noise: jax.Array | None = None) -> jax.Array:
        del train  # The encoder is fixed: always evaluation mode.
        z, _ = ConvEncoder(tuple(self.encoder_channels), self.kernel, self.latent,
                           self.batch_norm, name="features")(to_unit_interval(x), False)
        z = jax.lax.stop_gradient(z)
        if noise is not None:
            z = z + noise
        for width in self.hidden:
            z = nn.leaky_relu(nn.Dense(width)(z), self.negative_slope)
        return nn.Dense(1)(z)[:, 0]


class ConvDiscriminator(nn.Module):
    """Images `[B, H, W, C]` -> one logit per image `[B]`.

    Stride-2 convs ('SAME', so each halves the size, rounding up) with leaky
    ReLU, then a linear layer. No normalisation layers: the logits of one
    image must not depend on the rest of the batch, since they are density
    ratios in the assignment pass. Accepts uint8 (0..255, data) or float in
    [0, 1] (generator samples); both are mapped to [-1, 1] first, because
    zero-centred inputs suit the first layer.
    """

    channels: Sequence[int] = (64, 128, 256)
    kernel: int = 4
    negative_slope: float = 0.2
    # With outputs > 1: `[B, outputs]` logits of a classifier over that many classes.
    outputs: int = 1
    # Standard deviation (pixels) of a fixed Gaussian blur applied to every
    # input first; 0 = none. See `config.disc.input_blur`.
    input_blur: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        x = to_unit_interval(x)
        if self.input_blur > 0:
            x = gaussian_blur(x, self.input_blur)
        x = 2.0 * x - 1.0
        for width in self.channels:
            x = nn.Conv(width, (self.kernel, self.kernel), strides=(2, 2), padding="SAME")(x)
            x = nn.leaky_relu(x, self.negative_slope)
        logits = nn.Dense(self.outputs)(x.reshape(x.shape[0], -1))
        return logits[:, 0] if self.outputs == 1 else logits


def make(config: ml_collections.ConfigDict, data_shape: tuple[int, ...],
         outputs: int = 1) -> LinenModel:
    """The discriminator of one component (`outputs` 1), or a classifier of `outputs`
    classes: conv for images (or an MLP on a fixed encoder's latent means,
    `disc.features='latent'`, which the config checks allow for binary
    discriminators only), MLP otherwise."""
    if len(data_shape) == 3 and config.disc.features == "latent":
        if outputs != 1:
            raise ValueError("disc.features='latent' builds binary discriminators only")
        m = config.model
        return LinenModel(LatentDiscriminator(
            encoder_channels=tuple(m.channels), kernel=m.kernel, latent=m.latent,
            batch_norm=m.batch_norm, hidden=tuple(config.disc.hidden)))
    if len(data_shape) == 3:
        return LinenModel(ConvDiscriminator(channels=tuple(config.disc.channels),
                                            kernel=config.disc.kernel, outputs=outputs,
                                            input_blur=config.disc.input_blur))
    return LinenModel(MLPDiscriminator(hidden=tuple(config.disc.hidden), outputs=outputs))
