"""Clustering of a finished run against k-means on the raw data.

python -m competitive_mixtures.experiments.kmeans_baseline --workdir=DIR [--seeds=3]

Fits scikit-learn KMeans (same K, k-means++ init, 10 restarts; for a run that
chose K with `auto_k`, the K it ended with) on the run's training points (raw
pixels for images) and prints NMI, ARI and purity of both clusterings against
the true labels. Reads the workdir only.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags
import numpy as np
from sklearn.cluster import KMeans

from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures.metrics import clustering

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("workdir", None, "Run directory with a finished round.")
    flags.DEFINE_integer("seeds", 3, "KMeans seeds (mean +- std is printed).")


def main(argv):
    del argv
    workdir = FLAGS.workdir
    with open(os.path.join(workdir, "config.json")) as f:
        config = config_lib.from_dict(json.load(f))
    dataset = data_lib.load(config)
    with np.load(os.path.join(workdir, "assignments.npz")) as f:
        owner, label = f["assignment"], f["label"]
    if not np.array_equal(label, dataset.label):
        raise SystemExit("error: the workdir's labels differ from the config's dataset")
    k = config.num_components
    summary_path = os.path.join(workdir, "summary.json")
    if config.auto_k.enabled and os.path.exists(summary_path):
        with open(summary_path) as f:
            k = json.load(f)["active_components"]
    ours = clustering.clustering_scores(owner, label, config.num_components)
    points = data_lib.to_data_space(dataset.x).reshape(len(dataset.x), -1)
    runs = [clustering.clustering_scores(
        KMeans(k, n_init=10, random_state=seed).fit_predict(points), label, k)
        for seed in range(FLAGS.seeds)]
    print(f"{dataset.name}, K={k}, {len(points)} points")
    print(f"  {'':24} {'nmi':>14} {'ari':>14} {'purity':>14}")
    print(f"  {'competitive (this run)':24} " +
          " ".join(f"{ours[m]:>14.4f}" for m in ("nmi", "ari", "purity")))
    cells = []
    for m in ("nmi", "ari", "purity"):
        values = np.array([r[m] for r in runs])
        cells.append(f"{values.mean():.4f}+-{values.std():.4f}")
    print(f"  {'k-means, raw data':24} " + " ".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
