"""The paper's Table 1: competitive VAEs vs a bag of VAEs vs one larger VAE, and AdaGAN.

python -m competitive_mixtures.experiments.table1 --workdir=runs/table1 [--seeds=5]
    [--preset=quick|paper|tiny] [--modes=3,5,9] [--methods=competitive,bagging,...]

Runs competitive (K = modes), bagging (same K and VAE), single-150 (one
VAE with 150 units per hidden layer) and AdaGAN boosting (same K and VAE,
components added one at a time on re-weighted data) on the 3, 5 and 9-mode
sets for every seed, each in `WORKDIR/modes{M}/{method}/seed{S}`. Every run resumes from its
own checkpoints and finished runs are skipped, so the command can be stopped
and restarted at any time; every run is logged with an estimate of the time
left. Writes `WORKDIR/table1.md` (mean +- std over seeds and the worst seed of
KDE log-likelihood with the paper's numbers beside, competitive's verdict
against each baseline over paired seeds, held-out ELBO, coverage, NMI,
training seconds, and the per-seed KDE values) and `WORKDIR/samples_modes{M}.png`
(the methods' samples side by side, seed 0).

Budget, quick preset: all methods run the same schedule (pre-training epochs, rounds,
epochs per round, batch size), so each processes the same number of
per-point generator updates, N x (pretrain_epochs + num_rounds x
epochs_per_round): boosting trains one component per round on N re-weighted
points where the others train K at once on about N / K each. The competitive
run trains discriminators every round, boosting at the end of each of its K
stages. Boosting needs num_rounds >= K - 1; the tiny preset (a smoke test, 2
rounds) is stretched to K - 1 rounds for it. Paper preset: the schedules of
the paper's appendix C (configs/synthetic.py), where the bag and VAE-150
train 100 epochs; by default only the paper's three columns (no boosting).
"""

from __future__ import annotations

from collections.abc import Sequence
import os

from absl import app
from absl import flags
import jax

from competitive_mixtures import cli
from competitive_mixtures.experiments import common

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("workdir", None, "Directory for all runs and the table.")
    flags.DEFINE_integer("seeds", 5, "Seeds per method and dataset.")
    flags.DEFINE_enum("preset", "quick", ["quick", "paper", "tiny"],
                      "quick: minutes on a CPU; paper: the paper's schedule; tiny: tests.")
    flags.DEFINE_list("modes", ["3", "5", "9"], "Mode counts (rows of the table).")
    flags.DEFINE_list("methods", None, "Methods (columns); default: all four, and the "
                      "paper's three (no boosting) with --preset=paper.")
    common.define_flags()


MODES = (3, 5, 9)
METHODS_ARGS = {"competitive": "", "bagging": "strategy=bagging", "single150": "vae150",
                "boosting": "strategy=boosting"}
METHODS = tuple(METHODS_ARGS)
# The paper's Table 1 columns. At the paper's schedule boosting would train 100 to
# 130 stages of a full-data VAE (hours on a CPU); it is not one of the paper's columns.
PAPER_METHODS = ("competitive", "bagging", "single150")
METHOD_NAMES = {"competitive": "competitive K VAEs", "bagging": "bagging K VAEs",
                "single150": "single VAE-150", "boosting": "AdaGAN boosting K VAEs"}
# Paper, Table 1: KDE log-likelihood (kVAEs / bag / VAE-150).
PAPER = {3: {"competitive": -4.59, "bagging": -6.49, "single150": -5.42},
         5: {"competitive": -2.74, "bagging": -7.70, "single150": -5.71},
         9: {"competitive": -2.51, "bagging": -7.05, "single150": -6.83}}


def config_for(config_dir: str, modes: int, method: str, preset: str, seed: int,
               overrides: Sequence[str] = ()):
    parts = [f"modes={modes}", METHODS_ARGS[method]] + ([] if preset == "quick" else [preset])
    return common.seeded_config("synthetic", parts, config_dir, seed, overrides)


def _cell(values, paper=None) -> str:
    """'mean +- std (worst w)' of per-seed values, with the paper's value beside."""
    text = f"{common.mean_std(values)} (worst {min(values):.2f})"
    return text + (f" [{paper:.2f}]" if paper is not None else "")


