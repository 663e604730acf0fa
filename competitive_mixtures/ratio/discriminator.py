"""K binary discriminators, the paper's estimator (Sec. 3).

D_j = sigmoid(l_j) learns points of the whole dataset (label 1) against
samples of g_j (label 0); at its optimum D_j = p_X / (p_X + p_gj), so
log dP_gj/dP_X = -l_j (assign eq. 1). The K discriminators are one stacked
pytree trained in one compiled step (`steps.make_disc_step`) and scored
together (`steps.make_scorer`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from competitive_mixtures import models
from competitive_mixtures import stacking
from competitive_mixtures import steps
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.ratio import base
from competitive_mixtures.state import Stack


def optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """The optimizer of a discriminator or classifier (`config.disc`)."""
    if config.disc.optimizer == "sgd":
        return optax.sgd(config.disc.learning_rate)
    return optax.adam(config.disc.learning_rate, b1=config.disc.b1, b2=config.disc.b2)


def fit_steps(config: ml_collections.ConfigDict, num_points: int) -> int:
    """Steps of one fit: `disc.epochs` passes over the N data points."""
    return math.ceil(config.disc.epochs * num_points / config.disc.batch_size)


@dataclasses.dataclass(frozen=True)
class BinaryDiscriminators(base.Trained):
    """Attributes:
      model: one discriminator; `optimizer` its optimizer.
      step: the jitted chunked fit step of `steps.make_disc_step`.
      score: the jitted batch scorer of `steps.make_scorer`.
    """

    config: ml_collections.ConfigDict
    model: LinenModel
    optimizer: optax.GradientTransformation
    step: Callable
    score: Callable
    mesh: object
    # Steps per call of `step`, and calls per step (groups of components).
    chunk: int
    groups: int
    kind: str = "discriminator"

    def init(self, key: jax.Array, example: jax.Array) -> Stack:
        return stacking.init(self.model, self.optimizer,
                             jax.random.split(key, self.config.num_components), example)

    def fit_plan(self, x, active: np.ndarray):
        """Discriminators of inactive components take no step."""
        return np.where(active, fit_steps(self.config, x.shape[0]), 0), self.chunk, self.groups, ()

    def fit_record(self, loss: np.ndarray) -> dict:
        return {"disc_loss": base.losses(loss)}


def install_features(disc: Stack | tuple[Stack, ...], gen: Stack) -> Stack | tuple[Stack, ...]:
    """`disc` (K stacked `LatentDiscriminator`s, or an ensemble's tuple of them) with
    the encoder of the first VAE of `gen` as every discriminator's `features`.

    The encoder's parameters and batch statistics are copied; the optimizer
    state is left as it is (the features take no gradient, so their Adam
    moments stay zero).
    """
    if isinstance(disc, tuple):
        return tuple(install_features(d, gen) for d in disc)
    k = jax.tree.leaves(disc.params)[0].shape[0]

    def encoder(tree: dict) -> dict:
        return jax.tree.map(lambda leaf: jnp.repeat(leaf[:1], k, axis=0), tree["encoder"])

    return base.with_features(disc, encoder, gen.params, gen.model_state)


def make(config: ml_collections.ConfigDict, gen_model, data_shape: tuple[int, ...],
         mesh) -> BinaryDiscriminators:
    """K MLP (vector data) or conv (images) discriminators of `config.disc`."""
    model = models.discriminator_model(config, data_shape)
    opt = optimizer(config)
    mode = stacking.resolve_mode(config.stack_mode, convolutional=len(data_shape) == 3)
    k = config.num_components
    chunk, unroll, group = steps.calls(mode, k, config.steps_per_chunk, config.unroll_steps,
                                       config.stack_group)
    return BinaryDiscriminators(
        config=config, model=model, optimizer=opt, mesh=mesh, chunk=chunk,
        groups=k // group if group else 1,
        step=steps.make_disc_step(model, gen_model, opt, config.disc.batch_size, chunk, mesh,
                                  unroll, mode, group, config.disc.binarize,
                                  config.disc.input_noise),
        score=steps.make_scorer(model, False, mesh,
                                "map" if config.assign.sequential_components else mode,
                                config.disc.binarize))
