"""Variational autoencoders with Gaussian encoder and Gaussian decoder."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from competitive_mixtures.models.base import MLP
from competitive_mixtures.config import choices

# Decoder log-variances are kept in this range so that a component whose data
# shrinks to a few points cannot drive its likelihood to infinity.
LOG_VAR_MIN, LOG_VAR_MAX = choices.LOG_VAR_MIN, choices.LOG_VAR_MAX


def gaussian_nll(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """-log N(x; mean, exp(log_var)) summed over the last axis: `[B, D]` -> `[B]`."""
    return 0.5 * jnp.sum((x - mean) ** 2 * jnp.exp(-log_var) + log_var + math.log(2 * math.pi),
                         axis=-1)


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_var)) || N(0, I)) over the last axis: `[B, L]` -> `[B]`."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + mean ** 2 - 1.0 - log_var, axis=-1)


class MLPVAE(nn.Module):
    """VAE for vector data `[B, D]`: MLP encoder q(z|x) and MLP decoder p(x|z).

    The loss is the negative ELBO per point, averaged over the batch.
    """

    hidden: tuple[int, ...]
    latent: int
    data_dim: int
    sample_noise: bool = True
    max_log_var: float = LOG_VAR_MAX

    def setup(self):
        self.encoder = MLP((*self.hidden, 2 * self.latent))
        self.decoder = MLP((*self.hidden, 2 * self.data_dim))

    def decode(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Decoder mean and log-variance, each `[B, D]`."""
        mean, log_var = jnp.split(self.decoder(z), 2, axis=-1)
        return mean, jnp.clip(log_var, LOG_VAR_MIN, self.max_log_var)

    def loss_noise_shape(self) -> tuple[int, ...]:
        return (self.latent,)

    def elbo(self, x: jax.Array, noise: jax.Array) -> jax.Array:
        """One-sample ELBO of each point, `[B, D]` -> `[B]` (a lower bound on log p(x))."""
        z_mean, z_log_var = jnp.split(self.encoder(x), 2, axis=-1)
        # The same range as the decoder's: exp() cannot overflow into a NaN loss.
        z_log_var = jnp.clip(z_log_var, LOG_VAR_MIN, LOG_VAR_MAX)
        z = z_mean + jnp.exp(0.5 * z_log_var) * noise
        x_mean, x_log_var = self.decode(z)
        return -(gaussian_nll(x, x_mean, x_log_var) + gaussian_kl(z_mean, z_log_var))

    def __call__(self, x: jax.Array, noise: jax.Array, train: bool = True) -> jax.Array:
        return -jnp.mean(self.elbo(x, noise))

    def latent_mean(self, x: jax.Array) -> jax.Array:
        """The mean of q(z|x), `[B, D]` -> `[B, latent]`."""
        return jnp.split(self.encoder(x), 2, axis=-1)[0]

    def sample(self, n: int) -> jax.Array:
        z_key, x_key = jax.random.split(self.make_rng("noise"))
        x_mean, x_log_var = self.decode(jax.random.normal(z_key, (n, self.latent)))
        if not self.sample_noise:
            return x_mean
        return x_mean + jnp.exp(0.5 * x_log_var) * jax.random.normal(x_key, x_mean.shape)
