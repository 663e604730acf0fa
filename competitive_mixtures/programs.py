"""What a run compiles and starts from: models, optimizers, jitted steps, fresh state."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from competitive_mixtures import auto_k
from competitive_mixtures import models
from competitive_mixtures import points as points_lib
from competitive_mixtures import ratio as ratio_lib
from competitive_mixtures.ratio import base as ratio_base
from competitive_mixtures import seeding
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import steps
from competitive_mixtures import strategies
from competitive_mixtures.state import MixtureState

# Random streams folded into the run's key; round r uses stream r.
INIT_STREAM = 2**31 - 1
EVAL_STREAM = 2**31 - 2
# Stream of the density-ratio estimate and of boosting's draws, folded into round r's key.
RATIO_STREAM = 2**31 - 3
PRETRAINED_STREAM = 2**31 - 4
# Stream of init_split='latent': the shared network's steps and its split (latent_split.py).
LATENT_STREAM = 2**31 - 5


@dataclasses.dataclass(frozen=True)
class Programs:
    """The models, optimizers and compiled steps of one run (a `ratio.base.RoundPrograms`
    for the end of a round)."""

    gen_model: Any
    disc_model: Any
    gen_optimizer: optax.GradientTransformation
    disc_optimizer: optax.GradientTransformation
    mesh: Any
    m_step: Any
    # Steps per call of `m_step` (1 when its components run sequentially), and
    # the calls per step (groups of components, see steps.make_m_step).
    m_chunk: int
    m_groups: int
    disc_step: Any
    score: Any
    assigner: ratio_base.Assigner
    strategy: strategies.Strategy
    # The density-ratio estimator (`ratio/`); `disc_model`, `disc_optimizer`,
    # `disc_step` and `score` are its network, optimizer, fit step and batch
    # scorer (None for the kernel estimator, which trains nothing).
    ratio: ratio_base.RatioEstimator
    # The k-means model of Lemma 2: the M-step is exact (the mean of the owned
    # points), not gradient steps.
    exact: bool
    # With `auto_k`: every component's log-likelihood bound at given points
    # (the ELBO or exact estimator, `log_ratios(None, gen, x, key)` -> `[B, K]`),
    # for the held-out criterion of `auto_k.py`; None otherwise.
    likelihood: ratio_base.RatioEstimator | None = None


def make_programs(config: ml_collections.ConfigDict, data_shape: tuple[int, ...],
                  mesh=None) -> Programs:
    """Models, optimizers and compiled steps; `mesh` defaults to all devices."""
    mesh = sharding.make_mesh() if mesh is None else mesh
    for field, value in (("batch_size", config.batch_size),
                         ("disc.batch_size", config.disc.batch_size)):
        sharding.check_divisible(value, mesh, field)
    # 'auto' becomes 'vmap' or 'sequential' here, once, for the generators and the
    # discriminators alike.
    stack_mode = sharding.resolve_stack_mode(config.stack_mode, len(data_shape) == 3)
    gen_model = models.generator(config, data_shape, stack_mode, sharding.step_axis(mesh))
    gen_optimizer = models.generator_optimizer(config)
    estimator = ratio_lib.make(config, gen_model, data_shape, mesh, stack_mode)
    exact = config.model.family == "kmeans"
    chunk, unroll, group = steps.calls(gen_model.stack_mode,
                                       config.num_components, config.steps_per_chunk,
                                       config.unroll_steps, config.stack_group)
    return Programs(
        gen_model=gen_model, disc_model=estimator.model, gen_optimizer=gen_optimizer,
        disc_optimizer=estimator.optimizer,
        mesh=mesh,
        m_step=steps.make_m_step(gen_model, gen_optimizer, config.batch_size, chunk, mesh,
                                 unroll, group),
        m_chunk=chunk, m_groups=config.num_components // group if group else 1,
        disc_step=estimator.step,
        score=estimator.score,
        assigner=steps.make_assigner(mesh, config.balance.min_points,
                                     estimator.normalise),
        strategy=strategies.get(config.strategy), ratio=estimator, exact=exact,
        likelihood=(ratio_lib.make_likelihood(config, gen_model, data_shape, mesh)
                    if config.auto_k.enabled else None))


def init_state(config: ml_collections.ConfigDict, programs: Programs,
               x: points_lib.Data) -> MixtureState:
    """Fresh state: K random components and the random pre-training split."""
    k = config.num_components
    rng = jax.random.PRNGKey(config.seed)
    gen_key, disc_key, split_key, example_key = jax.random.split(
        jax.random.fold_in(rng, INIT_STREAM), 4)
    example = ratio_lib.base.example_batch(x, example_key)
    seeded = None
    # With auto_k only the first components start; the others wait in the stack.
    start = auto_k.initial_count(config)
    if config.init_split == "kmeans" and programs.strategy.reassigns:
        seeded = seeding.kmeans_owner(split_key, points_lib.full(x), start)
    elif start < k:
        seeded = programs.strategy.initial_owner(split_key, x.shape[0], start)
    owner, sets = programs.strategy.initial_sets(split_key, x.shape[0], k,
                                                 config.balance.min_points,
                                                 config.bagging.bootstrap, seeded)
    state = MixtureState(
        round=jnp.zeros((), jnp.int32),
        gen=stacking.init(programs.gen_model, programs.gen_optimizer,
                          jax.random.split(gen_key, k), example),
        disc=programs.ratio.init(disc_key, example),
        owner=owner, alpha=programs.strategy.alpha(sets.count), sets=sets, rng=rng,
        active=auto_k.initial_active(config), search=auto_k.initial_search(config))
    return sharding.replicate(state, programs.mesh)
