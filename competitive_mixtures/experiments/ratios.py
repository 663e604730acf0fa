"""Density-ratio estimators and AdaGAN boosting compared on the 2-D sets.

python -m competitive_mixtures.experiments.ratios --workdir=runs/table1 [--seeds=3]
    [--preset=quick|tiny] [--datasets=modes3,modes5,modes9,ring,grid]
    [--methods=competitive,kernel,multiclass,boosting] [--timing_points=64000]

Methods: the competitive mixture with K binary discriminators (`competitive`),
with the kernel-mean-matching ratio (`kernel`), with one (K+1)-way classifier
(`multiclass`), and AdaGAN boosting with binary discriminators (`boosting`);
K = number of modes (8 on the ring, 25 on the grid), VAE components, the
schedule of configs/synthetic.py, the same for all. Runs live in
`WORKDIR/{dataset}/{method}/seed{S}` and resume; on the Gaussian sets the
`competitive` and `boosting` runs are those of experiments.table1 when both
use the same WORKDIR. Writes `WORKDIR/ratios.md` and `WORKDIR/ratios.json`:
KDE log-likelihood, coverage C and NMI (mean +- std over seeds), the mean
seconds of an assignment pass in the runs, then, unless --timing_points=0,
the seconds of one assignment pass (fit + log ratios + assignment) of each
estimator at N = timing_points with K = 9, and the error of the kernel
estimator's Nystrom approximation against its exact solve on 4,096 points.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from competitive_mixtures import cli
from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures import sharding
from competitive_mixtures import train
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.experiments import common
from competitive_mixtures.ratio import kernel

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("workdir", None, "Directory for all runs and the tables.")
    flags.DEFINE_integer("seeds", 5, "Seeds per method and dataset.")
    flags.DEFINE_enum("preset", "quick", ["quick", "tiny"],
                      "quick: the default schedule; tiny: a smoke test.")
    flags.DEFINE_list("datasets", ["modes3", "modes5", "modes9", "ring", "grid"],
                      "Datasets to run.")
    flags.DEFINE_list("methods", ["competitive", "kernel", "multiclass", "boosting"],
                      "Methods to run.")
    flags.DEFINE_integer("timing_points", 64000, "N of the assignment-pass timing (0: skip it).")
    common.define_flags()


DATASETS = {"modes3": "modes=3", "modes5": "modes=5", "modes9": "modes=9",
            "ring": "data=ring", "grid": "data=grid"}
METHODS = {"competitive": "", "kernel": "ratio=kernel", "multiclass": "ratio=multiclass",
           "boosting": "strategy=boosting"}
TITLES = {"competitive": "competitive + discriminators", "kernel": "competitive + kernel",
          "multiclass": "competitive + (K+1)-way", "boosting": "AdaGAN boosting"}
METRICS = (("KDE log-likelihood of held-out data (higher is better)",
            lambda r: r["kde"]["log_likelihood"]),
           ("Coverage C (higher is better)", lambda r: r["coverage"]["coverage"]),
           ("NMI of the final assignment against the true modes (higher is better)",
            lambda r: r["clustering"]["nmi"]))


def config_for(config_dir: str, dataset: str, method: str, preset: str, seed: int,
               overrides: Sequence[str] = ()):
    """The run's config: configs/synthetic.py with the dataset's and method's arguments."""
    parts = [DATASETS[dataset], METHODS[method]] + ([] if preset == "quick" else [preset])
    return common.seeded_config("synthetic", parts, config_dir, seed, overrides)


