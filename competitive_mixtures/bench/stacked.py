"""Sections `roofline` and `stacked_vs_loop`: the stacked steps against a loop of
one-component steps, and their FLOP rates."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from competitive_mixtures import loops
from competitive_mixtures import stacking
from competitive_mixtures.state import Stack
from competitive_mixtures.bench.common import Bench, Setup, figure
from competitive_mixtures.ratio import discriminator as disc_lib


# ---------------------------------------------------------------------------
# Stacked vs loop.


def _local_model(model):
    """The model with batch norm over the local batch.

    The stacked steps run inside `shard_map` over the mesh axis `data`, over
    which batch norm averages; the loop baseline runs outside any mesh, where
    that axis is unbound. On one device both normalise over the same batch.
    """
    if hasattr(model.module, "axis_name"):
        return dataclasses.replace(model, module=model.module.clone(axis_name=None))
    return model


def _loop_m_step(model, optimizer: optax.GradientTransformation) -> Callable:
    """One jitted step of ONE component: what a user writes without the K axis.

    `step(component, batch [B, ...], key, index) -> (component, loss)`. The
    step's key is folded in on the device so that the host issues one call per
    step, as the stacked side also draws its randomness on the device.
    """
    @jax.jit
    def step(component: Stack, batch: jax.Array, key: jax.Array, index: jax.Array):
        noise = jax.random.normal(jax.random.fold_in(key, index),
                                  (batch.shape[0],) + model.noise_shape)
        (loss, model_state), grads = jax.value_and_grad(model.loss, has_aux=True)(
            component.params, component.model_state, batch, noise)
        updates, opt_state = optimizer.update(grads, component.opt_state, component.params)
        return Stack(params=optax.apply_updates(component.params, updates),
                     model_state=model_state, opt_state=opt_state), loss

    return step


def _loop_disc_step(disc_model, gen_model, optimizer: optax.GradientTransformation) -> Callable:
    """One jitted step of ONE discriminator against samples of its generator.

    `step(disc, gen, real [B, ...], key, index) -> (disc, loss)`.
    """
    loss_fn = disc_lib.discriminator_loss(disc_model)

    @jax.jit
    def step(disc: Stack, gen: Stack, real: jax.Array, key: jax.Array, index: jax.Array):
        fake = gen_model.sample(gen.params, gen.model_state, jax.random.fold_in(key, index),
                                real.shape[0])
        (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            disc.params, disc.model_state, (real, fake))
        updates, opt_state = optimizer.update(grads, disc.opt_state, disc.params)
        return Stack(params=optax.apply_updates(disc.params, updates),
                     model_state=model_state, opt_state=opt_state), loss

    return step


def _unstack(stack: Stack, k: int) -> list[Stack]:
    """K separate components, copies of the slices of the stack."""
    return [jax.tree.map(lambda leaf: jnp.array(leaf[j]), stack) for j in range(k)]


def _copy(stack: Stack) -> Stack:
    # The stacked steps donate their carry; a copy keeps the caller's stack alive.
    return jax.tree.map(jnp.copy, stack)


def _interleaved(sides: dict[str, Callable[[int], None]], num_steps: int,
                 reps: int) -> dict[str, Any]:
    """Seconds of `reps` runs of each side, alternating sides.

    Each side is `run(steps_per_component)` and blocks until its work is
    done; `run(0)` compiles it (a conv step takes seconds on a CPU, so the
    compiling call trains nothing); its seconds are under 'compile'. Then
    every side makes two untimed runs of `num_steps`: on this CPU the first
    one or two runs with steps can be slower than the later ones, with no
    compilation in them (the stacked conv M-step: 1.03 s for 1 step per
    component, then 5.1 s for 5, then 3.8-3.9 s for 5, against the loop's
    0.74 s and 3.7-3.8 s; after one untimed run of 5 steps the first timed
    one still ran at 0.72x of the next in one of two bench runs).
    """
    seconds: dict[str, Any] = {name: [] for name in sides}
    seconds["compile"] = {}
    for name, run in sides.items():
        start = time.perf_counter()
        run(0)
        seconds["compile"][name] = time.perf_counter() - start
    for _ in range(2):
        for run in sides.values():
            run(num_steps)
    for _ in range(reps):
        for name, run in sides.items():
            start = time.perf_counter()
            run(num_steps)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def _comparison_figures(prefix: str, seconds: dict[str, list[float]], k: int, n: int,
                        batch: int, num_steps: int) -> dict:
    """Rates of both sides and their ratio, from the median run of each side."""
    rates = {name: [k * num_steps / s for s in seconds[name]] for name in ("stacked", "loop")}
    median = {name: float(np.median(r)) for name, r in rates.items()}
    common = dict(steps_per_component=num_steps, reps=len(seconds["stacked"]))
    return {
        f"{prefix}_stacked": figure(median["stacked"], "component-steps/s", k, n, batch,
                                    runs=rates["stacked"], **common),
        f"{prefix}_loop": figure(median["loop"], "component-steps/s", k, n, batch,
                                 runs=rates["loop"], **common),
        f"{prefix}_speedup": figure(median["stacked"] / median["loop"], "x", k, n, batch,
                                    **common),
    }


def _flops(jitted: Callable, *args) -> float:
    """FLOPs of one call of a jitted function, by XLA's cost analysis of its compiled program."""
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float((analysis or {}).get("flops", float("nan")))


