"""One component's network as pure functions of its variables.

Models know nothing of mixtures: a `LinenModel` wraps a Flax Linen module and
exposes `init`, `loss`, `sample` (and, for models with an exact density,
`log_likelihood`) for a single component. `stacking.py` vmaps these over K.

A module used here implements:
  `__call__(x, noise, train)` -> scalar loss on a batch `[B, *data_shape]`, where
                           `noise` `[B, *loss_noise_shape()]` is standard normal;
  `loss_noise_shape()`  -> the per-example noise shape of the loss;
  `sample(n)`           -> `[n, *data_shape]` (rng 'noise');
  optionally `log_likelihood(x)` -> `[B]` exact log-density.
The loss takes its noise as an input, drawn per example by the step, so that a
batch split over devices sees exactly the noise it would see on one device.
Non-parameter collections (e.g. batch statistics) are the component's
`model_state` and are updated by `loss`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

PyTree = Any

# One component's training step:
# `(params, model_state, opt_state, *batch_args) -> (params, model_state, opt_state, loss)`.
ComponentStep = Callable[..., tuple[PyTree, PyTree, PyTree, jax.Array]]


def gradient_step(loss_fn: Callable[..., tuple[jax.Array, PyTree]],
                  optimizer: optax.GradientTransformation,
                  axis_name: str | None = None) -> ComponentStep:
    """One optimizer step of one network on `loss_fn`.

    Args:
      loss_fn: `(params, model_state, *batch_args) -> (loss, model_state)`, the
        loss a mean over the (local) batch.
      optimizer: the network's optimizer.
      axis_name: mesh axis over which the batch is split (inside `shard_map`),
        or None. The gradient is that of the global mean loss: the local mean
        loss is averaged over the axis (`pmean`) BEFORE differentiating. The
        parameters are replicated, so differentiation already sums their
        cotangents over the axis; averaging the gradients afterwards instead
        would make them wrong by the device count.
    """
    def global_loss(params, model_state, *batch_args):
        loss, model_state = loss_fn(params, model_state, *batch_args)
        if axis_name is None:
            return loss, model_state
        return jax.lax.pmean((loss, model_state), axis_name)

    def step(params, model_state, opt_state, *batch_args):
        (loss, model_state), grads = jax.value_and_grad(global_loss, has_aux=True)(
            params, model_state, *batch_args)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), model_state, opt_state, loss

    return step


@dataclasses.dataclass(frozen=True)
class PartOptimizers:
    """One optimizer per named network of a component that trains several
    (a GAN's generator and critic) in alternating steps; parameters and
    optimizer state are dicts keyed by the same names."""

    parts: tuple[tuple[str, optax.GradientTransformation], ...]

    @classmethod
    def of(cls, **parts: optax.GradientTransformation) -> "PartOptimizers":
        return cls(tuple(parts.items()))

    def __getitem__(self, name: str) -> optax.GradientTransformation:
        return dict(self.parts)[name]

    def init(self, params: PyTree) -> PyTree:
        return {name: optimizer.init(params[name]) for name, optimizer in self.parts}


@dataclasses.dataclass(frozen=True)
class LinenModel:
    """Pure functions of one component built from a Linen module.

    `stack_mode` is how the M-step runs the K components' training steps:
    'vmap' (one batched program) or 'sequential' (one after another in the
    same compiled step, see `stacking.sequential_step`).
    """

    module: nn.Module
    stack_mode: str = "vmap"

    @property
    def is_generator(self) -> bool:
        return hasattr(self.module, "loss_noise_shape")

    # A training batch is `[B, *data_shape]`; models that take several points
    # per example (`[B, draws, *data_shape]`) set how many.
    draws_per_example = None

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Per-example shape of the standard normal noise the loss takes."""
        return tuple(self.module.loss_noise_shape())

    def init(self, key: jax.Array, x: jax.Array) -> tuple[PyTree, PyTree]:
        """Returns (params, model_state) for one network; `x` is `[B, *data_shape]`.

        Generators are initialised through their loss, other networks (the
        discriminators, `module(x, train)`) through their forward pass.
        """
        param_key, noise_key = jax.random.split(key)
        inputs = (x,)
        if self.is_generator:
            inputs += (jnp.zeros((x.shape[0],) + self.noise_shape, jnp.float32),)
        variables = dict(self.module.init({"params": param_key, "noise": noise_key}, *inputs,
                                          train=False))
        params = variables.pop("params")
        return params, variables

    def loss(self, params: PyTree, model_state: PyTree, x: jax.Array,
             noise: jax.Array) -> tuple[jax.Array, PyTree]:
        """Training loss on `x` `[B, *data_shape]` with `noise` `[B, *noise_shape]`.

        Returns (scalar, new model_state).
        """
        loss, mutated = self.module.apply({"params": params, **model_state}, x, noise,
                                          train=True, mutable=list(model_state))
        return loss, {**model_state, **mutated}

    def make_step(self, optimizer: optax.GradientTransformation,
                  axis_name: str | None = None) -> ComponentStep:
        """One training step on a batch `(x [B, *data_shape], noise [B, *noise_shape])`."""
        return gradient_step(self.loss, optimizer, axis_name)

    def sample(self, params: PyTree, model_state: PyTree, key: jax.Array, n: int) -> jax.Array:
        """`n` samples `[n, *data_shape]`."""
        return self.module.apply({"params": params, **model_state}, n, rngs={"noise": key},
                                 method="sample")

    @property
    def has_elbo(self) -> bool:
        return hasattr(self.module, "elbo")

    def elbo(self, params: PyTree, model_state: PyTree, x: jax.Array,
             noise: jax.Array) -> jax.Array:
        """`[B]` one-sample ELBO of each point (evaluation mode: no batch statistics)."""
        return self.module.apply({"params": params, **model_state}, x, noise, method="elbo")

    def latent_mean(self, params: PyTree, model_state: PyTree, x: jax.Array) -> jax.Array:
        """`[B, latent]` means of the encoder's q(z|x) (evaluation mode)."""
        return self.module.apply({"params": params, **model_state}, x, method="latent_mean")

    def decode_mean(self, params: PyTree, model_state: PyTree, z: jax.Array) -> jax.Array:
        """The decoder's mean output `[n, *data_shape]` of latent codes `z` `[n, latent]`."""
        return self.module.apply({"params": params, **model_state}, z, method="decode_mean")

    @property
    def has_log_likelihood(self) -> bool:
        return hasattr(self.module, "log_likelihood")

    def log_likelihood(self, params: PyTree, model_state: PyTree, x: jax.Array) -> jax.Array:
        """Exact log-density `[B]` of `x` under the component."""
        return self.module.apply({"params": params, **model_state}, x,
                                 method="log_likelihood")

    def apply(self, params: PyTree, model_state: PyTree, x: jax.Array,
              **inputs: jax.Array) -> jax.Array:
        """Forward pass of a network in evaluation mode (discriminators: logits `[B]`);
        `inputs` are the module's other array arguments."""
        return self.module.apply({"params": params, **model_state}, x, train=False, **inputs)


class MLP(nn.Module):
    """Dense layers with ReLU between them; the last layer is linear."""

    features: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.features[:-1]:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.features[-1])(x)
