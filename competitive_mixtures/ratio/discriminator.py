"""K binary discriminators, the paper's estimator (Sec. 3).

D_j = sigmoid(l_j) learns points of the whole dataset (label 1) against
samples of g_j (label 0); at its optimum D_j = p_X / (p_X + p_gj), so
log dP_gj/dP_X = -l_j (assign eq. 1). The K discriminators are one stacked
pytree trained in one compiled step (`make_disc_step`, here with its loss)
and scored together (`steps.make_scorer`, shared with the exact estimator).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jax.sharding import Mesh

from competitive_mixtures.models import discriminator as disc_models
from competitive_mixtures import points as points_lib
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import steps
from competitive_mixtures.models.base import LinenModel, gradient_step
from competitive_mixtures.models.conv import binarize_images
from competitive_mixtures.steps import (GroupedStep, _constrain, _group_update, _members,
                                        _sharded, component_group, group_size, scan_chunk,
                                        take_batch)
from competitive_mixtures.ratio import base
from competitive_mixtures.state import Stack


def discriminator_loss(disc_model: LinenModel) -> Callable:
    """Binary cross-entropy of one discriminator on `batch = (real, fake)`: data -> 1,
    its generator's samples -> 0. With `batch = (real, fake, real_noise, fake_noise)`
    the noise goes to the discriminator with its images (`LatentDiscriminator`)."""
    def loss(params, model_state, batch):
        real, fake, *noise = batch

        def logits(x, which):
            extra = {"noise": noise[which]} if noise else {}
            return disc_model.apply(params, model_state, x, **extra)

        real_logits, fake_logits = logits(real, 0), logits(fake, 1)
        value = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
        return value, model_state
    return loss


def make_disc_step(disc_model: LinenModel, gen_model: LinenModel,
                   optimizer: optax.GradientTransformation, batch_size: int,
                   chunk: int, mesh: Mesh, unroll: bool = False,
                   stack_mode: str = "vmap", group: int = 0, binarize: bool = False,
                   input_noise: float = 0.0) -> Callable:
    """Discriminator fit: D_j sees points drawn uniformly from the WHOLE dataset as real.

    With `input_noise` = s > 0 (vector data) every real point and every sample
    gets fresh N(0, s^2 I) noise at each draw, so D_j learns the ratio of the
    two densities smoothed at scale s, scored at the clean points: a component
    whose samples sit inside a data mode but are narrower or wider than it,
    at scales below s, scores as if it matched the mode. A discriminator that
    reads latent means (`LatentDiscriminator`) gets the noise on them instead.

    With `binarize` the real images are binarised afresh at every draw, each pixel
    1 with probability its grey level (`binarize_images`): the data as a
    Bernoulli decoder's samples are distributed, compared like with like. The
    samples are binarised the same way, which draws x ~ p(x|z) from a decoder's
    mean image and leaves binary samples (`model.sample_noise`) as they are.

    `stack_mode` ('vmap' or 'sequential') is how the K discriminator updates and
    the K generators' samples run (`stacking.stack_step`, `stacking.sample`);
    `group` as in `make_m_step`.
    Returns a jitted
    `disc_step(disc, gen, x, num_steps, offset, key)
    -> (disc, loss_sum [K], steps [K])` that donates `disc`, or with `group` > 0
    a `GroupedStep` whose calls take the group's slices of `disc` and `gen`.
    """
    update = _sharded(gradient_step(discriminator_loss(disc_model), optimizer,
                                    sharding.step_axis(mesh)),
                      mesh, num_batch_args=1, stack_mode=stack_mode)
    sequential = stack_mode == "sequential"
    # The latent size of a discriminator that reads latent means (0: it reads the data).
    latent = getattr(disc_model.module, "latent", 0)

    @functools.partial(jax.jit, donate_argnums=0)
    def disc_step(disc: Stack, gen: Stack, x: points_lib.Data, num_steps: jax.Array,
                  offset: jax.Array, key: jax.Array, group_index: jax.Array | None = None):
        # `disc` and `gen` are the components of group `group_index` only, when grouped.
        k = num_steps.shape[0]
        size = group_size(k, group)

        def step(disc, step_key, active=None):
            index_key, sample_key, binary_key = jax.random.split(step_key, 3)
            index = jax.random.randint(index_key, (k, batch_size), 0, x.shape[0])
            index, sample_keys = component_group(
                (index, jax.random.split(sample_key, k)), group_index, size)
            fake = stacking.sample(gen_model, gen, sample_keys, batch_size, sequential)
            real = take_batch(x, index, mesh)
            if binarize:
                real_key, fake_key = jax.random.split(binary_key)
                real = _constrain(binarize_images(real_key, real), mesh)
                fake = binarize_images(fake_key, fake)
            batch = (real, fake)
            if input_noise > 0:
                real_key, fake_key = jax.random.split(jax.random.fold_in(binary_key, 1))
                # Vector data: noise on the points; latent discriminators: on their
                # latent means, where the discriminator adds it.
                shape, dtype = ((real.shape[:2] + (latent,), jnp.float32) if latent
                                else (real.shape, real.dtype))
                noise = [input_noise * jax.random.normal(k, shape, dtype)
                         for k in (real_key, fake_key)]
                batch = (real, fake, *noise) if latent else (real + noise[0], fake + noise[1])
            return _group_update(update, disc, group_index, size, k, active,
                                 tuple(_constrain(part, mesh) for part in batch))

        return scan_chunk(step, disc, num_steps, offset, key, chunk, k, unroll,
                           members=_members(k, group_index, size))

    return GroupedStep(disc_step, group, stacked_args=(0,)) if group else disc_step


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
      step: the jitted chunked fit step of `make_disc_step`.
      score: the jitted batch scorer of `steps.make_scorer`.
    """

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
         mesh, stack_mode: str = "vmap") -> BinaryDiscriminators:
    """K MLP (vector data) or conv (images) discriminators of `config.disc`, their steps
    run as `stack_mode` ('vmap' or 'sequential') says."""
    model = disc_models.make(config, data_shape)
    opt = optimizer(config)
    k = config.num_components
    chunk, unroll, group = steps.calls(stack_mode, k, config.steps_per_chunk,
                                       config.unroll_steps, config.stack_group)
    return BinaryDiscriminators(
        config=config, model=model, optimizer=opt, mesh=mesh, chunk=chunk,
        groups=k // group if group else 1,
        step=make_disc_step(model, gen_model, opt, config.disc.batch_size, chunk, mesh,
                            unroll, stack_mode, group, config.disc.binarize,
                            config.disc.input_noise),
        score=steps.make_scorer(model, False, mesh,
                                "map" if config.assign.sequential_components else stack_mode,
                                config.disc.binarize))