def score_flops_per_point(model, stack, x: jax.Array) -> float:
    """FLOPs of scoring one point with all K discriminators of `stack`, by XLA's cost
    analysis of the K forward passes in straight-line code (cost analysis counts
    a loop's body once, so the 'map' form the scorer may run would undercount)."""
    logits = jax.jit(lambda stack, x: stacking.logits(model, stack, x, "sequential"))
    return _flops(logits, stack, x) / x.shape[0]


def roofline_figures(prefix: str, flops_per_point: float, points_per_second: float,
                     matmul: float, k: Any, n: Any, batch: Any) -> dict:
    """A conv figure against the machine's limit: achieved GFLOP/s, that rate as a
    fraction of `matmul` GFLOP/s, and the points per second the matmul rate allows."""
    gflops = flops_per_point * points_per_second / 1e9
    return {
        f"{prefix}_gflops": figure(gflops, "GFLOP/s", k, n, batch,
                                   flops_per_point=flops_per_point),
        f"{prefix}_matmul_fraction": figure(gflops / matmul, "x", k, n, batch,
                                            matmul_gflops=matmul),
        f"{prefix}_points_per_second_at_matmul_rate": figure(
            matmul * 1e9 / flops_per_point, "points/s", k, n, batch,
            note="the bound if these FLOPs ran at matmul_gflops"),
    }


def _group_args(groups: int) -> tuple:
    return () if groups == 1 else (jnp.int32(0),)


def m_step_flops(setup: Setup, gen: Stack, sets, key: jax.Array) -> float:
    """FLOPs of one component-step of the stacked M-step (its programs run one step per
    call, one call per group of components), by XLA's cost analysis."""
    programs, k = setup.programs, setup.k
    per_call = _flops(programs.m_step, gen, setup.x, sets, jnp.zeros(k, jnp.int32),
                      jnp.int32(0), key, *_group_args(programs.m_groups))
    return per_call * programs.m_groups / k


def _rate_figures(prefix: str, flops: dict[str, float], rates: dict[str, float], k: int,
                  n: int, batch: int, matmul: float | None) -> dict:
    """Achieved GFLOP/s of each side (FLOPs per component-step x rate) and the
    stacked side's fraction of the matmul rate."""
    out = {}
    for side in ("stacked", "loop"):
        if np.isfinite(flops[side]):
            out[f"{prefix}_{side}_gflops"] = figure(flops[side] * rates[side] / 1e9, "GFLOP/s",
                                                    k, n, batch,
                                                    flops_per_component_step=flops[side])
    if matmul and f"{prefix}_stacked_gflops" in out:
        out[f"{prefix}_matmul_fraction"] = figure(
            out[f"{prefix}_stacked_gflops"]["value"] / matmul, "x", k, n, batch,
            matmul_gflops=matmul)
    return out


