"""The paper's MNIST comparison on the offline digits: clusters and samples, per seed.

python -m competitive_mixtures.experiments.digits --workdir=runs/digits [--seeds=3]
    [--methods=competitive,competitive_elbo,competitive_posterior,bagging,vae8,vae64]
    [--preset=quick|paper|small]

Runs each method of `configs/mnist.py:offline` for every seed in
`WORKDIR/{method}/seed{S}` (finished runs are skipped, stopped ones resume;
every run is logged with an estimate of the time left), evaluates it
(domain FID and precision/recall of the digit-classifier features, see
`evaluate`), and fits scikit-learn KMeans (K of the preset, k-means++, 10
restarts, seed S) on the same digits' pixels. Writes `WORKDIR/digits.md`:
per-seed NMI, smallest component share, FID, precision/recall and training
seconds; mean +- std and worst seed; and verdicts over paired seeds
(competitive against KMeans in NMI, against each baseline in FID).

Methods: competitive (the preset, discriminator ratios), competitive_elbo
(the same with `ratio.kind='elbo'`), competitive_posterior (with
`ratio.kind='posterior'`, a K-way classifier of the components' samples),
competitive_latent and competitive_elbo_latent (the discriminator and ELBO
ratios started from one VAE trained on all the digits, `configs/mnist.py`'s
`latent`), competitive_latent_disc (the discriminator ratio from that start,
its discriminators reading the shared VAE's latent means, `latent_disc`),
bagging (same K and VAE), vae8 (one VAE of the components' size), vae64 and
vae96 (the paper's larger single VAEs).
Every method runs the preset's schedule, so all see the same number of
images per component step budget (see configs/mnist.py). `--preset=paper`
runs appendix D's settings on the offline digits (`configs/mnist.py:paper,
offline`: K = 15, 64-128-256 discriminators, 10 iterations), sized for an
accelerator; KMeans then uses the same K.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os

from absl import app
from absl import flags
from sklearn.cluster import KMeans

from competitive_mixtures import cli
from competitive_mixtures import data as data_lib
from competitive_mixtures import experiments
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.metrics import clustering

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for all runs and the table.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per method.")
_METHODS = flags.DEFINE_list("methods", ["competitive", "competitive_posterior",
                                         "competitive_elbo", "bagging", "vae8"],
                             "Methods to run (see the module doc; vae64 takes about 90 "
                             "minutes on a 2-core CPU, vae96 longer).")
_PRESET = flags.DEFINE_enum("preset", "quick", ["quick", "paper", "small"],
                            "quick: the offline preset; paper: appendix D on the offline "
                            "digits (for an accelerator); small: a smoke test.")

METHODS = {"competitive": "", "competitive_elbo": "elbo", "competitive_posterior": "posterior",
           "competitive_latent": "latent", "competitive_elbo_latent": "elbo,latent",
           "competitive_latent_disc": "latent_disc",
           "bagging": "strategy=bagging",
           "vae8": "vae8", "vae64": "vae64", "vae96": "vae96"}
# FID features: the digit classifier trained on the offline digits (see evaluate).
FEATURES = "digits"


def config_for(config_dir: str, method: str, preset: str, seed: int,
               overrides: Sequence[str] = ()):
    parts = ["offline", METHODS[method]] + ([preset] if preset != "quick" else [])
    return experiments.seeded_config("mnist", parts, config_dir, seed, overrides)


def kmeans_nmi(config, seed: int) -> float:
    """NMI of scikit-learn KMeans on the run's training digits (pixels in [0, 1])."""
    dataset = data_lib.load(config)
    points = data_lib.to_data_space(dataset.x).reshape(len(dataset.x), -1)
    owner = KMeans(config.num_components, n_init=10, random_state=seed).fit_predict(points)
    return clustering.clustering_scores(owner, dataset.label, config.num_components)["nmi"]


def _fid(result: dict) -> dict:
    return result.get("image_quality", {}).get(FEATURES, {})


