"""Section `memory`: host and device memory while CelebA-sized images are scored."""

from __future__ import annotations

import dataclasses
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from competitive_mixtures import config as config_lib
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import train
from competitive_mixtures.bench.common import CELEBA_SHAPE, Bench, figure
from competitive_mixtures.bench.stacked import roofline_figures, score_flops_per_point

try:
    import psutil
except ImportError:  # The bench's memory figures need it; the product does not.
    raise SystemExit("the bench needs psutil: pip install -e '.[bench]'") from None


# ---------------------------------------------------------------------------
# Memory of the assignment pass on a CelebA-sized host array.


def _reset_peak_rss() -> bool:
    """Resets this process's peak resident set size (Linux); False where not possible.

    `ru_maxrss` is the peak of the whole process, earlier sections included;
    after a reset, the reading after the pass is the pass's own peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def memory_section(bench: Bench, memory_points: int | None) -> dict:
    """Peak host memory and device buffers while `score_dataset` streams a host array.

    configs/celeba.py's discriminators (K=5, 3x128 filters of 3x3) score a
    CelebA-sized uint8 array held on the host, streaming its first
    `memory_points` images (all by default). What the pass holds per batch
    does not depend on how many batches it runs; only the `[N, K]` scores grow
    with N.
    """
    sizes = bench.sizes
    config = config_lib.load_config_file("celeba", None, bench.config_dir)
    config.assign.batch_size = batch = sizes.memory_batch or config.assign.batch_size
    k = config.num_components
    scored = sizes.memory_points if memory_points is None else memory_points
    held = max(sizes.memory_array_points, scored)
    programs = train.make_programs(config, CELEBA_SHAPE)
    disc = stacking.init(programs.disc_model, programs.disc_optimizer,
                         jax.random.split(jax.random.PRNGKey(0), k),
                         np.zeros((8,) + CELEBA_SHAPE, np.uint8))

    def temp_bytes(size: int) -> int:
        """XLA temporaries of one scoring call on `size` images (compiled, never run)."""
        spec = jax.ShapeDtypeStruct((size,) + CELEBA_SHAPE, jnp.uint8,
                                    sharding=sharding.points_sharding(programs.mesh))
        analysis = programs.score.lower(disc, spec).compile().memory_analysis()
        return -1 if analysis is None else int(analysis.temp_size_in_bytes)

    default_batch = config_lib.base_config().assign.batch_size

    rss_before = psutil.Process().memory_info().rss
    # Random content, so that every page of the array is resident.
    x = np.random.default_rng(0).integers(0, 256, (held,) + CELEBA_SHAPE, dtype=np.uint8)
    rss_with_data = psutil.Process().memory_info().rss

    # CPU devices report no memory_stats; live arrays then give the device buffers.
    use_memory_stats = jax.devices()[0].memory_stats() is not None
    largest = {"buffer": 0, "live": 0}

    def sampled_score(stack, batch_x):
        # Sampled after each batch: what stays alive between the batches of the pass.
        scores = jax.block_until_ready(programs.score(stack, batch_x))
        if use_memory_stats:
            stats = jax.devices()[0].memory_stats()
            largest["buffer"] = max(largest["buffer"], stats.get("largest_alloc_size", 0))
            largest["live"] = max(largest["live"], stats.get("peak_bytes_in_use", 0))
        else:
            sizes_now = [a.nbytes for a in jax.live_arrays()]
            largest["buffer"] = max(largest["buffer"], max(sizes_now))
            largest["live"] = max(largest["live"], sum(sizes_now))
        return scores

    sampling = dataclasses.replace(programs, score=sampled_score)
    # Compiles outside the measured pass.
    jax.block_until_ready(train.score_dataset(sampling, disc, x[:batch], batch))
    reset = _reset_peak_rss()
    start = time.perf_counter()
    scores = jax.block_until_ready(train.score_dataset(sampling, disc, x[:scored], batch))
    seconds = time.perf_counter() - start
    peak = _peak_rss_bytes()
    dataset_bytes = x.nbytes
    flops = score_flops_per_point(programs.disc_model, disc, x[:batch])
    del x
    common = dict(points_held=held, points_scored=scored)
    source = "memory_stats" if use_memory_stats else "live_arrays"
    return {"figures": {
        "host_peak_rss_bytes": figure(peak, "bytes", k, scored, batch, peak_reset=reset,
                                      **common),
        "host_rss_before_data_bytes": figure(rss_before, "bytes", k, scored, batch, **common),
        "host_rss_with_data_bytes": figure(rss_with_data, "bytes", k, scored, batch, **common),
        "dataset_bytes": figure(dataset_bytes, "bytes", k, held, batch, dtype="uint8",
                                float32_bytes=4 * dataset_bytes),
        "largest_device_buffer_bytes": figure(largest["buffer"], "bytes", k, scored, batch,
                                              source=source, **common),
        "peak_live_device_bytes": figure(largest["live"], "bytes", k, scored, batch,
                                         source=source, **common),
        "scores_bytes": figure(int(scores.nbytes), "bytes", k, scored, batch, **common),
        "score_temp_bytes": figure(temp_bytes(batch), "bytes", k, scored, batch,
                                   note="XLA temporaries of one scoring call"),
        "score_temp_bytes_at_default_batch": figure(
            temp_bytes(default_batch), "bytes", k, scored, default_batch,
            note="at base_config().assign.batch_size; compiled only, never run"),
        "seconds": figure(seconds, "s", k, scored, batch, **common),
        "points_per_second": figure(scored / seconds, "points/s", k, scored, batch, **common),
        **roofline_figures("score", flops, scored / seconds, bench.matmul_gflops(), k, scored,
                           batch),
    }}