def _compared(prefix: str, seconds: dict, setup: Setup, batch: int, num_steps: int,
              flops: dict[str, float] | None, matmul: float | None) -> dict:
    """A comparison's figures: both sides' rates and their ratio, and with `flops` (per
    component-step of each side, for straight-line steps) their GFLOP/s, the stacked
    side's fraction of `matmul` and its compile seconds."""
    figures = _comparison_figures(prefix, seconds, setup.k, setup.n, batch, num_steps)
    if flops is not None:
        rates = {side: figures[f"{prefix}_{side}"]["value"] for side in flops}
        figures.update(_rate_figures(prefix, flops, rates, setup.k, setup.n, batch, matmul))
        figures[f"{prefix}_compile_seconds"] = figure(seconds["compile"]["stacked"], "s",
                                                      setup.k, setup.n, batch)
    return figures


def compare_m_step(setup: Setup, num_steps: int, reps: int, prefix: str,
                   matmul: float | None = None) -> dict:
    """The project's stacked M-step against a loop over K one-component steps.

    Both sides take `num_steps` steps of every component with the config's
    batch size, each component drawing its batch from its own points of the
    random pre-training split. For straight-line steps (one step per call)
    the figures include each side's GFLOP/s, the stacked side's fraction of
    `matmul` GFLOP/s and its compile seconds.
    """
    programs, config, k = setup.programs, setup.config, setup.k
    batch = config.batch_size
    key = jax.random.PRNGKey(1)
    state = setup.fresh_state()
    gen = _copy(state.gen)
    components = _unstack(state.gen, k)
    loop_step = _loop_m_step(_local_model(programs.gen_model), programs.gen_optimizer)
    owner = np.asarray(state.owner)
    owned = [np.flatnonzero(owner == j) for j in range(k)]
    rng = np.random.default_rng(0)
    group = _group_args(programs.m_groups)

    def stacked(steps_per_component: int) -> None:
        nonlocal gen
        # The host driver of `train.run_round`: one call per chunk of steps
        # and group of components (and one call that masks every step when
        # there are none).
        gen, _ = loops.run_chunks(programs.m_step, gen, np.full(k, steps_per_component),
                                   programs.m_chunk, key, setup.x, state.sets,
                                   groups=programs.m_groups)
        if not steps_per_component:
            gen = programs.m_step(gen, setup.x, state.sets, jnp.zeros(k, jnp.int32),
                                  jnp.int32(0), key, *group)[0]
        jax.block_until_ready(gen)

    def loop(steps_per_component: int) -> None:
        if not steps_per_component:
            jax.block_until_ready(loop_step(components[0], setup.x_host[:batch], key, np.int32(0)))
        for s in range(steps_per_component):
            for j in range(k):
                batch_x = setup.x_host[owned[j][rng.integers(len(owned[j]), size=batch)]]
                components[j], _ = loop_step(components[j], batch_x, key, np.int32(s * k + j))
        jax.block_until_ready(components)

    seconds = _interleaved({"stacked": stacked, "loop": loop}, num_steps, reps)
    flops = None
    if programs.m_chunk == 1:
        flops = {"stacked": m_step_flops(setup, gen, state.sets, key),
                 "loop": _flops(loop_step, components[0], setup.x_host[:batch], key,
                                np.int32(0))}
    return _compared(prefix, seconds, setup, batch, num_steps, flops, matmul)


