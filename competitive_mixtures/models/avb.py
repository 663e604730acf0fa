"""Adversarial Variational Bayes (Mescheder et al. 2017) as a mixture component.

A VAE whose encoder is implicit: z = e(x, eps) with eps ~ N(0, I) fed into
the network, so q(z|x) has no density to put in the KL term. An adversary
T(x, z) is trained to tell pairs (x, z ~ q(z|x)) from pairs (x, z ~ p(z)):

    max_T  E_x[ E_q log sigmoid(T(x, z)) + E_p log(1 - sigmoid(T(x, z))) ],

whose optimum is T*(x, z) = log q(z|x) - log p(z). The encoder and decoder
then maximise E_x E_eps[-T(x, e(x, eps)) + log p(x | e(x, eps))], the ELBO
with T in place of the KL's log-ratio. A training step is one adversary
update, then one encoder/decoder update.

Networks are MLPs on flattened inputs: vectors `[B, D]` with a Gaussian
decoder (mean and clipped log-variance, as in `models.vae`), images
`[B, H, W, C]` (uint8 or [0, 1]) with a Bernoulli decoder over pixels.
Sampling decodes prior noise z ~ N(0, I), as for a VAE.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from competitive_mixtures.models.base import MLP, ComponentStep, PartOptimizers, gradient_step
from competitive_mixtures.models.conv import to_unit_interval
from competitive_mixtures.models.vae import LOG_VAR_MAX, LOG_VAR_MIN, gaussian_nll

PyTree = Any


class ImplicitAutoencoder(nn.Module):
    """Implicit encoder e(x, eps) and decoder p(x|z) for data of `data_shape`."""

    hidden: Sequence[int]
    latent: int
    data_shape: Sequence[int]

    @property
    def images(self) -> bool:
        return len(self.data_shape) == 3

    def setup(self):
        size = math.prod(self.data_shape)
        self.encoder = MLP((*self.hidden, self.latent))
        self.decoder = MLP((*self.hidden[::-1], size if self.images else 2 * size))

    def encode(self, x: jax.Array, eps: jax.Array) -> jax.Array:
        """z = e(x, eps): `[B, *data_shape]`, `[B, latent]` -> `[B, latent]`."""
        flat = to_unit_interval(x).reshape(x.shape[0], -1)
        return self.encoder(jnp.concatenate([flat, eps], axis=1))

    def nll(self, x: jax.Array, z: jax.Array) -> jax.Array:
        """-log p(x|z) per point `[B]`."""
        flat = to_unit_interval(x).reshape(x.shape[0], -1)
        out = self.decoder(z)
        if self.images:
            ll = flat * jax.nn.log_sigmoid(out) + (1.0 - flat) * jax.nn.log_sigmoid(-out)
            return -jnp.sum(ll, axis=1)
        mean, log_var = jnp.split(out, 2, axis=-1)
        return gaussian_nll(flat, mean, jnp.clip(log_var, LOG_VAR_MIN, LOG_VAR_MAX))

    def decode(self, z: jax.Array, key: jax.Array, sample_noise: bool) -> jax.Array:
        """Points `[B, *data_shape]` decoded from z: Bernoulli means for images (in
        [0, 1]); for vectors the Gaussian mean, or a draw with `sample_noise`."""
        out = self.decoder(z)
        shape = (z.shape[0],) + tuple(self.data_shape)
        if self.images:
            return nn.sigmoid(out).reshape(shape)
        mean, log_var = jnp.split(out, 2, axis=-1)
        if sample_noise:
            log_var = jnp.clip(log_var, LOG_VAR_MIN, LOG_VAR_MAX)
            mean = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        return mean.reshape(shape)

    def __call__(self, x: jax.Array, eps: jax.Array) -> jax.Array:
        return self.nll(x, self.encode(x, eps))


class Adversary(nn.Module):
    """T(x, z) -> `[B]`: an MLP on the flattened point and the code."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array) -> jax.Array:
        flat = to_unit_interval(x).reshape(x.shape[0], -1)
        return MLP((*self.hidden, 1))(jnp.concatenate([flat, z], axis=1))[:, 0]


