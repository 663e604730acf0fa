"""What every section shares: its sizes, one figure of bench.json, and the configs and
state a section times."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures import points as points_lib
from competitive_mixtures import train


# The aligned CelebA training set at the models' resolution.
CELEBA_POINTS = 202599
CELEBA_SHAPE = (64, 64, 3)


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
    # Steps per component of the conv comparisons (their steps run one per call),
    # and their repetitions: the two sides are within a few percent of each
    # other, and the median of 3 repetitions moved from 0.85x to 1.02x between
    # runs of the same code beside other work.
    vs_loop_conv_steps: int
    vs_loop_conv_reps: int
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
             vs_loop_mlp_chunks=2, vs_loop_conv_steps=5, vs_loop_conv_reps=9, reps=3,
             digits_arg="paper,offline", digits_components=15, digits_quick_arg="offline",
             digits_batch=0,
             memory_array_points=CELEBA_POINTS, memory_points=CELEBA_POINTS, memory_batch=0)
# Every new setting costs seconds of compilation even at these sizes, so the
# growth table has one new point only (K=1).
QUICK = Sizes(round_points=2000, round_components=3, pretrain_epochs=1, timed_rounds=3,
              growth_components=(1, 3), growth_points=(2000,),
              vs_loop_mlp_chunks=1, vs_loop_conv_steps=1, vs_loop_conv_reps=1, reps=1,
              digits_arg="offline,small", digits_components=3,
              digits_quick_arg="offline,small", digits_batch=8,
              memory_array_points=16, memory_points=16, memory_batch=8)


def figure(value: Any, unit: str, k: Any, n: Any, batch: Any, **extra) -> dict:
    """One measured figure as it appears in bench.json."""
    return {"value": value, "unit": unit, "K": k, "N": n, "batch": batch, **extra}


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
            from competitive_mixtures.bench.rounds import run_rounds  # noqa: PLC0415 (a cycle)
            self._rounds = run_rounds(self.setup("paper"), self.sizes.timed_rounds)
        return self._rounds

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
