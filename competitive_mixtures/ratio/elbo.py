"""The ELBO as the assignment score: VAE components scored by their own likelihood bound.

The paper assigns x_i to the component most likely to have generated it,
argmax_j P_gj(x_i), and estimates P_gj with discriminators because implicit
models have no density. A VAE has a lower bound on its log-density,
ELBO_j(x) <= log p_gj(x); this estimator scores every point with it:

    score_ij = ELBO_j(x_i) = log p_gj(x_i) - KL(q_j(z|x_i) || p_gj(z|x_i)).

These are log-densities of normalised models, so the argmax needs no
dataset normaliser (the `exact` case of `assign.assign`): the common
log p_X(x_i) of the density ratio cancels between components, and the
paper's per-component normaliser Z_j = sum_i r_j(x_i) estimates the
component's mass on the data, which is 1 for every component whose samples
look like data. Each pass draws one latent sample per point and component,
and batch norm reads its running averages (a point's score does not depend
on its batch). Nothing is trained: the state is an empty `Stack`.
"""

from __future__ import annotations

import dataclasses

import jax
from jax.sharding import PartitionSpec as P
import ml_collections

from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures.ratio import base
from competitive_mixtures.state import Stack


@dataclasses.dataclass(frozen=True)
class ELBOScores(base.Likelihoods):
    """`score`: jitted `((gen, key), x [B, ...]) -> [B, K]` ELBOs, B split over devices."""

    kind: str = "elbo"

    def score_args(self, gen: Stack, key: jax.Array) -> tuple[Stack, jax.Array]:
        return gen, key


def make(config: ml_collections.ConfigDict, gen_model, data_shape: tuple[int, ...],
         mesh, stack_mode: str = "vmap") -> ELBOScores:
    del data_shape
    if not getattr(gen_model, "has_elbo", False):
        raise ValueError(f"ratio.kind='elbo' needs a VAE family, not {config.model.family!r}")
    sequential = gen_model.stack_mode == "sequential"

    def local(gen_and_key: tuple[Stack, jax.Array], x: jax.Array) -> jax.Array:
        gen, key = gen_and_key
        # Every device draws its own points' noise: fold in the device index.
        key = jax.random.fold_in(key, jax.lax.axis_index(sharding.AXIS))
        return stacking.elbo(gen_model, gen, x, key, sequential)

    score = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(sharding.AXIS)),
                                  out_specs=P(sharding.AXIS)))
    return ELBOScores(config=config, mesh=mesh, score=score)