def assignment_seconds(workdir: str) -> float:
    """Mean seconds of the rounds' assignment passes (ratio fit + log ratios + assignment)."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    passes = [r["seconds_disc"] + r["seconds_assign"] for r in records
              if "seconds_assign" in r and r["round"] > 0]
    return float(np.mean(passes)) if passes else float("nan")


def time_assignment_pass(config_dir: str, kind: str, num_points: int, repeats: int = 2) -> dict:
    """Seconds of one assignment pass of estimator `kind` at N = num_points, K = 9.

    The 9-mode set at the paper's schedule (2 discriminator epochs, batch 32),
    freshly initialised components; the first pass (which compiles) is not
    counted, the best of the others is.
    """
    config = config_lib.load_config_file("synthetic", f"modes=9,paper,ratio={kind}", config_dir)
    config.data.num_points = num_points
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    x = sharding.put(dataset.x.astype(np.float32), sharding.replicated(programs.mesh))
    state = train.init_state(config, programs, x)
    active = np.ones(config.num_components, bool)
    fits, scores = [], []
    for i in range(repeats + 1):
        key = jax.random.PRNGKey(i)
        tick = time.perf_counter()
        disc, _ = programs.ratio.fit(state.disc, state.gen, x, key, key, active)
        jax.block_until_ready(disc)
        middle = time.perf_counter()
        result, _ = programs.assigner(programs.ratio.log_ratios(disc, state.gen, x, key))
        jax.block_until_ready(result.owner)
        fits.append(middle - tick)
        scores.append(time.perf_counter() - middle)
        state = state.replace(disc=disc)
    best = int(np.argmin(np.add(fits, scores)[1:])) + 1
    return {"kind": kind, "points": num_points, "components": config.num_components,
            "fit_seconds": fits[best], "ratio_and_assign_seconds": scores[best],
            "total_seconds": fits[best] + scores[best], "device": jax.devices()[0].device_kind}


def nystrom_errors(seed: int = 0, points: int = 4096, landmarks: int = 1024) -> list[dict]:
    """The kernel estimator's Nystrom solve against its exact solve on `points` data
    points of each set, with 2,048 samples of each true mode as the components."""
    rows = []
    for name, arg in DATASETS.items():
        config = config_lib.load_config_file("synthetic", arg)
        config.data.num_points = points
        config.data.seed = seed
        dataset = data_lib.load(config)
        rng = np.random.default_rng(seed)
        modes = np.unique(dataset.label)
        samples = np.stack([dataset.x[rng.choice(np.flatnonzero(dataset.label == j), 2048)]
                            for j in modes])
        c = config.ratio.kernel
        error = kernel.approximation_error(jnp.asarray(dataset.x), jnp.asarray(samples),
                                           jax.random.PRNGKey(seed), eps=c.eps,
                                           width_scale=c.width, landmarks=landmarks)
        rows.append({"dataset": name, **error})
    return rows


def write_tables(results: dict, seconds: dict, timing: list, nystrom: list, seeds: int,
                 preset: str, path: str) -> str:
    datasets = list(results)
    methods = list(next(iter(results.values())))
    header = "| data | " + " | ".join(TITLES[m] for m in methods) + " |"
    rule = "|---" * (len(methods) + 1) + "|"
    lines = [(f"# Ratio estimators and boosting ({preset} preset, {seeds} seed(s); "
              "mean +- std over seeds, worst seed)")]
    others = [m for m in methods if m != "competitive"]
    for title, getter in METRICS:
        lines += ["", title, "", header, rule]
        for d in datasets:
            lines.append(f"| {d} | " + " | ".join(
                common.spread([getter(r) for r in results[d][m]]) for m in methods) + " |")
        if "competitive" in methods and others:
            lines += ["", "The paper's discriminators against each, over paired seeds:", "",
                      "| data | " + " | ".join(f"vs {TITLES[m]}" for m in others) + " |",
                      "|---" * (len(others) + 1) + "|"]
            for d in datasets:
                ours = [getter(r) for r in results[d]["competitive"]]
                lines.append(f"| {d} | " + " | ".join(common.verdict(
                    ours, [getter(r) for r in results[d][m]]) for m in others) + " |")
    lines += ["", ("Mean seconds of an assignment pass in these runs (fit + log ratios + "
                   "assignment; boosting: at the end of each stage)"), "", header, rule]
    for d in datasets:
        lines.append(f"| {d} | " + " | ".join(
            common.mean_std(seconds[d][m]) for m in methods) + " |")
    if timing:
        lines += ["", (f"One assignment pass at N = {timing[0]['points']}, "
                       f"K = {timing[0]['components']} ({timing[0]['device']})"), "",
                  "| estimator | fit (s) | log ratios + assignment (s) | total (s) |",
                  "|---|---|---|---|"]
        lines += [(f"| {t['kind']} | {t['fit_seconds']:.2f} | "
                   f"{t['ratio_and_assign_seconds']:.2f} | {t['total_seconds']:.2f} |")
                  for t in timing]
    if nystrom:
        lines += ["", (f"Kernel estimator: Nystrom ({nystrom[0]['landmarks']} landmarks) vs "
                       f"exact solve on {nystrom[0]['points']} points, true modes as "
                       "components"), "",
                  ("| data | relative L2 error of r | mean abs error of log r (r > 0.01) "
                   "| same best component |"), "|---|---|---|---|"]
        lines += [(f"| {n['dataset']} | {n['relative_l2']:.2e} | {n['log_mae']:.2e} | "
                   f"{n['argmax_agreement']:.4f} |") for n in nystrom]
    return common.write_lines(lines, path)


def main(argv):
    del argv
    workdir, seeds, datasets, methods = FLAGS.workdir, FLAGS.seeds, FLAGS.datasets, FLAGS.methods
    for name, chosen, allowed in (("datasets", datasets, DATASETS),
                                  ("methods", methods, METHODS)):
        unknown = set(chosen) - set(allowed)
        if unknown:
            raise app.UsageError(f"unknown {name} {sorted(unknown)}; "
                                 f"choose from {sorted(allowed)}")
    # Runs of one shape (other seeds, resumed runs) reuse each other's compiled programs.
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    results = {d: {m: [] for m in methods} for d in datasets}
    seconds = {d: {m: [] for m in methods} for d in datasets}
    for seed in range(seeds):
        for dataset in datasets:
            for method in methods:
                config = config_for(FLAGS.config_dir, dataset, method, FLAGS.preset, seed,
                                    FLAGS.set)
                run = os.path.join(workdir, dataset, method, f"seed{seed}")
                logging.info("ratios: %s, %s, seed %d -> %s", dataset, method, seed, run)
                results[dataset][method].append(common.run_one(config, run))
                seconds[dataset][method].append(assignment_seconds(run))
    timing, nystrom = [], []
    if FLAGS.timing_points:
        timing = [time_assignment_pass(FLAGS.config_dir, kind, FLAGS.timing_points)
                  for kind in ("discriminator", "kernel", "multiclass")]
        nystrom = nystrom_errors()
    workdir_lib.write_text_atomic(os.path.join(workdir, "ratios.json"), json.dumps(
        {"results": results, "assignment_seconds": seconds, "timing": timing,
         "nystrom": nystrom}, indent=1, default=lambda value: np.asarray(value).tolist()))
    print(write_tables(results, seconds, timing, nystrom, seeds, FLAGS.preset,
                       os.path.join(workdir, "ratios.md")))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
