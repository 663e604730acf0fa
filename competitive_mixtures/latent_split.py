"""`init_split='latent'`: the components start from one VAE trained on all the points.

One network of the components' own architecture trains `init_epochs` epochs
on all N points, as the paper pre-trains "a few epochs on the whole training
set" (section 5). k-means++ and Lloyd's iterations on its latent means (the
means of q(z|x)) then split the points, one cluster per starting component,
and every component starts from that network's weights, with a fresh
optimizer state. Round 0 pre-trains each component on its own cluster and
the rounds go on as usual. With `disc.features='latent'` the discriminators
read that network's encoder, fixed for the whole run.

The shared network's steps belong to the generator budget: E epochs of it
take as many component-steps as E epochs of the K components on their own
shares of the points.
"""

from __future__ import annotations

import math
import time

import jax
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import auto_k
from competitive_mixtures import points as points_lib
from competitive_mixtures import programs as programs_lib
from competitive_mixtures import seeding
from competitive_mixtures import sharding
from competitive_mixtures import loops
from competitive_mixtures.ratio import discriminator
from competitive_mixtures.state import MixtureState, Stack


def shared_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config of the shared network: one component of the same architecture,
    trained on all the points."""
    shared = ml_collections.ConfigDict(config.to_dict())
    shared.num_components, shared.strategy, shared.stack_group = 1, "single", 1
    shared.init_split = "uniform"
    shared.auto_k.enabled = False
    return shared


def latent_means(programs: programs_lib.Programs, gen: Stack, x: points_lib.Data,
                 batch_size: int) -> jax.Array:
    """`[N, latent]` encoder means of the first network of `gen` at the N points."""
    model = programs.gen_model

    def local(gen: Stack, batch: jax.Array) -> jax.Array:
        first = jax.tree.map(lambda leaf: leaf[0], (gen.params, gen.model_state))
        return model.latent_mean(*first, batch)

    score = jax.jit(jax.shard_map(local, mesh=programs.mesh, in_specs=(P(), P(sharding.AXIS)),
                                  out_specs=P(sharding.AXIS)))
    return loops.stream_scores(score, programs.mesh, gen, x, batch_size)


def start(config: ml_collections.ConfigDict, programs: programs_lib.Programs,
          state: MixtureState, x: points_lib.Data) -> tuple[MixtureState, dict]:
    """`state` (a fresh one) with the shared network's weights in every component
    and its latent split as the owners; and a record of the start (steps, seconds,
    the split's sizes)."""
    began = time.perf_counter()
    shared = shared_config(config)
    one = programs_lib.make_programs(shared, tuple(x.shape[1:]), programs.mesh)
    net = programs_lib.init_state(shared, one, x)
    step_key, split_key = jax.random.split(
        jax.random.fold_in(jax.random.PRNGKey(config.seed), programs_lib.LATENT_STREAM))
    num_steps = math.ceil(config.init_epochs * x.shape[0] / config.batch_size)
    gen, loss = loops.run_chunks(one.m_step, net.gen, np.array([num_steps], np.int64),
                                 one.m_chunk, step_key, x, net.sets, groups=one.m_groups,
                                 label="latent split: the shared network")
    z = latent_means(one, gen, x, config.assign.batch_size)
    owner = seeding.kmeans_owner(split_key, z, auto_k.initial_count(config))
    k = config.num_components
    owner, sets = programs.strategy.initial_sets(split_key, x.shape[0], k,
                                                 config.balance.min_points,
                                                 config.bagging.bootstrap, owner)
    params, model_state = jax.tree.map(lambda leaf: jnp.repeat(leaf, k, axis=0),
                                       (gen.params, gen.model_state))
    components = Stack(params=params, model_state=model_state,
                       opt_state=jax.vmap(programs.gen_optimizer.init)(params))
    disc = state.disc
    if config.disc.features == "latent":
        disc = discriminator.install_features(disc, gen)
    state = state.replace(gen=components, disc=disc, owner=owner, sets=sets,
                          alpha=programs.strategy.alpha(sets.count))
    record = {"steps": num_steps, "loss": float(loss[0]),
              "counts": np.bincount(np.asarray(owner), minlength=k).tolist(),
              "seconds": time.perf_counter() - began}
    return sharding.replicate(state, programs.mesh), record
