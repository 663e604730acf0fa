"""Model registry: config -> one component's `LinenModel`."""

from __future__ import annotations

import ml_collections

from competitive_mixtures import sharding
from competitive_mixtures.models import conv, discriminator, kmeans, vae
from competitive_mixtures.models.base import LinenModel


def generator(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> LinenModel:
    """The generative model of one component for data of `data_shape`."""
    m = config.model
    if m.family == "conv_vae":
        if len(data_shape) != 3:
            raise ValueError(f"model.family='conv_vae' takes images [H, W, C], got {data_shape}")
        return LinenModel(conv.ConvVAE(
            encoder_channels=tuple(m.channels), decoder_channels=tuple(m.decoder_channels),
            kernel=m.kernel, latent=m.latent, image_shape=tuple(data_shape),
            likelihood=m.likelihood, batch_norm=m.batch_norm, sample_noise=m.sample_noise,
            axis_name=sharding.AXIS))
    if len(data_shape) != 1:
        raise ValueError(f"model.family={m.family!r} takes vector data, got shape {data_shape}")
    if m.family == "vae":
        return LinenModel(vae.MLPVAE(hidden=tuple(m.hidden), latent=m.latent,
                                     data_dim=data_shape[0], sample_noise=m.sample_noise))
    if m.family == "kmeans":
        return LinenModel(kmeans.Centroid(data_dim=data_shape[0]))
    raise ValueError(f"unknown model.family {m.family!r}")


def discriminator_model(config: ml_collections.ConfigDict,
                        data_shape: tuple[int, ...]) -> LinenModel:
    """The assignment discriminator of one component: conv for images, MLP otherwise."""
    if len(data_shape) == 3:
        return LinenModel(conv.ConvDiscriminator(channels=tuple(config.disc.channels),
                                                 kernel=config.disc.kernel))
    return LinenModel(discriminator.MLPDiscriminator(hidden=tuple(config.disc.hidden)))
