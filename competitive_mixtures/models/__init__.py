"""Model registry: config -> one component's `LinenModel`."""

from __future__ import annotations

import ml_collections

from competitive_mixtures.models import discriminator, kmeans, vae
from competitive_mixtures.models.base import LinenModel


def generator(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> LinenModel:
    """The generative model of one component for data of `data_shape`."""
    family = config.model.family
    if len(data_shape) != 1:
        raise ValueError(f"model.family={family!r} takes vector data, got shape {data_shape}")
    if family == "vae":
        return LinenModel(vae.MLPVAE(hidden=tuple(config.model.hidden),
                                     latent=config.model.latent, data_dim=data_shape[0],
                                     sample_noise=config.model.sample_noise))
    if family == "kmeans":
        return LinenModel(kmeans.Centroid(data_dim=data_shape[0]))
    raise ValueError(f"unknown model.family {family!r}")


def discriminator_model(config: ml_collections.ConfigDict,
                        data_shape: tuple[int, ...]) -> LinenModel:
    """The assignment discriminator of one component."""
    del data_shape
    return LinenModel(discriminator.MLPDiscriminator(hidden=tuple(config.disc.hidden)))
