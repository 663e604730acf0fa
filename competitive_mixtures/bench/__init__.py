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

Modules: common.py (sizes, setups), one module per group of sections
(rounds, stacked, scoring, memory), targets.py (the targets and the table),
monitor.py (compile counting, also used by the tests).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Iterator

from absl import logging
import jax

from competitive_mixtures import config as config_lib
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.bench.common import QUICK, FULL, Bench
from competitive_mixtures.bench.memory import memory_section
from competitive_mixtures.bench.monitor import CompileMonitor, program_traces
from competitive_mixtures.bench.rounds import growth_section, recompilation_section, round_section
from competitive_mixtures.bench.scoring import assign_section
from competitive_mixtures.bench.stacked import roofline_section, stacked_vs_loop_section
from competitive_mixtures.bench.targets import evaluate_targets, format_table, metadata

__all__ = ["SECTIONS", "CompileMonitor", "program_traces", "run"]

# In running order. Memory first, so that the process holds nothing of other
# sections while its peak is read; then the rounds, so that their warm-up
# round is what compiles the programs that the later sections reuse.
SECTIONS = ("roofline", "memory", "round", "recompilation", "growth", "stacked_vs_loop",
            "assign")


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