def write_table(results: dict, seeds: int, preset: str, path: str) -> str:
    """Writes the markdown tables of `results[modes][method]` (eval.json dicts) to `path`."""
    rows = list(results)  # The mode counts and methods that ran.
    methods = list(results[rows[0]])
    names = " | ".join(METHOD_NAMES[m] for m in methods)
    head = ["", f"| modes | {names} |", "|---" * (len(methods) + 1) + "|"]
    lines = [f"# Table 1 ({preset} preset, {seeds} seed(s): mean +- std over seeds, "
             "worst seed)", "",
             "KDE log-likelihood of held-out data (higher is better); the paper's value "
             "in brackets."] + head
    for modes in rows:
        cells = [_cell([r["kde"]["log_likelihood"] for r in results[modes][m]],
                       PAPER[modes].get(m)) for m in methods]
        lines.append(f"| {modes} | " + " | ".join(cells) + " |")
    lines += ["", "Competitive against each baseline, KDE log-likelihood over paired seeds "
              "(same data, same initialisation seed): 'beats' needs the mean ahead and "
              f"{common.WIN_SHARE:.0%} of the seeds won.", "",
              "| modes | " + " | ".join(f"vs {METHOD_NAMES[m]}" for m in methods[1:]) + " |",
              "|---" * len(methods) + "|"]
    for modes in rows:
        ours = [r["kde"]["log_likelihood"] for r in results[modes]["competitive"]]
        cells = [common.verdict(ours, [r["kde"]["log_likelihood"]
                                       for r in results[modes][m]]) for m in methods[1:]]
        lines.append(f"| {modes} | " + " | ".join(cells) + " |")
    for title, getter in (
            ("Held-out ELBO of the mixture (a lower bound on its log-likelihood; higher is "
             "better)", lambda r: r["heldout_elbo"]["mixture"]),
            ("Coverage C (AdaGAN; higher is better)", lambda r: r["coverage"]["coverage"]),
            ("NMI of the final assignment against the true modes",
             lambda r: r["clustering"]["nmi"]),
            ("Training seconds per run (rounds only: no compilation, no evaluation)",
             lambda r: r["training_seconds"])):
        lines += ["", title] + head
        for modes in rows:
            cells = [_cell([getter(r) for r in results[modes][m]]) for m in methods]
            lines.append(f"| {modes} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed, KDE log-likelihood:", "",
              "| modes | seed | " + names + " |", "|---" * (len(methods) + 2) + "|"]
    for modes in rows:
        for seed in range(seeds):
            cells = [f"{results[modes][m][seed]['kde']['log_likelihood']:.3f}"
                     for m in methods]
            lines.append(f"| {modes} | {seed} | " + " | ".join(cells) + " |")
    lines += ["", "NMI of bagging is that of a random split, and of a single model 0: "
              "listed for completeness. Boosting's owner of a point is its most responsible "
              "component, argmax_j alpha_j dP_gj/dP_X."]
    return common.write_lines(lines, path)


def sample_figure(workdir: str, modes: int, methods, path: str) -> None:
    common.sample_figure(
        {method: os.path.join(workdir, f"modes{modes}", method, "seed0") for method in methods},
        path, title=f"{modes} modes: samples (grey: held-out data)")


def main(argv):
    del argv
    workdir, seeds, preset = FLAGS.workdir, FLAGS.seeds, FLAGS.preset
    # Runs of one shape (other seeds, a resumed run, and the methods' common
    # discriminator and scoring programs) reuse each other's compiled programs.
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    modes_list = [int(m) for m in FLAGS.modes]
    methods = FLAGS.methods or (PAPER_METHODS if preset == "paper" else METHODS)
    unknown = set(methods) - set(METHODS) | set(modes_list) - set(MODES)
    if unknown:
        raise app.UsageError(f"unknown method(s) or mode count(s) {sorted(map(str, unknown))}; "
                             f"choose from {list(METHODS)} and {list(MODES)}")
    if methods[0] != "competitive":
        raise app.UsageError("--methods must start with competitive, which the others are "
                             f"compared with; got {methods}")
    results = {m: {method: [] for method in methods} for m in modes_list}
    progress = common.Progress(seeds * len(modes_list) * len(methods), "table1 run")
    for seed in range(seeds):
        for modes in modes_list:
            for method in methods:
                config = config_for(FLAGS.config_dir, modes, method, preset, seed, FLAGS.set)
                run = os.path.join(workdir, f"modes{modes}", method, f"seed{seed}")
                progress.step(f"{modes} modes, {method}, seed {seed} -> {run}")
                result = common.run_one(config, run)
                result["training_seconds"] = common.training_seconds(run)
                results[modes][method].append(result)
    text = write_table(results, seeds, preset, os.path.join(workdir, "table1.md"))
    for modes in modes_list:
        sample_figure(workdir, modes, methods, os.path.join(workdir, f"samples_modes{modes}.png"))
    print(text)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
