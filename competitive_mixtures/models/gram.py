"""GRaM, generative ratio matching (Srivastava et al. 2018), as a mixture component.

A generator g is trained by kernel MMD in a low-dimensional space given by a
projection f (an MLP, or a small conv net for images, to `projection_dim`
outputs). f is trained to make the data and the samples most different
there, measured by the Pearson divergence with a kernel density-ratio
estimate; g then minimises MMD^2 between projected data and projected samples
with f fixed. The two objectives differ, so there is no saddle-point game:

  f step:  maximise PD = 1/2 mean_l (r(f(g(z_l))) - 1)^2,
           r = dP_data/dP_g at the projected samples by kernel mean matching,
           r = (n/N)(K_gg + n eps I)^-1 K_gd 1 (`kernels.kmm_ratio`);
  g step:  minimise MMD^2(f(x), f(g(z))) (`kernels.mmd2`).

Kernel widths: sigma = the root mean squared distance between the projected
points of the batch (data and samples, gradient stopped; the median heuristic
needs a sort, which made a step ~4x slower on CPU); the ratio uses sigma, the
MMD the sum of Gaussian kernels of widths sigma x (0.5, 1, 2).

Both statistics need the whole batch, so the M-step of GRaM components is
the global-view program that XLA partitions from the batch's sharding (it
inserts the collectives), not a per-device `shard_map` program; a step is
the same on one device and on many.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from competitive_mixtures import kernels
from competitive_mixtures.models.base import MLP, ComponentStep, PartOptimizers, gradient_step
from competitive_mixtures.models.conv import to_unit_interval
from competitive_mixtures.models.gan import LEAKY_SLOPE

PyTree = Any
MMD_WIDTHS = (0.5, 1.0, 2.0)


class Projection(nn.Module):
    """f: points `[B, *data_shape]` -> `[B, projection_dim]`.

    Vectors: an MLP with `hidden` layers. Images (uint8 or [0, 1]): stride-2
    convs with `channels` and leaky ReLU, then a linear layer.
    """

    projection_dim: int
    hidden: Sequence[int] = ()
    channels: Sequence[int] = ()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim == 4:
            x = 2.0 * to_unit_interval(x) - 1.0
            for width in self.channels:
                x = nn.leaky_relu(nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME")(x),
                                  LEAKY_SLOPE)
            return nn.Dense(self.projection_dim)(x.reshape(x.shape[0], -1))
        return MLP((*self.hidden, self.projection_dim))(x.astype(jnp.float32))


def pearson_divergence(projected_data: jax.Array, projected_samples: jax.Array,
                       width: jax.Array, eps: float) -> jax.Array:
    """1/2 mean (r - 1)^2 over the samples, r = dP_data/dP_g by kernel mean matching."""
    ratio = kernels.kmm_ratio(projected_samples, projected_data, width, eps)
    return 0.5 * jnp.mean((ratio - 1.0) ** 2)


def batch_width(a: jax.Array, b: jax.Array) -> jax.Array:
    """The root mean squared distance between the points of both sets, gradient stopped."""
    return jax.lax.stop_gradient(kernels.rms_distance(jnp.concatenate([a, b])))


@dataclasses.dataclass(frozen=True)
class GRaMModel:
    """One GRaM component; the protocol of `base.LinenModel`.

    params = `{'generator': .., 'projection': ..}`; a training batch is
    `x [B, *data_shape]` and `noise [B, 2, latent]` (codes for the f step,
    then for the g step). The loss reported is the generator's MMD^2.
    """

    generator: nn.Module
    projection: Projection
    latent: int
    eps: float = 1e-3

    draws_per_example = None
    # No sequential form: the K components always run vmapped.
    stack_mode = "vmap"
    # The M-step runs the global-view step (see steps.make_m_step).
    whole_batch_statistics = True

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (2, self.latent)

    def init(self, key: jax.Array, x: jax.Array) -> tuple[PyTree, PyTree]:
        gen_key, proj_key = jax.random.split(key)
        z = jnp.zeros((x.shape[0], self.latent), jnp.float32)
        params = {"generator": self.generator.init(gen_key, z, train=False)["params"],
                  "projection": self.projection.init(proj_key, x)["params"]}
        return params, {}

    def generate(self, params: PyTree, z: jax.Array) -> jax.Array:
        return self.generator.apply({"params": params}, z, train=False)

    def project(self, params: PyTree, x: jax.Array) -> jax.Array:
        return self.projection.apply({"params": params}, x)

    def make_step(self, optimizer: PartOptimizers, axis_name: str | None = None) -> ComponentStep:
        if axis_name is not None:
            raise ValueError("GRaM's statistics need the whole batch: train it with the "
                             "global-view step (whole_batch_statistics), not per device")

        def projection_fn(proj_params, model_state, x, fake):
            data, samples = self.project(proj_params, x), self.project(proj_params, fake)
            width = batch_width(data, samples)
            return -pearson_divergence(data, samples, width, self.eps), model_state

        def generator_fn(gen_params, model_state, x, z, proj_params):
            data = self.project(proj_params, x)
            samples = self.project(proj_params, self.generate(gen_params, z))
            width = batch_width(data, samples)
            return kernels.mmd2(data, samples, [width * s for s in MMD_WIDTHS]), model_state

        projection_update = gradient_step(projection_fn, optimizer["projection"], axis_name)
        generator_update = gradient_step(generator_fn, optimizer["generator"], axis_name)

        def step(params, model_state, opt_state, x, noise):
            fake = jax.lax.stop_gradient(self.generate(params["generator"], noise[:, 0]))
            proj, _, proj_opt, _ = projection_update(params["projection"], model_state,
                                                     opt_state["projection"], x, fake)
            gen, _, gen_opt, loss = generator_update(params["generator"], model_state,
                                                     opt_state["generator"], x, noise[:, 1],
                                                     proj)
            return ({"generator": gen, "projection": proj}, model_state,
                    {"generator": gen_opt, "projection": proj_opt}, loss)

        return step

    def sample(self, params: PyTree, model_state: PyTree, key: jax.Array, n: int) -> jax.Array:
        return self.generate(params["generator"], jax.random.normal(key, (n, self.latent)))
