"""Exact log-likelihoods as the assignment score (`ratio.kind='exact'`).

For components with a tractable density (the k-means family: each component
N(mu_j, I)), score_ij = log p_gj(x_i) exactly. As for the ELBO kind, the
common log p_X(x_i) of the paper's ratio cancels in the argmax and no dataset
normaliser is applied; with the k-means family's exact M-step (the mean of
the owned points) the loop is Lloyd's k-means, the paper's Lemma 2. Nothing
is trained: the state is an empty `Stack`.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from competitive_mixtures import steps
from competitive_mixtures.ratio import base
from competitive_mixtures.state import Stack


@dataclasses.dataclass(frozen=True)
class ExactScores(base.Likelihoods):
    """`score`: jitted `(gen, x [B, ...]) -> [B, K]` log-likelihoods, B split over devices."""

    kind: str = "exact"

    def score_args(self, gen: Stack, key: jax.Array) -> Stack:
        del key
        return gen


def make(config: ml_collections.ConfigDict, gen_model, data_shape: tuple[int, ...],
         mesh, stack_mode: str = "vmap") -> ExactScores:
    del data_shape
    if config.model.family != "kmeans":
        raise ValueError(f"ratio.kind='exact' needs model.family='kmeans', not "
                         f"{config.model.family!r}")
    return ExactScores(config=config, mesh=mesh,
                       score=steps.make_scorer(gen_model, True, mesh))
