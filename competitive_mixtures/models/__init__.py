"""Model registry: config -> one component's `LinenModel`."""

from __future__ import annotations

import functools

import ml_collections
import optax

from competitive_mixtures import sharding
from competitive_mixtures.models import avb, conv, gan, gram, kmeans, vae
from competitive_mixtures.models.base import LinenModel, PartOptimizers


def _gan(config: ml_collections.ConfigDict, data_shape: tuple[int, ...],
         axis_name: str | None) -> gan.GANModel:
    m, g = config.model, config.gan
    if len(data_shape) == 3:
        generator_net = gan.ConvGenerator(filters=g.filters, image_shape=tuple(data_shape),
                                          kernel=m.kernel, batch_norm=m.batch_norm,
                                          axis_name=axis_name)
        critic = gan.ConvCritic(filters=g.filters, kernel=m.kernel,
                                spectral_norm=g.spectral_norm)
    else:
        generator_net = gan.MLPGenerator(hidden=tuple(m.hidden), data_dim=data_shape[0])
        critic = gan.MLPCritic(hidden=tuple(g.critic_hidden), spectral_norm=g.spectral_norm)
    return gan.GANModel(generator=generator_net, critic=critic, latent=m.latent, loss=g.loss,
                        critic_steps=g.critic_steps, gp_weight=g.gp_weight, clip=g.clip,
                        generator_ema=g.generator_ema)


def _avb(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> avb.AVBModel:
    m = config.model
    return avb.AVBModel(
        autoencoder=avb.ImplicitAutoencoder(hidden=tuple(m.hidden), latent=m.latent,
                                            data_shape=tuple(data_shape)),
        adversary=avb.Adversary(hidden=tuple(config.avb.adversary_hidden)),
        sample_noise=m.sample_noise)


def _gram(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> gram.GRaMModel:
    m, g = config.model, config.gram
    if len(data_shape) == 3:
        generator_net = gan.ConvGenerator(filters=config.gan.filters,
                                          image_shape=tuple(data_shape), kernel=m.kernel,
                                          batch_norm=False)
    else:
        generator_net = gan.MLPGenerator(hidden=tuple(m.hidden), data_dim=data_shape[0])
    projection = gram.Projection(projection_dim=g.projection_dim,
                                 hidden=tuple(g.projection_hidden),
                                 channels=tuple(g.projection_channels))
    return gram.GRaMModel(generator=generator_net, projection=projection, latent=m.latent,
                          eps=g.eps)


def generator(config: ml_collections.ConfigDict, data_shape: tuple[int, ...],
              stack_mode: str | None = None, axis_name: str | None = sharding.AXIS):
    """The generative model of one component for data of `data_shape`.

    `stack_mode` is how the K components' steps run (resolved: 'vmap' or
    'sequential'); `make_programs` resolves `config.stack_mode` once and passes
    it, None resolves it here. Families without a sequential form always vmap.
    `axis_name` is the mesh axis over which batch norm averages in training
    (`sharding.step_axis`; None: over the local batch).
    """
    if stack_mode is None:
        stack_mode = sharding.resolve_stack_mode(config.stack_mode, len(data_shape) == 3)
    m = config.model
    builders = {"gan": functools.partial(_gan, axis_name=axis_name), "avb": _avb,
                "gram": _gram}
    if m.family in builders:
        return builders[m.family](config, data_shape)
    if m.family == "conv_vae":
        if len(data_shape) != 3:
            raise ValueError(f"model.family='conv_vae' takes images [H, W, C], got {data_shape}")
        return LinenModel(conv.ConvVAE(
            encoder_channels=tuple(m.channels), decoder_channels=tuple(m.decoder_channels),
            kernel=m.kernel, latent=m.latent, image_shape=tuple(data_shape),
            likelihood=m.likelihood, batch_norm=m.batch_norm, sample_noise=m.sample_noise,
            axis_name=axis_name),
            stack_mode=stack_mode)
    if len(data_shape) != 1:
        raise ValueError(f"model.family={m.family!r} takes vector data, got shape {data_shape}")
    if m.family == "vae":
        return LinenModel(vae.MLPVAE(hidden=tuple(m.hidden), latent=m.latent,
                                     data_dim=data_shape[0], sample_noise=m.sample_noise,
                                     max_log_var=m.max_log_var),
                          stack_mode=stack_mode)
    if m.family == "kmeans":
        return LinenModel(kmeans.Centroid(data_dim=data_shape[0]))
    raise ValueError(f"unknown model.family {m.family!r}")


def generator_optimizer(config: ml_collections.ConfigDict):
    """The optimizer of one component; for models of several networks trained in
    alternating steps, one per network (`PartOptimizers`)."""
    m = config.model
    main = optax.adam(m.learning_rate, b1=m.b1, b2=m.b2)
    if m.family == "avb":
        return PartOptimizers.of(autoencoder=main, adversary=optax.adam(
            config.avb.adversary_learning_rate, b1=m.b1, b2=m.b2))
    if m.family == "gram":
        return PartOptimizers.of(generator=main, projection=optax.adam(
            config.gram.projection_learning_rate, b1=m.b1, b2=m.b2))
    if m.family != "gan":
        return main
    g = config.gan
    if g.optimizer == "rmsprop":
        return PartOptimizers.of(generator=optax.rmsprop(m.learning_rate),
                                 critic=optax.rmsprop(g.critic_learning_rate))
    return PartOptimizers.of(generator=main, critic=optax.adam(
        g.critic_learning_rate, b1=g.critic_b1, b2=g.critic_b2))