def compare_disc_step(setup: Setup, num_steps: int, reps: int, prefix: str,
                      matmul: float | None = None) -> dict:
    """The project's stacked discriminator step against a loop over K one-disc steps.

    Both sides take `num_steps` steps of every discriminator: a real batch
    drawn from the whole data, a fake batch sampled from its generator.
    Figures as in `compare_m_step`.
    """
    programs, config, k = setup.programs, setup.config, setup.k
    batch = config.disc.batch_size
    key = jax.random.PRNGKey(2)
    state = setup.fresh_state()
    disc, gen = _copy(state.disc), state.gen
    discs, gens = _unstack(state.disc, k), _unstack(gen, k)
    loop_step = _loop_disc_step(programs.disc_model, _local_model(programs.gen_model),
                                programs.disc_optimizer)
    rng = np.random.default_rng(0)
    ratio = programs.ratio
    group = _group_args(ratio.groups)

    def stacked(steps_per_component: int) -> None:
        nonlocal disc
        disc, _ = loops.run_chunks(programs.disc_step, disc, np.full(k, steps_per_component),
                                    ratio.chunk, key, gen, setup.x, groups=ratio.groups)
        if not steps_per_component:
            disc = programs.disc_step(disc, gen, setup.x, jnp.zeros(k, jnp.int32),
                                      jnp.int32(0), key, *group)[0]
        jax.block_until_ready(disc)

    def loop(steps_per_component: int) -> None:
        if not steps_per_component:
            jax.block_until_ready(
                loop_step(discs[0], gens[0], setup.x_host[:batch], key, np.int32(0)))
        for s in range(steps_per_component):
            for j in range(k):
                real = setup.x_host[rng.integers(setup.n, size=batch)]
                discs[j], _ = loop_step(discs[j], gens[j], real, key, np.int32(s * k + j))
        jax.block_until_ready(discs)

    seconds = _interleaved({"stacked": stacked, "loop": loop}, num_steps, reps)
    flops = None
    if ratio.chunk == 1:
        per_call = _flops(programs.disc_step, disc, gen, setup.x, jnp.zeros(k, jnp.int32),
                          jnp.int32(0), key, *group)
        flops = {"stacked": per_call * ratio.groups / k,
                 "loop": _flops(loop_step, discs[0], gens[0], setup.x_host[:batch], key,
                                np.int32(0))}
    return _compared(prefix, seconds, setup, batch, num_steps, flops, matmul)


def time_m_step_images(setup: Setup, num_steps: int, reps: int) -> float:
    """Images per second the stacked M-step trains (K components, their batch each)."""
    programs, k = setup.programs, setup.k
    state = setup.fresh_state()
    gen = _copy(state.gen)
    rates = []
    for rep in range(reps + 1):
        start = time.perf_counter()
        gen, _ = loops.run_chunks(programs.m_step, gen, np.full(k, num_steps), programs.m_chunk,
                                   jax.random.PRNGKey(rep), setup.x, state.sets,
                                   groups=programs.m_groups)
        jax.block_until_ready(gen)
        if rep:  # The first pass compiles.
            rates.append(k * num_steps * setup.config.batch_size / (time.perf_counter() - start))
    return float(np.median(rates))




def roofline_section(bench: Bench) -> dict:
    return {"figures": {"matmul_gflops": figure(bench.matmul_gflops(), "GFLOP/s", "-", 2048,
                                                "-", note="float32 2048x2048 jnp.dot, best of 5")}}


def stacked_vs_loop_section(bench: Bench) -> dict:
    sizes, figures = bench.sizes, {}
    matmul = bench.matmul_gflops()
    setup = bench.setup("paper")
    num_steps = sizes.vs_loop_mlp_chunks * setup.config.steps_per_chunk
    figures.update(compare_m_step(setup, num_steps, sizes.reps, "mlp_vae_m_step"))
    figures.update(compare_disc_step(setup, num_steps, sizes.reps, "mlp_disc_step"))
    # The paper's MNIST networks at K=15 in the platform's default form, then vmapped.
    setup = bench.setup("digits")
    figures.update(compare_m_step(setup, sizes.vs_loop_conv_steps, sizes.vs_loop_conv_reps,
                                  "conv_vae_m_step", matmul))
    figures.update(compare_disc_step(setup, sizes.vs_loop_conv_steps, sizes.vs_loop_conv_reps,
                                     "conv_disc_step", matmul))
    figures.update(compare_m_step(bench.setup("digits_vmap"), 1, 1, "conv_vae_m_step_vmap",
                                  matmul))
    setup = bench.setup("digits_quick")
    programs, k, batch = setup.programs, setup.k, setup.config.batch_size
    images = time_m_step_images(setup, sizes.vs_loop_conv_steps, sizes.reps)
    figures["digits_m_step_images_per_second"] = figure(
        images, "images/s", k, setup.n, batch, stack_mode=programs.gen_model.stack_mode)
    if programs.m_chunk == 1:
        state = setup.fresh_state()
        per_image = m_step_flops(setup, state.gen, state.sets, jax.random.PRNGKey(0)) / batch
        figures.update(roofline_figures("digits_m_step", per_image, images, matmul, k,
                                        setup.n, batch))
    return {"figures": figures}
