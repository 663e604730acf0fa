"""Speed and memory of the stacked K-component code (docs/guide.md, "How it is fast").

    python -m competitive_mixtures.bench [--quick] [--output_dir=bench_results]
        [--only=round,recompilation,growth,stacked_vs_loop,assign,memory]
        [--memory_points=N]

Sections:
  round            one paper-scale round (configs/synthetic.py:modes=9,paper:
                   K=9, N=64k) split into M-step, discriminator fit and
                   assignment pass, after a warm-up round; its compile time;
  recompilation    compilations and jit cache entries (traces) over those rounds;
  growth           round time against K and against N (table and growth.png);
  roofline         the machine's float32 matmul rate (`matmul_gflops`, a
                   2048x2048 jnp.dot, best of several): every conv figure
                   (training steps, the digits M-step, conv scoring) is also
                   given in GFLOP/s (FLOPs from XLA's cost analysis of the
                   compiled program), as a fraction of this rate, and as the
                   rate these FLOPs would allow at it (`*_at_matmul_rate`);
  stacked_vs_loop  component-steps per second of the fused stacked M-step and
                   discriminator step against a Python loop over K separately
                   jitted one-component steps doing the same work: MLP VAE at
                   K=9 on the synthetic set; the paper's MNIST conv VAE and
                   64-128-256 discriminator at K=15 (configs/mnist.py:paper,
                   offline) in the platform's default stack mode and, for the
                   VAE, vmapped; the compile seconds of those steps; and the
                   images per second of the offline digits preset's M-step;
  assign           point-component scores per second of the assignment pass;
  memory           peak host memory and largest device buffer while conv
                   discriminators score a CelebA-sized uint8 array on the host.

Every figure goes to OUTPUT_DIR/bench.json with its unit, K, N and batch size;
the targets are printed as PASS/MISS. Both sides of every comparison run in
this one process, interleaved, so their ratio holds on a noisy machine.
`--quick` runs every section at tiny sizes (bench.json has the same
structure); the tests run it and check only that structure, never a timing.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import os
import platform
import resource
import sys
import time
from typing import Any, Callable, Iterator

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

try:
    import psutil
except ImportError:  # The bench's memory figures need it; the product does not.
    raise SystemExit("the bench needs psutil: pip install -e '.[bench]'") from None

from competitive_mixtures import config as config_lib
from competitive_mixtures import experiments
from competitive_mixtures import data as data_lib
from competitive_mixtures import points as points_lib
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import steps
from competitive_mixtures import train
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.state import Stack

# In running order. Memory first, so that the process holds nothing of other
# sections while its peak is read; then the rounds, so that their warm-up
# round is what compiles the programs that the later sections reuse.
SECTIONS = ("roofline", "memory", "round", "recompilation", "growth", "stacked_vs_loop",
            "assign")

# The aligned CelebA training set at the models' resolution.
CELEBA_POINTS = 202599
CELEBA_SHAPE = (64, 64, 3)

_QUICK = flags.DEFINE_bool(
    "quick", False, "Tiny sizes: every section in well under a minute; bench.json has the "
    "same structure.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "bench_results",
                                  "Folder for bench.json and growth.png.")
_ONLY = flags.DEFINE_list("only", [], f"Sections to run (default all): {', '.join(SECTIONS)}.")
_MEMORY_POINTS = flags.DEFINE_integer(
    "memory_points", None,
    f"Images the memory section scores (default all {CELEBA_POINTS} of the CelebA-sized host "
    "array, which is enlarged if this is larger).")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each section does; `--quick` swaps in `QUICK`."""

    # N and K of the paper-scale round (configs/synthetic.py:modes=9,paper);
    # the MLP comparison and assignment pass use the same setting.
    round_points: int
    round_components: int
    # Pre-training epochs of the warm-up round (0: the paper's).
    pretrain_epochs: int
    # Rounds timed after the warm-up round.
    timed_rounds: int
    growth_components: tuple[int, ...]
    growth_points: tuple[int, ...]
    # Steps per component on each side of a stacked-vs-loop comparison, in
    # chunks of the setting's `steps_per_chunk`: whole chunks, because steps
    # of a chunk past `num_steps` are masked, work the loop would not do.
    vs_loop_mlp_chunks: int
    # Steps per component of the conv comparisons (their steps run one per call).
    vs_loop_conv_steps: int
    # Repetitions of every timed comparison (interleaved) and assignment pass.
    reps: int
    # configs/mnist.py arguments and K of the conv comparison and assignment
    # pass, and the arguments of the offline digits preset whose M-step is timed.
    digits_arg: str
    digits_components: int
    digits_quick_arg: str
    # Batch size of the conv setting's M-step and discriminators (0: the config's).
    digits_batch: int
    # The memory section: images held on the host, images scored, batch size
    # (0: configs/celeba.py's assign.batch_size).
    memory_array_points: int
    memory_points: int
    memory_batch: int


