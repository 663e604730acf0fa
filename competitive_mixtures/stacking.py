"""The K axis: where K independent models become one stacked pytree.

Every leaf of a stacked pytree has a leading axis of size K. Initialisation,
losses, gradients and optimizer updates are `jax.vmap`ped over it, so all K
components train in one compiled step and never mix: component j's update
reads only component j's parameters, optimizer state and batch.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from competitive_mixtures.models.base import ComponentStep, LinenModel, gradient_step
from competitive_mixtures.state import Stack
from competitive_mixtures.config import choices

PyTree = Any

# How the K components of a stacked step run: 'vmap' (one batched program),
# 'sequential' (K copies side by side in one compiled program), or 'auto':
# sequential for convolutional networks on CPU, vmap otherwise
# (`sharding.resolve_stack_mode`, called once per run by `programs.make_programs`).
STACK_MODES = choices.STACK_MODES


def init(model: LinenModel, optimizer: optax.GradientTransformation, keys: jax.Array,
         x: jax.Array) -> Stack:
    """K components from K keys `[K, 2]`; `x` `[B, *data_shape]` is an example batch."""
    params, model_state = jax.vmap(model.init, in_axes=(0, None))(keys, x)
    return Stack(params=params, model_state=model_state,
                 opt_state=jax.vmap(optimizer.init)(params))


def vmap_step(component_step: ComponentStep) -> Callable[..., tuple[Stack, jax.Array]]:
    """One training step of every component: `component_step` vmapped over K.

    Returns `step(stack, *batch_args [K, B, ...]) -> (stack, loss [K])`.
    """
    vmapped = jax.vmap(component_step)

    def step(stack: Stack, *batch_args):
        params, model_state, opt_state, loss = vmapped(
            stack.params, stack.model_state, stack.opt_state, *batch_args)
        return Stack(params=params, model_state=model_state, opt_state=opt_state), loss

    return step


def sequential_step(component_step: ComponentStep) -> Callable[..., tuple[Stack, jax.Array]]:
    """`vmap_step` with the K components run one after another in straight-line code.

    The traced step holds one copy of the component's step per component,
    each on its own slices of the stack and of `batch_args`, so compiling it
    takes about K times as long. On XLA:CPU this is the fast way for
    convolutional models: vmapped, a convolution becomes a grouped
    convolution, and inside a loop body (`lax.map`) the gradient
    convolutions get layouts that the fast convolution kernels do not take;
    both ran 2-5x slower than K plain convolutions. Returns
    `step(stack, *batch_args [K, B, ...]) -> (stack, loss [K])`, equal to
    `vmap_step`'s up to floating-point rounding.
    """
    def step(stack: Stack, *batch_args):
        k = jax.tree.leaves(stack.params)[0].shape[0]
        inputs = (stack.params, stack.model_state, stack.opt_state) + batch_args
        outputs = [component_step(*jax.tree.map(lambda leaf, j=j: leaf[j], inputs))
                   for j in range(k)]
        params, model_state, opt_state, loss = jax.tree.map(
            lambda *leaves: jnp.stack(leaves), *outputs)
        return Stack(params=params, model_state=model_state, opt_state=opt_state), loss

    return step


def stack_step(component_step: ComponentStep,
               mode: str = "vmap") -> Callable[..., tuple[Stack, jax.Array]]:
    """One training step of every component: `vmap_step` or `sequential_step` by `mode`."""
    if mode not in STACK_MODES[1:]:
        raise ValueError(f"stack mode must be one of {STACK_MODES[1:]}, got {mode!r}")
    return sequential_step(component_step) if mode == "sequential" else vmap_step(component_step)


def update_fn(loss_fn: Callable[..., tuple[jax.Array, PyTree]],
              optimizer: optax.GradientTransformation,
              axis_name: str | None = None) -> Callable[..., tuple[Stack, jax.Array]]:
    """One gradient step for all K components on a per-component `loss_fn`.

    See `models.base.gradient_step` for `loss_fn` and how `axis_name` keeps
    the gradient that of the global batch. Returns
    `step(stack, *batch_args [K, B, ...]) -> (stack, loss [K])`.
    """
    return vmap_step(gradient_step(loss_fn, optimizer, axis_name))


def select(mask: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    """Per-component choice between two stacked pytrees; `mask` is `[K]` bool."""
    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)
    return jax.tree.map(pick, on_true, on_false)


def all_finite(tree: PyTree) -> jax.Array:
    """`[K]` bool: every leaf entry of component j is finite."""
    leaves = [jnp.isfinite(leaf).reshape(leaf.shape[0], -1).all(axis=1)
              for leaf in jax.tree.leaves(tree)
              if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return jnp.stack(leaves, axis=0).all(axis=0)


def component(tree: PyTree, j: int) -> PyTree:
    """Component j's slice of a stacked tree (its leading K axis dropped)."""
    return jax.tree.map(lambda leaf: leaf[j], tree)