def adversary_loss(t_posterior: jax.Array, t_prior: jax.Array) -> jax.Array:
    """Logistic loss of T: pairs with posterior codes -> 1, with prior codes -> 0."""
    return jnp.mean(jax.nn.softplus(-t_posterior)) + jnp.mean(jax.nn.softplus(t_prior))


@dataclasses.dataclass(frozen=True)
class AVBModel:
    """One AVB component; the protocol of `base.LinenModel`.

    params = `{'autoencoder': .., 'adversary': ..}`; a training batch is
    `x [B, *data_shape]` and `noise [B, 2, latent]` (the encoder's eps, then
    a prior code for the adversary). The loss reported is -ELBO with T for
    the KL term.
    """

    autoencoder: ImplicitAutoencoder
    adversary: Adversary
    sample_noise: bool = True

    draws_per_example = None
    # No sequential form: the K components always run vmapped.
    stack_mode = "vmap"

    @property
    def latent(self) -> int:
        return self.autoencoder.latent

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (2, self.latent)

    def init(self, key: jax.Array, x: jax.Array) -> tuple[PyTree, PyTree]:
        ae_key, adv_key = jax.random.split(key)
        z = jnp.zeros((x.shape[0], self.latent), jnp.float32)
        params = {"autoencoder": self.autoencoder.init(ae_key, x, z)["params"],
                  "adversary": self.adversary.init(adv_key, x, z)["params"]}
        return params, {}

    def encode(self, params: PyTree, x: jax.Array, eps: jax.Array) -> jax.Array:
        return self.autoencoder.apply({"params": params}, x, eps, method="encode")

    def t(self, params: PyTree, x: jax.Array, z: jax.Array) -> jax.Array:
        """T(x, z) `[B]` with the adversary's `params`."""
        return self.adversary.apply({"params": params}, x, z)

    def make_step(self, optimizer: PartOptimizers, axis_name: str | None = None) -> ComponentStep:
        def adversary_fn(adv_params, model_state, x, z_posterior, z_prior):
            return adversary_loss(self.t(adv_params, x, z_posterior),
                                  self.t(adv_params, x, z_prior)), model_state

        def autoencoder_fn(ae_params, model_state, x, eps, adv_params):
            z = self.encode(ae_params, x, eps)
            nll = self.autoencoder.apply({"params": ae_params}, x, z, method="nll")
            return jnp.mean(nll + self.t(adv_params, x, z)), model_state

        adversary_update = gradient_step(adversary_fn, optimizer["adversary"], axis_name)
        autoencoder_update = gradient_step(autoencoder_fn, optimizer["autoencoder"], axis_name)

        def step(params, model_state, opt_state, x, noise):
            eps, z_prior = noise[:, 0], noise[:, 1]
            z_posterior = jax.lax.stop_gradient(self.encode(params["autoencoder"], x, eps))
            adv, _, adv_opt, _ = adversary_update(params["adversary"], model_state,
                                                  opt_state["adversary"], x, z_posterior,
                                                  z_prior)
            ae, _, ae_opt, loss = autoencoder_update(params["autoencoder"], model_state,
                                                     opt_state["autoencoder"], x, eps, adv)
            return ({"autoencoder": ae, "adversary": adv}, model_state,
                    {"autoencoder": ae_opt, "adversary": adv_opt}, loss)

        return step

    def sample(self, params: PyTree, model_state: PyTree, key: jax.Array, n: int) -> jax.Array:
        z_key, x_key = jax.random.split(key)
        z = jax.random.normal(z_key, (n, self.latent))
        return self.autoencoder.apply({"params": params["autoencoder"]}, z, x_key,
                                      self.sample_noise, method="decode")