FULL = Sizes(round_points=64000, round_components=9, pretrain_epochs=0, timed_rounds=3,
             growth_components=(1, 3, 9, 15, 30), growth_points=(16000, 64000, 256000),
             vs_loop_mlp_chunks=2, vs_loop_conv_steps=3, reps=3,
             digits_arg="paper,offline", digits_components=15, digits_quick_arg="offline",
             digits_batch=0,
             memory_array_points=CELEBA_POINTS, memory_points=CELEBA_POINTS, memory_batch=0)
# Every new setting costs seconds of compilation even at these sizes, so the
# growth table has one new point only (K=1).
QUICK = Sizes(round_points=2000, round_components=3, pretrain_epochs=1, timed_rounds=3,
              growth_components=(1, 3), growth_points=(2000,),
              vs_loop_mlp_chunks=1, vs_loop_conv_steps=1, reps=1,
              digits_arg="offline,small", digits_components=3,
              digits_quick_arg="offline,small", digits_batch=8,
              memory_array_points=16, memory_points=16, memory_batch=8)

# Paper-scale targets on the 2-core CPU.
TARGET_SPEEDUP = 5.0
# The conv steps (paper's MNIST networks, K=15): stacked vs loop, achieved share of
# the matmul rate, compile seconds; images/s of the offline digits preset's M-step
# (3x the 385 of the vmapped form); CelebA-sized scoring (5x the 140 of lax.map).
TARGETS_CONV = {"conv_vae_m_step_speedup": 1.2, "conv_disc_step_speedup": 1.2,
                "conv_vae_m_step_matmul_fraction": 0.15,
                "conv_disc_step_matmul_fraction": 0.35,
                "conv_vae_m_step_compile_seconds": 60.0,
                "conv_disc_step_compile_seconds": 60.0,
                "digits_m_step_images_per_second": 3 * 385.0}
TARGET_CELEBA_SCORES_PER_SECOND = 5 * 140.0
TARGET_ROUND_SECONDS = 5.0
TARGET_SCORES_PER_SECOND = 2e6
MEMORY_HEADROOM_BYTES = 2 * 2**30


def figure(value: Any, unit: str, k: Any, n: Any, batch: Any, **extra) -> dict:
    """One measured figure as it appears in bench.json."""
    return {"value": value, "unit": unit, "K": k, "N": n, "batch": batch, **extra}


class CompileMonitor:
    """Counts XLA compilations and traces by function name, and sums the seconds spent
    tracing, lowering, compiling.

    Listens to the events `jax.monitoring` records for every cache miss of a
    jitted function (and of every op first run eagerly with new shapes).
    """

    _TRACE = "/jax/core/compile/jaxpr_trace_duration"
    _BACKEND = "/jax/core/compile/backend_compile_duration"
    _EVENTS = (_TRACE, "/jax/core/compile/jaxpr_to_mlir_module_duration", _BACKEND)

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        # Traces by function name: each trace of a jitted function adds an entry
        # to its cache (the public stand-in for the cache's size).
        self.traces: collections.Counter = collections.Counter()

    def _listen(self, event: str, duration: float, **kwargs) -> None:
        if event in self._EVENTS:
            self.seconds += duration
        if event == self._BACKEND:
            self.count += 1
        if event == self._TRACE:
            self.traces[kwargs.get("fun_name")] += 1

    def __enter__(self) -> "CompileMonitor":
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)


# ---------------------------------------------------------------------------
# Configs and their data and programs.


