"""Discriminators D_j(x) = sigmoid(logit): data (label 1) against samples of g_j (label 0)."""

from __future__ import annotations

import flax.linen as nn
import jax

from competitive_mixtures.models.base import MLP


class MLPDiscriminator(nn.Module):
    """MLP to one logit per point: `[B, D]` -> `[B]`."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        return MLP((*self.hidden, 1))(x)[:, 0]
