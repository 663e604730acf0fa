"""The paper's Table 1: competitive VAEs vs a bag of VAEs vs one larger VAE, and AdaGAN.

python -m competitive_mixtures.experiments.table1 --workdir=runs/table1 [--seeds=3]
    [--preset=quick|paper|tiny]

Runs competitive (K = modes), bagging (same K and VAE), single-150 (one
VAE with 150 units per hidden layer) and AdaGAN boosting (same K and VAE,
components added one at a time on re-weighted data) on the 3, 5 and 9-mode
sets for every seed, each in `WORKDIR/modes{M}/{method}/seed{S}`. Every run resumes from its
own checkpoints and finished runs are skipped, so the command can be stopped
and restarted at any time. Writes `WORKDIR/table1.md` (mean +- std over seeds
of KDE log-likelihood, coverage and NMI, with the paper's numbers beside) and
`WORKDIR/samples_modes{M}.png` (the methods' samples side by side).

Budget: all methods run the same schedule (pre-training epochs, rounds,
epochs per round, batch size), so each processes the same number of
per-point generator updates, N x (pretrain_epochs + num_rounds x
epochs_per_round): boosting trains one component per round on N re-weighted
points where the others train K at once on about N / K each. The competitive
run trains discriminators every round, boosting at the end of each of its K
stages. Boosting needs num_rounds >= K - 1; the tiny preset (a smoke test, 2
rounds) is stretched to K - 1 rounds for it.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
from absl import logging
import jax

from competitive_mixtures import experiments

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all runs and the table.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per method and dataset.")
_PRESET = flags.DEFINE_enum("preset", "quick", ["quick", "paper", "tiny"],
                            "quick: minutes on a CPU; paper: the paper's schedule; tiny: tests.")

MODES = (3, 5, 9)
METHODS = {"competitive": "", "bagging": "strategy=bagging", "single150": "vae150",
           "boosting": "strategy=boosting"}
# Paper, Table 1: KDE log-likelihood (kVAEs / bag / VAE-150).
PAPER = {3: {"competitive": -4.59, "bagging": -6.49, "single150": -5.42},
         5: {"competitive": -2.74, "bagging": -7.70, "single150": -5.71},
         9: {"competitive": -2.51, "bagging": -7.05, "single150": -6.83}}


def config_for(config_dir: str, modes: int, method: str, preset: str, seed: int):
    parts = [f"modes={modes}", METHODS[method]] + ([] if preset == "quick" else [preset])
    return experiments.seeded_config("synthetic", parts, config_dir, seed)


def write_table(results: dict, seeds: int, preset: str, path: str) -> str:
    lines = [f"# Table 1 ({preset} preset, {seeds} seed(s); mean +- std over seeds)", "",
             "KDE log-likelihood of held-out data (higher is better); paper's value in brackets.",
             "", "| modes | competitive K VAEs | bagging K VAEs | single VAE-150 "
             "| AdaGAN boosting K VAEs |", "|---|---|---|---|---|"]
    for modes in MODES:
        cells = [experiments.mean_std([r['kde']['log_likelihood'] for r in results[modes][m]])
                 + (f" ({PAPER[modes][m]:.2f})" if m in PAPER[modes] else "") for m in METHODS]
        lines.append(f"| {modes} | " + " | ".join(cells) + " |")
    for title, getter in (("Coverage C (AdaGAN; higher is better)",
                           lambda r: r["coverage"]["coverage"]),
                          ("NMI of the final assignment against the true modes",
                           lambda r: r["clustering"]["nmi"])):
        lines += ["", title, "", "| modes | competitive | bagging | single VAE-150 | boosting |",
                  "|---|---|---|---|---|"]
        for modes in MODES:
            cells = [experiments.mean_std([getter(r) for r in results[modes][m]]) for m in METHODS]
            lines.append(f"| {modes} | " + " | ".join(cells) + " |")
    lines += ["", "NMI of bagging is that of a random split, and of a single model 0: "
              "listed for completeness. Boosting's owner of a point is its most responsible "
              "component, argmax_j alpha_j dP_gj/dP_X."]
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def sample_figure(workdir: str, modes: int, path: str) -> None:
    experiments.sample_figure(
        {method: os.path.join(workdir, f"modes{modes}", method, "seed0") for method in METHODS},
        path, title=f"{modes} modes: samples (grey: held-out data)")


def main(argv):
    del argv
    # Runs of one shape (other seeds, a resumed run, and the methods' common
    # discriminator and scoring programs) reuse each other's compiled programs.
    jax.config.update("jax_compilation_cache_dir", os.path.join(_WORKDIR.value, "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    results = {m: {method: [] for method in METHODS} for m in MODES}
    for seed in range(_SEEDS.value):
        for modes in MODES:
            for method in METHODS:
                config = config_for(experiments.CONFIG_DIR.value, modes, method,
                                    _PRESET.value, seed)
                run = os.path.join(_WORKDIR.value, f"modes{modes}", method, f"seed{seed}")
                logging.info("table1: %d modes, %s, seed %d -> %s", modes, method, seed, run)
                results[modes][method].append(experiments.run_one(config, run))
    text = write_table(results, _SEEDS.value, _PRESET.value,
                       os.path.join(_WORKDIR.value, "table1.md"))
    for modes in MODES:
        sample_figure(_WORKDIR.value, modes, os.path.join(_WORKDIR.value,
                                                          f"samples_modes{modes}.png"))
    print(text)


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
