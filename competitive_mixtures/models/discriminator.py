"""Discriminators D_j(x) = sigmoid(logit): data (label 1) against samples of g_j (label 0)."""

from __future__ import annotations

import flax.linen as nn
import jax

from competitive_mixtures.models.base import MLP


class MLPDiscriminator(nn.Module):
    """MLP to one logit per point: `[B, D]` -> `[B]`; with `outputs` > 1, `[B, outputs]`
    (the logits of a classifier over that many classes)."""

    hidden: tuple[int, ...]
    outputs: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        logits = MLP((*self.hidden, self.outputs))(x)
        return logits[:, 0] if self.outputs == 1 else logits
