"""Section `assign`: point-component scores per second of the assignment pass."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from competitive_mixtures import train
from competitive_mixtures.bench.common import Bench, Setup, figure
from competitive_mixtures.bench.stacked import roofline_figures, score_flops_per_point


# ---------------------------------------------------------------------------
# Assignment pass throughput.


def time_assignment(setup: Setup, reps: int) -> dict:
    """Seconds of `score_dataset` and of the assigner in the median of `reps` passes."""
    programs, config = setup.programs, setup.config
    batch = min(config.assign.batch_size, setup.n)
    disc = setup.fresh_state().disc
    # Compiles both on one batch and on zeros: a pass of conv discriminators
    # takes minutes on a CPU.
    jax.block_until_ready(train.score_dataset(programs, disc, setup.x[:batch], batch))
    jax.block_until_ready(programs.assigner(jnp.zeros((setup.n, setup.k))))

    def once() -> tuple[float, float]:
        start = time.perf_counter()
        scores = jax.block_until_ready(
            train.score_dataset(programs, disc, setup.x, config.assign.batch_size))
        middle = time.perf_counter()
        jax.block_until_ready(programs.assigner(scores))
        return middle - start, time.perf_counter() - middle

    passes = sorted((once() for _ in range(reps)), key=sum)
    score_seconds, assigner_seconds = passes[(reps - 1) // 2]
    return {"seconds": score_seconds + assigner_seconds, "score_seconds": score_seconds,
            "assigner_seconds": assigner_seconds}


def assign_section(bench: Bench) -> dict:
    figures = {}
    for name, model in (("paper", "mlp"), ("digits", "conv")):
        setup = bench.setup(name)
        timing = time_assignment(setup, bench.sizes.reps)
        k, n, batch = setup.k, setup.n, setup.config.assign.batch_size
        figures[f"{model}_scores_per_second"] = figure(
            n * k / timing["seconds"], "scores/s", k, n, batch,
            score_seconds=timing["score_seconds"], assigner_seconds=timing["assigner_seconds"])
        figures[f"{model}_seconds"] = figure(timing["seconds"], "s", k, n, batch)
        if model == "conv":
            flops = score_flops_per_point(setup.programs.disc_model, setup.fresh_state().disc,
                                          setup.x_host[:batch])
            figures.update(roofline_figures("conv_score", flops, n / timing["score_seconds"],
                                            bench.matmul_gflops(), k, n, batch))
    return {"figures": figures}
