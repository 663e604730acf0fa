"""Mode coverage of a competitive mixture vs one model of the same size on 2-D toy sets.

python -m competitive_mixtures.experiments.mode_coverage --workdir=runs/gan_ns [--seeds=3]
    [--model=ns|wgan_gp|wgan_clip|avb|gram] [--datasets=ring,grid,gaussians5]
    [--preset=quick|tiny]

`--model`: GANs with the non-saturating or gradient-penalty loss
(`configs/gan_ring.py`), or the families of `configs/families.py` (the
original WGAN, AVB, GRaM). For every seed and dataset (ring of 8: K=8, grid
of 25: K=25, the skewed 5-mode set: K=5) runs competitive and single, each in
`WORKDIR/{data}/{method}/seed{S}` (finished runs are skipped, stopped ones
resume). Both methods take the same number of generator updates in total.
Writes `WORKDIR/mode_coverage.md`: modes covered, share of high-quality
samples (within 3 standard deviations of a centre) and KDE log-likelihood,
mean +- std over seeds with the worst seed, the verdict of competitive
against single over paired seeds (`common.verdict`) and every seed's
values; and `WORKDIR/samples_{data}.png`.
"""

from __future__ import annotations

from collections.abc import Sequence
import os

from absl import flags
from absl import logging

from competitive_mixtures import cli
from competitive_mixtures.experiments import common

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("workdir", None, "Directory for all runs and the table.")
    flags.DEFINE_integer("seeds", 5, "Seeds per method and dataset.")
    flags.DEFINE_enum("model", "ns", ["ns", "wgan_gp", "wgan_clip", "avb", "gram"],
                      "Component family (GAN losses or configs/families.py models).")
    flags.DEFINE_list("datasets", ["ring", "grid"], "Any of ring, grid, gaussians5.")
    flags.DEFINE_enum("preset", "quick", ["quick", "tiny"],
                      "quick: about a minute per run on a CPU; tiny: tests.")
    common.define_flags()


METHODS = ("competitive", "single")


def config_for(config_dir: str, data: str, method: str, model: str, preset: str, seed: int,
               overrides: Sequence[str] = ()):
    parts = [f"data={data}", f"strategy={method}"]
    if preset == "tiny":
        parts.append("tiny")
    if model in ("ns", "wgan_gp"):
        name, parts = "gan_ring", parts + [f"loss={model}"]
    else:
        name, parts = "families", parts + [f"model={model}"]
    return common.seeded_config(name, parts, config_dir, seed, overrides)


ROWS = (("modes covered", lambda r: r["modes"]["modes_covered"]),
        ("high-quality share", lambda r: r["modes"]["high_quality_share"]),
        ("KDE log-likelihood", lambda r: r["kde"]["log_likelihood"]))


def write_table(results: dict, seeds: int, model: str, path: str) -> str:
    lines = [f"# Competitive mixture vs one model ({model}, {seeds} seed(s); "
             "mean +- std over seeds, worst seed)", "",
             "| data | metric | competitive | single | competitive vs single |",
             "|---|---|---|---|---|"]
    for data in results:
        k = results[data]["competitive"][0]["num_components"]
        for name, getter in ROWS:
            values = {m: [getter(r) for r in results[data][m]] for m in METHODS}
            cells = [common.spread(values[m]) for m in METHODS]
            lines.append(f"| {data} (K={k}) | {name} | " + " | ".join(cells) + " | "
                         + common.verdict(values["competitive"], values["single"]) + " |")
    lines += ["", "Per seed (competitive / single):", "",
              "| data | metric | " + " | ".join(f"seed {s}" for s in range(seeds)) + " |",
              "|---" * (seeds + 2) + "|"]
    for data in results:
        for name, getter in ROWS:
            cells = [f"{getter(c):.2f} / {getter(s):.2f}" for c, s in
                     zip(results[data]["competitive"], results[data]["single"])]
            lines.append(f"| {data} | {name} | " + " | ".join(cells) + " |")
    return common.write_lines(lines, path)


def sample_figure(workdir: str, data: str, path: str) -> None:
    common.sample_figure(
        {method: os.path.join(workdir, data, method, "seed0") for method in METHODS},
        path, title=f"{data}: samples (grey: held-out data)")


def main(argv):
    del argv
    workdir, seeds, datasets, model = FLAGS.workdir, FLAGS.seeds, FLAGS.datasets, FLAGS.model
    results = {d: {m: [] for m in METHODS} for d in datasets}
    for seed in range(seeds):
        for data in datasets:
            for method in METHODS:
                config = config_for(FLAGS.config_dir, data, method, model, FLAGS.preset, seed,
                                    FLAGS.set)
                run = os.path.join(workdir, data, method, f"seed{seed}")
                logging.info("mode_coverage: %s, %s, seed %d -> %s", data, method, seed, run)
                results[data][method].append(common.run_one(config, run))
    text = write_table(results, seeds, model, os.path.join(workdir, "mode_coverage.md"))
    for data in datasets:
        sample_figure(workdir, data, os.path.join(workdir, f"samples_{data}.png"))
    print(text)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
