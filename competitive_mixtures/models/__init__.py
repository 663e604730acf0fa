"""Model registry: config -> one component's `LinenModel`."""

from __future__ import annotations

import ml_collections
import optax

from competitive_mixtures import sharding
from competitive_mixtures.models import conv, discriminator, gan, kmeans, vae
from competitive_mixtures.models.base import LinenModel


def _gan(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> gan.GANModel:
    m, g = config.model, config.gan
    if len(data_shape) == 3:
        generator_net = gan.ConvGenerator(filters=g.filters, image_shape=tuple(data_shape),
                                          kernel=m.kernel, batch_norm=m.batch_norm,
                                          axis_name=sharding.AXIS)
        critic = gan.ConvCritic(filters=g.filters, kernel=m.kernel,
                                spectral_norm=g.spectral_norm)
    else:
        generator_net = gan.MLPGenerator(hidden=tuple(m.hidden), data_dim=data_shape[0])
        critic = gan.MLPCritic(hidden=tuple(g.critic_hidden), spectral_norm=g.spectral_norm)
    return gan.GANModel(generator=generator_net, critic=critic, latent=m.latent, loss=g.loss,
                        critic_steps=g.critic_steps, gp_weight=g.gp_weight)


def generator(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]):
    """The generative model of one component for data of `data_shape`."""
    m = config.model
    if m.family == "gan":
        return _gan(config, data_shape)
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


def generator_optimizer(config: ml_collections.ConfigDict):
    """The optimizer of one component (for a GAN, its generator's and its critic's)."""
    m = config.model
    adam = optax.adam(m.learning_rate, b1=m.b1, b2=m.b2)
    if m.family != "gan":
        return adam
    g = config.gan
    return gan.GANOptimizers(generator=adam, critic=optax.adam(
        g.critic_learning_rate, b1=g.critic_b1, b2=g.critic_b2))
