"""One data-parallel layout for 1 to N devices on one or many hosts.

A 1-D `jax.sharding.Mesh` with axis `data` spans every device of every host.
The stacked K-component state is replicated; batches `[K, B, ...]` are split
on B, and the assignment pass's points on N. Per-device programs are written
with `jax.shard_map` under `jax.jit` (the pmap-style step: each device runs
the same program on its slice, gradients are averaged explicitly with
`pmean`); everything outside them is ordinary jitted code on global arrays.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A mesh with one `data` axis over `devices` (default: all devices of all hosts)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(devices, (AXIS,))


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