def sample(model: LinenModel, stack: Stack, keys: jax.Array, n: int,
           sequential: bool | None = None) -> jax.Array:
    """`n` samples from every component: `[K, n, *data_shape]`.

    With `sequential` the K components sample one after another in
    straight-line code (see `sequential_step`), with the same result; by
    default as the model's `stack_mode` says.
    """
    if sequential is None:
        sequential = model.stack_mode == "sequential"
    if sequential:
        return jnp.stack([model.sample(component(stack.params, j),
                                       component(stack.model_state, j), keys[j], n)
                          for j in range(keys.shape[0])])
    return jax.vmap(model.sample, in_axes=(0, 0, 0, None))(
        stack.params, stack.model_state, keys, n)


def logits(model: LinenModel, stack: Stack, x: jax.Array, mode: str = "vmap") -> jax.Array:
    """All K discriminators on one batch: `[B, *data_shape]` -> `[B, K]`.

    `mode`: 'vmap'; 'sequential' (K forward passes side by side in straight-line
    code); or 'map' (one after another in a loop, `lax.map`), which holds one
    network's temporaries at a time: on XLA:CPU a vmapped convolution becomes
    a grouped convolution whose scratch memory was measured at ~5x its own
    temporaries (6.3 GB vs 1.1 GB peak for five 3x128 conv discriminators on
    256 CelebA images).
    """
    if mode == "map":
        return jax.lax.map(lambda p: model.apply(p[0], p[1], x),
                           (stack.params, stack.model_state)).T
    if mode == "sequential":
        k = jax.tree.leaves(stack.params)[0].shape[0]
        return jnp.stack([model.apply(component(stack.params, j),
                                      component(stack.model_state, j), x)
                          for j in range(k)], axis=1)
    return jax.vmap(model.apply, in_axes=(0, 0, None), out_axes=1)(
        stack.params, stack.model_state, x)


def log_likelihood(model: LinenModel, stack: Stack, x: jax.Array) -> jax.Array:
    """Exact log-density of every component: `[B, *data_shape]` -> `[B, K]`."""
    return jax.vmap(model.log_likelihood, in_axes=(0, 0, None), out_axes=1)(
        stack.params, stack.model_state, x)


def elbo(model: LinenModel, stack: Stack, x: jax.Array, key: jax.Array,
         sequential: bool = False) -> jax.Array:
    """One-sample ELBO of every point under every component: `[B, ...]` -> `[B, K]`.

    Component j draws its latent noise from `fold_in(key, j)`, in both forms.
    """
    k = jax.tree.leaves(stack.params)[0].shape[0]
    noise = jax.vmap(lambda j: jax.random.normal(jax.random.fold_in(key, j),
                                                 (x.shape[0],) + model.noise_shape))(
        jnp.arange(k))
    return elbo_with_noise(model, stack, x, noise, sequential)


def elbo_with_noise(model: LinenModel, stack: Stack, x: jax.Array, noise: jax.Array,
                    sequential: bool = False) -> jax.Array:
    """`elbo` with component j's latent noise given as `noise[j]` (`[K, B, ...]`)."""
    k = jax.tree.leaves(stack.params)[0].shape[0]
    if sequential:
        return jnp.stack([model.elbo(component(stack.params, j), component(stack.model_state, j),
                                     x, noise[j]) for j in range(k)], axis=1)
    return jax.vmap(model.elbo, in_axes=(0, 0, None, 0), out_axes=1)(
        stack.params, stack.model_state, x, noise)
