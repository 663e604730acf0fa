"""Held-out ELBO of a mixture of VAEs: a lower bound on its log-likelihood.

With ELBO_j(x) <= log p_gj(x), the mixture p(x) = sum_j alpha_j p_gj(x) has

    log p(x) >= log sum_j alpha_j exp(ELBO_j(x)),

averaged over held-out points (nats per point; for images, with pixels
scaled to [0, 1]). Components with alpha_j = 0 are not part of the mixture.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from competitive_mixtures import stacking
from competitive_mixtures.state import Stack


@functools.partial(jax.jit, static_argnames=("model",))
def _component_elbos(model, gen: Stack, x: jax.Array, key: jax.Array) -> jax.Array:
    """`[B, K]` one-sample ELBO of every point under every component.

    In the model's stack mode: vmapped, or the K components side by side in
    straight-line code (conv VAEs on CPU, where a vmapped convolution is a
    slow grouped one), with the same noise.
    """
    k = jax.tree.leaves(gen.params)[0].shape[0]
    noise = jax.random.normal(key, (k, x.shape[0]) + model.noise_shape)
    return stacking.elbo_with_noise(model, gen, x, noise,
                                    model.stack_mode == "sequential")


def heldout_elbo(model, gen: Stack, alpha: np.ndarray, x: np.ndarray, key: jax.Array,
                 batch_size: int = 1000) -> dict:
    """Mixture and per-component mean ELBO of the held-out points `x` `[M, ...]`.

    Returns {'mixture': float, 'components': [K] floats (mean ELBO of all
    held-out points under component j alone)}.
    """
    if not getattr(model, "has_elbo", False):
        raise ValueError("the model has no ELBO (VAE families only)")
    parts = []
    for i, begin in enumerate(range(0, len(x), batch_size)):
        batch = x[begin:begin + batch_size]
        valid = len(batch)
        if valid < batch_size:  # One compiled shape for every batch.
            batch = np.concatenate([batch, np.repeat(batch[:1], batch_size - valid, axis=0)])
        parts.append(np.asarray(_component_elbos(model, gen, jnp.asarray(batch),
                                                 jax.random.fold_in(key, i)))[:valid])
    elbos = np.concatenate(parts).astype(np.float64)
    alpha = np.asarray(alpha, np.float64)
    used = alpha > 0
    weighted = elbos[:, used] + np.log(alpha[used])
    top = weighted.max(axis=1, keepdims=True)
    mixture = top[:, 0] + np.log(np.exp(weighted - top).sum(axis=1))
    return {"mixture": float(mixture.mean()), "components": elbos.mean(axis=0).tolist()}