def synthetic_config(config_dir: str, num_points: int, k: int,
                     pretrain_epochs: int = 0) -> ml_collections.ConfigDict:
    """The paper's synthetic setting on the 9-mode set, with N, K and (unless 0) the
    pre-training epochs set."""
    config = config_lib.load_config_file("synthetic", "modes=9,paper", config_dir)
    config.num_components = k
    config.pretrain_epochs = pretrain_epochs or config.pretrain_epochs
    config.data.num_points = num_points
    # validate() allows at most N/K balancing points: this leaves the paper's
    # 1000 unchanged at every full size and lowers it only for --quick.
    config.balance.min_points = min(config.balance.min_points, num_points // k)
    config_lib.validate(config, num_points)
    return config


def digits_config(config_dir: str, arg: str, components: int, batch: int = 0,
                  stack_mode: str = "auto") -> ml_collections.ConfigDict:
    """configs/mnist.py:ARG (conv VAEs on the offline digits) with K, batch and stack mode set."""
    config = config_lib.load_config_file("mnist", arg, config_dir)
    config.num_components = components
    if batch:
        config.batch_size = config.disc.batch_size = batch
    config.stack_mode = stack_mode
    if stack_mode == "vmap":  # Straight-line steps, one per call, as the sequential form.
        config.steps_per_chunk, config.unroll_steps = 1, True
    config_lib.validate(config)
    return config


@dataclasses.dataclass
class Setup:
    """A config's data and compiled programs, placed the way `train` places them."""

    config: ml_collections.ConfigDict
    programs: train.Programs
    x_host: np.ndarray
    x: points_lib.Points
    _init: Callable | None = None

    @property
    def k(self) -> int:
        return self.config.num_components

    @property
    def n(self) -> int:
        return self.x_host.shape[0]

    def fresh_state(self):
        """A new state: random components, the random pre-training split.

        `train.init_state` under one `jit`: run eagerly it compiles every op of
        the K-fold vmapped init on its own (121 compilations for the MLP
        setting, 225 for the conv one), which costs more than the whole
        --quick bench may take. The values are those of the eager init.
        """
        if self._init is None:
            self._init = jax.jit(lambda x: train.init_state(self.config, self.programs, x))
        return self._init(self.x)


def make_setup(config: ml_collections.ConfigDict) -> Setup:
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    # Images stay uint8 (the models scale them); vectors are float32.
    x_host = dataset.x if dataset.x.dtype == np.uint8 else dataset.x.astype(np.float32)
    return Setup(config, programs, x_host,
                 points_lib.put(x_host, programs.mesh))


class Bench:
    """The setups and rounds that several sections share, each made once.

    Every new setting compiles its programs anew (minutes of a 2-core CPU at
    full sizes), so the sections measure on the same two settings: the
    paper's synthetic one and the offline digits.
    """

    def __init__(self, config_dir: str, sizes: Sizes):
        self.config_dir = config_dir
        self.sizes = sizes
        self._setups: dict[str, Setup] = {}
        self._rounds: dict | None = None
        self._matmul: float | None = None

    def matmul_gflops(self) -> float:
        if self._matmul is None:
            self._matmul = matmul_gflops()
        return self._matmul

    def setup(self, name: str) -> Setup:
        """'paper' (synthetic, the round's N and K), 'digits' (the paper's conv
        networks, the platform's stack mode), 'digits_vmap' (the same, vmapped) or
        'digits_quick' (the offline digits preset)."""
        if name not in self._setups:
            sizes = self.sizes
            if name == "paper":
                config = synthetic_config(self.config_dir, sizes.round_points,
                                          sizes.round_components, sizes.pretrain_epochs)
            elif name == "digits_quick":
                quick = config_lib.load_config_file("mnist", sizes.digits_quick_arg,
                                                    self.config_dir)
                config = digits_config(self.config_dir, sizes.digits_quick_arg,
                                       quick.num_components, sizes.digits_batch)
            else:
                config = digits_config(self.config_dir, sizes.digits_arg,
                                       sizes.digits_components, sizes.digits_batch,
                                       "vmap" if name == "digits_vmap" else "auto")
            self._setups[name] = make_setup(config)
        return self._setups[name]

    def paper_rounds(self) -> dict:
        if self._rounds is None:
            self._rounds = run_rounds(self.setup("paper"), self.sizes.timed_rounds)
        return self._rounds


# ---------------------------------------------------------------------------
# Rounds: the paper-scale round, recompilation and growth.


# The round's four compiled programs, by the names their traces carry. The scorer
# is traced as itself on replicated points, and inside steps.stream_scores' jitted
# chunk (`_score_chunk`) on points split over the devices.
_PROGRAMS = {"m_step": ("m_step",), "disc_step": ("disc_step",),
             "score": ("score", "_score_chunk"), "assigner": ("assigner",)}


def program_traces(monitor: CompileMonitor) -> dict[str, int]:
    """Traces of each of the round's four programs that `monitor` saw."""
    return {name: sum(monitor.traces[traced] for traced in names)
            for name, names in _PROGRAMS.items()}
_ROUND_PARTS = ("seconds_m_step", "seconds_disc", "seconds_assign")


def run_rounds(setup: Setup, timed_rounds: int) -> dict:
    """A warm-up round (pre-training, which compiles the programs), then `timed_rounds`.

    Returns the warm-up round's compile seconds and, per round (warm-up
    first), its record, the compilations it caused and the jit cache entries
    the four compiled programs gained in these rounds so far (each trace adds
    one).
    """
    config, programs = setup.config, setup.programs
    state = setup.fresh_state()
    out: dict[str, Any] = {"records": [], "compiles": [], "cache_sizes": [], "n": setup.n,
                           "k": setup.k, "config": config}
    entries = dict.fromkeys(_PROGRAMS, 0)
    for r in range(timed_rounds + 1):
        with CompileMonitor() as compiles:
            state, record = train.run_round(config, programs, state, setup.x)
        if r == 0:
            out["compile_seconds"] = compiles.seconds
        out["records"].append(record)
        out["compiles"].append(compiles.count)
        entries = {name: entries[name] + traces
                   for name, traces in program_traces(compiles).items()}
        out["cache_sizes"].append(entries)
    return out


def _active_fraction(rounds: dict, record: dict) -> tuple[float, list[int]]:
    """The share of the M-step's component-steps that train a component, and the sizes.

    The M-step runs all K components for as many steps as the largest
    training set needs; the others are masked, not skipped. Round r trains
    on the sets of round r-1's assignment.
    """
    previous = rounds["records"][record["round"] - 1]
    min_points = rounds["config"].balance.min_points
    sizes = [min_points if j in previous["balanced"] else count
             for j, count in enumerate(previous["counts"])]
    return sum(sizes) / (len(sizes) * max(sizes)), sizes


def round_section(bench: Bench) -> dict:
    rounds = bench.paper_rounds()
    config = rounds["config"]
    # The timed round of median total seconds, with its own split.
    timed = sorted(rounds["records"][1:], key=lambda record: record["seconds"])
    record = timed[(len(timed) - 1) // 2]
    k, n, batch = rounds["k"], rounds["n"], config.batch_size
    extra = dict(epochs_per_component=config.epochs_per_round, disc_epochs=config.disc.epochs,
                 disc_batch=config.disc.batch_size, round=record["round"],
                 timed_rounds=len(timed))
    figures = {"round_seconds": figure(record["seconds"], "s", k, n, batch, **extra)}
    for part in _ROUND_PARTS:
        figures[part] = figure(record[part], "s", k, n, batch, **extra)
    fraction, sizes = _active_fraction(rounds, record)
    figures["m_step_active_fraction"] = figure(fraction, "fraction", k, n, batch,
                                               training_set_sizes=sizes)
    figures["compile_seconds"] = figure(
        rounds["compile_seconds"], "s", k, n, batch,
        note="tracing, lowering and XLA compilation during the warm-up round")
    figures["warmup_round_seconds"] = figure(rounds["records"][0]["seconds"], "s", k, n, batch)
    return {"figures": figures}


def recompilation_section(bench: Bench) -> dict:
    rounds = bench.paper_rounds()
    k, n, batch = rounds["k"], rounds["n"], rounds["config"].batch_size
    totals = [sum(sizes.values()) for sizes in rounds["cache_sizes"]]
    by_function = {name: [sizes[name] for sizes in rounds["cache_sizes"]]
                   for name in _PROGRAMS}
    note = "per round, the warm-up (pre-training) round first"
    return {"figures": {
        "compiles_per_round": figure(rounds["compiles"], "compilations", k, n, batch,
                                     note=note),
        "jit_cache_entries_per_round": figure(totals, "entries", k, n, batch,
                                              by_function=by_function, note=note),
        # What must stay zero: anything compiled or cached after the first timed round.
        "compiles_after_first_round": figure(int(sum(rounds["compiles"][2:])), "compilations",
                                             k, n, batch),
        "cache_growth_after_first_round": figure(int(totals[-1] - totals[1]), "entries",
                                                 k, n, batch),
    }}


def _slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x, the exponent of the growth;
    None from fewer than two points."""
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def growth_section(bench: Bench, output_dir: str) -> dict:
    """Round seconds for several K at the paper's N, and for several N at its K.

    Each point is the first round after a warm-up round in a fresh setting.
    """
    sizes = bench.sizes
    base_n, base_k = sizes.round_points, sizes.round_components
    points = [(k, base_n) for k in sizes.growth_components]
    points += [(base_k, n) for n in sizes.growth_points if (base_k, n) not in points]
    table = []
    for k, n in points:
        if (k, n) == (base_k, base_n):
            rounds = bench.paper_rounds()
        else:
            rounds = run_rounds(make_setup(synthetic_config(bench.config_dir, n, k,
                                                            sizes.pretrain_epochs)), 1)
        record = rounds["records"][1]
        table.append({"K": k, "N": n, "seconds": record["seconds"],
                      **{part: record[part] for part in _ROUND_PARTS},
                      "m_step_active_fraction": _active_fraction(rounds, record)[0]})
        logging.info("growth K=%d N=%d: %.2fs", k, n, record["seconds"])
    by_k = [row for row in table if row["N"] == base_n and row["K"] in sizes.growth_components]
    by_n = sorted((row for row in table if row["K"] == base_k and row["N"] in sizes.growth_points),
                  key=lambda row: row["N"])
    batch = bench.setup("paper").config.batch_size
    ks, ns = [row["K"] for row in by_k], [row["N"] for row in by_n]
    seconds_k, seconds_n = [row["seconds"] for row in by_k], [row["seconds"] for row in by_n]
    figures = {
        "round_seconds_vs_K": figure(seconds_k, "s", ks, base_n, batch,
                                     log_log_slope=_slope(ks, seconds_k)),
        "round_seconds_vs_N": figure(seconds_n, "s", base_k, ns, batch,
                                     log_log_slope=_slope(ns, seconds_n)),
    }
    plot_path = os.path.join(output_dir, "growth.png")
    plot_growth(plot_path, by_k, by_n, base_n, base_k)
    return {"figures": figures, "table": table, "plot": os.path.basename(plot_path)}


def plot_growth(path: str, by_k: list[dict], by_n: list[dict], base_n: int, base_k: int) -> None:
    """Two log-log panels: round seconds (and its parts) against K and against N."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, rows, axis, fixed in ((axes[0], by_k, "K", f"N = {base_n}"),
                                  (axes[1], by_n, "N", f"K = {base_k}")):
        xs = [row[axis] for row in rows]
        for key, label, style in (("seconds", "round", "o-"),
                                  ("seconds_m_step", "M-step", "s--"),
                                  ("seconds_disc", "discriminators", "^--"),
                                  ("seconds_assign", "assignment", "v--")):
            ax.plot(xs, [row[key] for row in rows], style, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("seconds")
        ax.set_title(f"round time against {axis} ({fixed})")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    loss_fn = steps.discriminator_loss(disc_model)

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
    warm-up trains nothing); its seconds are under 'compile'.
    """
    seconds: dict[str, Any] = {name: [] for name in sides}
    seconds["compile"] = {}
    for name, run in sides.items():
        start = time.perf_counter()
        run(0)
        seconds["compile"][name] = time.perf_counter() - start
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
        gen, _ = steps.run_chunks(programs.m_step, gen, np.full(k, steps_per_component),
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
    figures = _comparison_figures(prefix, seconds, k, setup.n, batch, num_steps)
    if programs.m_chunk == 1:
        flops = {"stacked": m_step_flops(setup, gen, state.sets, key),
                 "loop": _flops(loop_step, components[0], setup.x_host[:batch], key,
                                np.int32(0))}
        rates = {side: figures[f"{prefix}_{side}"]["value"] for side in flops}
        figures.update(_rate_figures(prefix, flops, rates, k, setup.n, batch, matmul))
        figures[f"{prefix}_compile_seconds"] = figure(seconds["compile"]["stacked"], "s", k,
                                                      setup.n, batch)
    return figures


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
        disc, _ = steps.run_chunks(programs.disc_step, disc, np.full(k, steps_per_component),
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
    figures = _comparison_figures(prefix, seconds, k, setup.n, batch, num_steps)
    if ratio.chunk == 1:
        per_call = _flops(programs.disc_step, disc, gen, setup.x, jnp.zeros(k, jnp.int32),
                          jnp.int32(0), key, *group)
        flops = {"stacked": per_call * ratio.groups / k,
                 "loop": _flops(loop_step, discs[0], gens[0], setup.x_host[:batch], key,
                                np.int32(0))}
        rates = {side: figures[f"{prefix}_{side}"]["value"] for side in flops}
        figures.update(_rate_figures(prefix, flops, rates, k, setup.n, batch, matmul))
        figures[f"{prefix}_compile_seconds"] = figure(seconds["compile"]["stacked"], "s", k,
                                                      setup.n, batch)
    return figures


def time_m_step_images(setup: Setup, num_steps: int, reps: int) -> float:
    """Images per second the stacked M-step trains (K components, their batch each)."""
    programs, k = setup.programs, setup.k
    state = setup.fresh_state()
    gen = _copy(state.gen)
    rates = []
    for rep in range(reps + 1):
        start = time.perf_counter()
        gen, _ = steps.run_chunks(programs.m_step, gen, np.full(k, num_steps), programs.m_chunk,
                                   jax.random.PRNGKey(rep), setup.x, state.sets,
                                   groups=programs.m_groups)
        jax.block_until_ready(gen)
        if rep:  # The first pass compiles.
            rates.append(k * num_steps * setup.config.batch_size / (time.perf_counter() - start))
    return float(np.median(rates))


def matmul_gflops(size: int = 2048, reps: int = 5) -> float:
    """The float32 rate of one large matmul on the default device: best of `reps`."""
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    product = jax.jit(jnp.dot)
    jax.block_until_ready(product(a, a))
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(product(a, a))
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


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
    figures.update(compare_m_step(setup, sizes.vs_loop_conv_steps, sizes.reps, "conv_vae_m_step",
                                  matmul))
    figures.update(compare_disc_step(setup, sizes.vs_loop_conv_steps, sizes.reps,
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


# ---------------------------------------------------------------------------
# Targets, table, output.


def _value(sections: dict, section: str, name: str) -> Any:
    return sections[section]["figures"][name]["value"]


def evaluate_targets(sections: dict) -> list[dict]:
    """PASS/MISS of each target whose section ran."""
    checks = []
    if "stacked_vs_loop" in sections:
        checks.append(("stacked_vs_loop", "mlp_vae_m_step_speedup", ">=", TARGET_SPEEDUP))
        for name, threshold in TARGETS_CONV.items():
            if name in sections["stacked_vs_loop"]["figures"]:
                op = "<=" if name.endswith("compile_seconds") else ">="
                checks.append(("stacked_vs_loop", name, op, threshold))
    if "round" in sections:
        checks.append(("round", "round_seconds", "<=", TARGET_ROUND_SECONDS))
    if "assign" in sections:
        checks.append(("assign", "mlp_scores_per_second", ">=", TARGET_SCORES_PER_SECOND))
    if "memory" in sections:
        dataset = _value(sections, "memory", "dataset_bytes")
        checks.append(("memory", "host_peak_rss_bytes", "<=", dataset + MEMORY_HEADROOM_BYTES))
        checks.append(("memory", "points_per_second", ">=", TARGET_CELEBA_SCORES_PER_SECOND))
    if "recompilation" in sections:
        checks.append(("recompilation", "compiles_after_first_round", "<=", 0))
        checks.append(("recompilation", "cache_growth_after_first_round", "<=", 0))
    targets = []
    for section, name, op, threshold in checks:
        value = _value(sections, section, name)
        ok = value >= threshold if op == ">=" else value <= threshold
        targets.append({"section": section, "figure": name, "op": op, "threshold": threshold,
                        "value": value, "status": "PASS" if ok else "MISS"})
    return targets


def metadata(quick: bool, command: str) -> dict:
    device = jax.devices()[0]
    return {
        "device_kind": device.device_kind,
        "platform": device.platform,
        "num_devices": jax.device_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": jax.lib.__version__,
        "python_version": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "host_memory_bytes": psutil.virtual_memory().total,
        # Other processes on the machine slow every figure; a reader should know.
        "load_average_1min_at_start": os.getloadavg()[0],
        # XLA:CPU's code generation depends on it (e.g. --xla_cpu_use_fusion_emitters).
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "quick": quick,
        "xla_optimizations": not quick,
        "command": command,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _format(value: Any, unit: str) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_format(v, unit) for v in value) + "]"
    if unit == "bytes" and isinstance(value, (int, float)) and value >= 0:
        return f"{value / 2**30:.3f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(results: dict) -> str:
    """The figures and the targets as a plain-text table."""
    rows = [("section", "figure", "value", "unit", "K", "N", "batch")]
    for section, content in results["sections"].items():
        for name, fig in content["figures"].items():
            unit = "GiB" if fig["unit"] == "bytes" else fig["unit"]
            rows.append((section, name, _format(fig["value"], fig["unit"]), unit,
                         str(fig["K"]), str(fig["N"]), str(fig["batch"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    meta = results["metadata"]
    header = (f"device {meta['device_kind']} ({meta['cpu_count']} CPUs), JAX "
              f"{meta['jax_version']}{', QUICK sizes' if meta['quick'] else ''}")
    lines = [header, ""] + lines + ["", "targets:"]
    for target in results["targets"]:
        fig = results["sections"][target["section"]]["figures"][target["figure"]]
        unit = "GiB" if fig["unit"] == "bytes" else fig["unit"]
        lines.append(f"  {target['status']}  {target['section']}.{target['figure']} = "
                     f"{_format(target['value'], fig['unit'])} {unit} (target {target['op']} "
                     f"{_format(target['threshold'], fig['unit'])})")
    return "\n".join(lines)


@contextlib.contextmanager
def _fast_compilation(enabled: bool) -> Iterator[None]:
    """With `enabled`, XLA's optimisation passes are off inside.

    At --quick sizes compilation is nearly all of the run time on a 2-core
    CPU (a fresh setting compiles for tens of seconds); quick figures only
    prove the bench runs, so they need no optimised code.
    """
    name = "jax_disable_most_optimizations"
    previous = jax.config.read(name)
    jax.config.update(name, enabled or previous)
    try:
        yield
    finally:
        jax.config.update(name, previous)


def run(quick: bool = False, output_dir: str = "bench_results",
        only: list[str] | tuple[str, ...] = (), memory_points: int | None = None,
        config_dir: str | None = None, command: str | None = None) -> dict:
    """Runs the selected sections; writes bench.json (and growth.png); returns the results."""
    unknown = set(only) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    selected = [name for name in SECTIONS if not only or name in only]
    sizes = QUICK if quick else FULL
    bench = Bench(config_dir or config_lib.CONFIG_DIR, sizes)
    os.makedirs(output_dir, exist_ok=True)
    command = command or "python -m competitive_mixtures.bench" + " --quick" * quick
    results: dict[str, Any] = {"metadata": metadata(quick, command), "sections": {}}
    sections = results["sections"]
    with _fast_compilation(quick):
        for name in selected:
            logging.info("bench section %s", name)
            start = time.perf_counter()
            if name == "roofline":
                sections[name] = roofline_section(bench)
            elif name == "round":
                sections[name] = round_section(bench)
            elif name == "recompilation":
                sections[name] = recompilation_section(bench)
            elif name == "growth":
                sections[name] = growth_section(bench, output_dir)
            elif name == "stacked_vs_loop":
                sections[name] = stacked_vs_loop_section(bench)
            elif name == "assign":
                sections[name] = assign_section(bench)
            else:
                sections[name] = memory_section(bench, memory_points)
            sections[name]["bench_seconds"] = time.perf_counter() - start
    results["metadata"]["load_average_1min_at_end"] = os.getloadavg()[0]
    results["targets"] = evaluate_targets(sections)
    workdir_lib.write_json_atomic(os.path.join(output_dir, "bench.json"), results)
    print(format_table(results))
    return results


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    run(quick=_QUICK.value, output_dir=_OUTPUT_DIR.value, only=_ONLY.value,
        memory_points=_MEMORY_POINTS.value, config_dir=experiments.CONFIG_DIR.value,
        command=" ".join(["python -m competitive_mixtures.bench"] + sys.argv[1:]))


if __name__ == "__main__":
    app.run(main)
