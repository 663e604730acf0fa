"""The capacity ablation (paper Table 4) on the offline digits: 3 DCGANs vs 1, per seed.

python -m competitive_mixtures.experiments.capacity --workdir=runs/capacity [--seeds=3]
    [--filters=16,32] [--preset=quick|small]

For every seed and width runs `configs/celeba_gan.py:digits,filters=F` as a
competitive mixture of 3 GANs and as one GAN of the same size and schedule
(so the single GAN takes as many generator updates as the 3 components
together), in `WORKDIR/f{F}/{method}/seed{S}` (finished runs are skipped,
stopped ones resume), and evaluates each (domain FID and precision/recall of
the digit classifier's features, see `evaluate`). Writes
`WORKDIR/capacity.md`: per width, mean +- std over seeds with the worst seed,
the verdict of competitive against single over paired seeds
(`common.verdict`), and every seed's values.
"""

from __future__ import annotations

from collections.abc import Sequence
import os

from absl import flags

from competitive_mixtures import cli
from competitive_mixtures.experiments import common

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("workdir", None, "Directory for all runs and the table.")
    flags.DEFINE_integer("seeds", 3, "Seeds per width and method.")
    flags.DEFINE_list("filters", ["16", "32"],
                      "Widest conv layer of generator and critic, one run set per value.")
    flags.DEFINE_enum("preset", "quick", ["quick", "small"],
                      "quick: the digits variant (3-7 minutes per run on a 2-core "
                      "CPU); small: a smoke test.")
    common.define_flags()


METHODS = ("competitive", "single")
# FID features: the digit classifier trained on the offline digits (see evaluate).
FEATURES = "digits"
METRICS = (("domain FID", "fid", False), ("precision", "precision", True),
           ("recall", "recall", True))


def config_for(config_dir: str, filters: int, method: str, preset: str, seed: int,
               overrides: Sequence[str] = ()):
    parts = ["digits", f"filters={filters}", f"strategy={method}"]
    return common.seeded_config("celeba_gan", parts + (["small"] if preset == "small"
                                                        else []), config_dir, seed, overrides)


def write_table(results: dict, seeds: int, path: str) -> str:
    lines = [f"# Capacity ablation on the offline digits ({seeds} seed(s); mean +- std over "
             "seeds, worst seed)", "",
             "| widest layer | metric | 3 GANs | 1 GAN | 3 GANs vs 1 |", "|---|---|---|---|---|"]
    for filters, runs in results.items():
        for name, key, higher in METRICS:
            values = {m: [r["image_quality"][FEATURES][key] for r in runs[m]] for m in METHODS}
            cells = [common.spread(values[m], higher) for m in METHODS]
            lines.append(f"| {filters} filters | {name} | " + " | ".join(cells) + " | "
                         + common.verdict(values["competitive"], values["single"], higher)
                         + " |")
    lines += ["", "Per seed (3 GANs / 1 GAN):", "",
              "| widest layer | metric | " + " | ".join(f"seed {s}" for s in range(seeds)) + " |",
              "|---" * (seeds + 2) + "|"]
    for filters, runs in results.items():
        for name, key, _ in METRICS:
            cells = [f"{c['image_quality'][FEATURES][key]:.2f} / "
                     f"{s['image_quality'][FEATURES][key]:.2f}"
                     for c, s in zip(runs["competitive"], runs["single"])]
            lines.append(f"| {filters} filters | {name} | " + " | ".join(cells) + " |")
    return common.write_lines(lines, path)


def main(argv):
    del argv
    filters = [int(f) for f in FLAGS.filters]
    results = {f: {m: [] for m in METHODS} for f in filters}
    progress = common.Progress(FLAGS.seeds * len(filters) * len(METHODS), "capacity run")
    for seed in range(FLAGS.seeds):
        for width in filters:
            for method in METHODS:
                config = config_for(FLAGS.config_dir, width, method, FLAGS.preset, seed,
                                    FLAGS.set)
                run = os.path.join(FLAGS.workdir, f"f{width}", method, f"seed{seed}")
                progress.step(f"{width} filters, {method}, seed {seed} -> {run}")
                results[width][method].append(common.run_one(config, run))
    print(write_table(results, FLAGS.seeds, os.path.join(FLAGS.workdir, "capacity.md")))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
