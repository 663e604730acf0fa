"""The N training points on the devices, each host holding only its share.

`Points` is one global array split on N over the mesh's `data` axis: every
device holds R = ceil(N / D) consecutive rows (the last rows of the last
device are zero padding, never read as points). A host loads only the rows of
its own devices (`local_rows`, `from_local`), so no host ever holds the whole
dataset.

Steps read points by index with `take`: every device gathers the requested
rows it holds, zeros elsewhere, and a sum over the devices (a reduce-scatter
when the batch is split) hands every device its rows. Each row comes from
exactly one device, so the sum is exact and the batch is bit-identical to
indexing a replicated array: a run gives the same numbers on any number of
devices and hosts.

Every function here also takes a plain array (replicated or on one device)
where it takes `Points`, and then indexes it directly.
"""

from __future__ import annotations

import functools
from typing import Union

import flax.struct
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P
import numpy as np

from competitive_mixtures import sharding


@flax.struct.dataclass
class Points:
    """Attributes:
      x: `[D * R, ...]` the points split on axis 0 over `mesh`, rows >= n padding.
      n: number of points N.
      mesh: the mesh whose `data` axis splits them.
    """

    x: jax.Array
    n: int = flax.struct.field(pytree_node=False)
    mesh: Mesh = flax.struct.field(pytree_node=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the points themselves, `(N, *data_shape)`."""
        return (self.n,) + tuple(self.x.shape[1:])

    @property
    def dtype(self):
        return self.x.dtype

    def __getitem__(self, index) -> jax.Array:
        """Rows by integer array or slice, replicated on every device."""
        if isinstance(index, slice):
            index = np.arange(*index.indices(self.n), dtype=np.int32)
        return take(self, index)


Data = Union[Points, jax.Array, np.ndarray]


def rows_per_device(n: int, mesh: Mesh) -> int:
    return -(-n // mesh.devices.size)


def local_rows(n: int, mesh: Mesh) -> tuple[int, int]:
    """`[start, stop)`: the rows of the N points that this process's devices hold.

    The smallest range covering them (contiguous when, as usual, a process's
    devices are consecutive in the mesh), clipped to the N real points.
    """
    rows = rows_per_device(n, mesh)
    local = [i for i, device in enumerate(mesh.devices.flat)
             if device.process_index == jax.process_index()]
    return min(min(local) * rows, n), min((max(local) + 1) * rows, n)


def from_local(local: np.ndarray, start: int, n: int, mesh: Mesh) -> Points:
    """`Points` from this process's rows `local` (`[stop - start, ...]`, rows start.. of N).

    `local` must cover `local_rows(n, mesh)`; every process calls this with its own share.
    """
    local = np.asarray(local)
    rows = rows_per_device(n, mesh)
    shape = (rows * mesh.devices.size,) + local.shape[1:]

    def shard(index: tuple[slice, ...]) -> np.ndarray:
        begin, end, _ = index[0].indices(shape[0])
        out = np.zeros((end - begin,) + local.shape[1:], local.dtype)
        real = max(0, min(end, n) - begin)
        if real:
            if begin < start or begin + real > start + local.shape[0]:
                raise ValueError(f"rows [{begin}, {begin + real}) of the points are not in "
                                 f"this process's share [{start}, {start + local.shape[0]})")
            out[:real] = local[begin - start:begin - start + real]
        return out

    x = jax.make_array_from_callback(shape, sharding.points_sharding(mesh), shard)
    return Points(x=x, n=n, mesh=mesh)


def put(host: np.ndarray, mesh: Mesh) -> Points:
    """`Points` from a host array of all N points (each process keeps only its rows)."""
    return from_local(host, 0, host.shape[0], mesh)


def take(points: Data, index: jax.Array, split_axis: int | None = None) -> jax.Array:
    """`points[index]` for integer `index` (any shape, values in [0, N)).

    With `split_axis` the result is split over the mesh on that axis of
    `index` (which must divide by the device count), else replicated.
    """
    if not isinstance(points, Points):
        return points[index]
    if points.mesh.devices.size == 1:
        return points.x[index]
    return _take_split(points.x, jnp.asarray(index, jnp.int32), points.mesh, split_axis)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _take_split(x: jax.Array, index: jax.Array, mesh: Mesh,
                split_axis: int | None) -> jax.Array:
    feature_dims = x.ndim - 1
    # Collectives sum uint8 images as bfloat16, which holds 0..255 exactly.
    wire = jnp.bfloat16 if x.dtype == jnp.uint8 else x.dtype

    def local(x_local: jax.Array, index: jax.Array) -> jax.Array:
        rows = x_local.shape[0]
        local_index = index - jax.lax.axis_index(sharding.AXIS) * rows
        mine = (local_index >= 0) & (local_index < rows)
        found = x_local[jnp.clip(local_index, 0, rows - 1)].astype(wire)
        found = jnp.where(mine.reshape(mine.shape + (1,) * feature_dims), found, 0)
        if split_axis is None:
            return jax.lax.psum(found, sharding.AXIS)
        return jax.lax.psum_scatter(found, sharding.AXIS, scatter_dimension=split_axis,
                                    tiled=True)

    out_spec = P() if split_axis is None else P(*([None] * split_axis), sharding.AXIS)
    out = jax.shard_map(local, mesh=mesh, in_specs=(P(sharding.AXIS), P()),
                        out_specs=out_spec)(x, index)
    return out.astype(x.dtype)


def full(points: Data) -> jax.Array:
    """All N points as one replicated array (for estimators that need every point at once)."""
    if not isinstance(points, Points):
        return points
    return sharding.replicate(points.x, points.mesh)[:points.n]


def to_host(points: Data) -> np.ndarray:
    """All N points as a host array on every process."""
    return np.asarray(full(points))