def write_table(results: dict, kmeans: list[float], seeds: int, path: str) -> str:
    methods = list(results)
    lines = [f"# Offline digits ({seeds} seed(s); mean +- std over seeds, worst seed)", "",
             "| method | NMI | smallest share | domain FID | precision | recall | "
             "training s |", "|---|---|---|---|---|---|---|"]

    def cell(values, worst=min):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        return f"{experiments.mean_std(values)} (worst {worst(values):.2f})"

    for method in methods:
        runs = results[method]
        nmi = [r["clustering"]["nmi"] if r["num_components"] > 1 else None for r in runs]
        share = [min(r["alphas"]) if r["num_components"] > 1 else None for r in runs]
        lines.append(" | ".join([
            f"| {method}", cell(nmi), cell(share), cell([_fid(r).get("fid") for r in runs], max),
            cell([_fid(r).get("precision") for r in runs]),
            cell([_fid(r).get("recall") for r in runs]),
            cell([r["training_seconds"] for r in runs], max)]) + " |")
    lines.append(f"| KMeans (pixels) | {cell(kmeans)} | - | - | - | - | - |")
    lines += ["", "Verdicts over paired seeds ('beats' needs the mean ahead and "
              f"{experiments.WIN_SHARE:.0%} of the seeds won):", ""]
    for method in methods:
        runs = results[method]
        if runs[0]["num_components"] > 1 and method.startswith("competitive"):
            lines.append(f"- {method} vs KMeans, NMI: " + experiments.verdict(
                [r["clustering"]["nmi"] for r in runs], kmeans))
    for ours in (m for m in methods if m.startswith("competitive")):
        for other in (m for m in methods if not m.startswith("competitive")):
            a = [_fid(r).get("fid") for r in results[ours]]
            b = [_fid(r).get("fid") for r in results[other]]
            if None not in a + b:
                lines.append(f"- {ours} vs {other}, domain FID: "
                             + experiments.verdict(a, b, higher_is_better=False))
    lines += ["", "Per seed (NMI / domain FID):", "",
              "| seed | " + " | ".join(methods) + " | KMeans NMI |",
              "|---" * (len(methods) + 2) + "|"]
    for seed in range(seeds):
        cells = []
        for method in methods:
            r = results[method][seed]
            nmi = f"{r['clustering']['nmi']:.3f}" if r["num_components"] > 1 else "-"
            fid = _fid(r).get("fid")
            cells.append(f"{nmi} / {fid:.1f}" if fid is not None else nmi)
        lines.append(f"| {seed} | " + " | ".join(cells) + f" | {kmeans[seed]:.3f} |")
    return experiments.write_lines(lines, path)


def main(argv):
    del argv
    unknown = set(_METHODS.value) - set(METHODS)
    if unknown:
        raise app.UsageError(f"unknown method(s) {sorted(unknown)}; choose from {list(METHODS)}")
    results = {method: [] for method in _METHODS.value}
    kmeans = []
    progress = experiments.Progress(_SEEDS.value * len(_METHODS.value), "digits run")
    for seed in range(_SEEDS.value):
        for method in _METHODS.value:
            config = config_for(experiments.CONFIG_DIR.value, method, _PRESET.value, seed,
                                experiments.OVERRIDES.value)
            run = os.path.join(_WORKDIR.value, method, f"seed{seed}")
            progress.step(f"{method}, seed {seed} -> {run}")
            result = experiments.run_one(config, run)
            result["training_seconds"] = experiments.training_seconds(run)
            results[method].append(result)
        kmeans.append(kmeans_nmi(config_for(experiments.CONFIG_DIR.value, "competitive",
                                            _PRESET.value, seed,
                                            experiments.OVERRIDES.value), seed))
    text = write_table(results, kmeans, _SEEDS.value, os.path.join(_WORKDIR.value, "digits.md"))
    workdir_lib.write_text_atomic(os.path.join(_WORKDIR.value, "digits.json"), json.dumps(
        {"results": results, "kmeans_nmi": kmeans}, default=float))
    print(text)


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
