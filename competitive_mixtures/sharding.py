"""One data-parallel layout for 1 to N devices on one or many hosts.

A 1-D `jax.sharding.Mesh` with axis `data` spans every device of every host.
The stacked K-component state is replicated; batches `[K, B, ...]` are split
on B, and the assignment pass's points on N. Per-device programs are written
with `jax.shard_map` under `jax.jit` (the pmap-style step: each device runs
the same program on its slice, gradients are averaged explicitly with
`pmean`; on one device the training steps have no collectives, see
`step_axis`); everything outside them is ordinary jitted code on global
arrays.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from competitive_mixtures.config import choices

AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A mesh with one `data` axis over `devices` (default: all devices of all hosts).

    The axis is `Auto`: the programs place data with sharding constraints and
    `shard_map`, not with explicit-sharding types (`jax.make_mesh`'s default).
    """
    devices = jax.devices() if devices is None else list(devices)
    return jax.make_mesh((len(devices),), (AXIS,), axis_types=(AxisType.Auto,),
                         devices=devices)


def step_axis(mesh: Mesh) -> str | None:
    """The mesh axis the training steps average over: `AXIS`, or None on one device.

    On one device a step is built with no collectives at all (batch norm and
    the loss local, no replication check): XLA:CPU keeps an all-reduce over a
    single device in the compiled step. Without them the paper's conv M-step
    (K = 15) ran at 0.996-1.128x its former rate (median 1.013x) in 8 paired
    repetitions in one process; the discriminator step at 0.96-1.10x (median
    1.0x).
    """
    return AXIS if mesh.devices.size > 1 else None


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """`[K, B, ...]` batches split on B."""
    return NamedSharding(mesh, P(None, AXIS))


def points_sharding(mesh: Mesh) -> NamedSharding:
    """`[N, ...]` arrays of points split on N."""
    return NamedSharding(mesh, P(AXIS))


def check_divisible(size: int, mesh: Mesh, field: str) -> None:
    """Raises ValueError unless `size` splits evenly over the mesh's devices."""
    n = mesh.devices.size
    if size % n:
        raise ValueError(f"config.{field}={size} must be divisible by the number of devices "
                         f"({n}); choose a multiple of {n}")


def put(host: np.ndarray, target: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full.

    Each process places only the slices its own devices hold, so this works
    for meshes that span several hosts (plain `device_put` does not).
    """
    host = np.asarray(host)
    return jax.make_array_from_callback(host.shape, target, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every leaf of `tree` as an array replicated over `mesh`.

    Leaves may be host values, process-local arrays (equal on every process)
    or global arrays of any sharding.
    """
    target = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, target)
    reshard = jax.jit(lambda leaf: leaf, out_shardings=target)

    def one(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return reshard(leaf)
        return put(np.asarray(leaf), target)

    return jax.tree.map(one, tree)


def resolve_stack_mode(mode: str, convolutional: bool) -> str:
    """The stack mode 'auto' stands for here: 'sequential' for convolutional networks
    on CPU, 'vmap' otherwise; other modes are returned as they are.

    On XLA:CPU a vmapped convolution becomes a grouped convolution, which ran
    6x slower than K plain convolutions side by side (the conv VAE and
    discriminator steps of the paper's MNIST networks at K=15). GPUs and TPUs
    run grouped convolutions natively, and one batched program is what they
    run best.
    """
    if mode not in choices.STACK_MODES:
        raise ValueError(f"stack mode must be one of {choices.STACK_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    return "sequential" if convolutional and jax.default_backend() == "cpu" else "vmap"
