"""How well each density-ratio estimator reads a finished run's generators.

python -m competitive_mixtures.experiments.read_ratios --workdir=DIR
    [--kinds=discriminator,elbo] [--fits=3] [--seeds=2]

Holds the run's final generators fixed and assigns every training point with
each estimator of `--kinds` (see `ratio/__init__.py`), as the run's own
assignment pass would (`assign.assign`, with the paper's dataset normaliser
where the kind uses it). A trained estimator (discriminator, multiclass,
posterior) starts from fresh networks and is fitted `--fits` times for the
config's `disc.epochs` each, once per seed of `--seeds`; each fit is read.
With `--fits=0` the run's own kind reads its checkpointed estimator, which
gives back the run's final assignment exactly, and untrained kinds (elbo,
exact) are read as usual. Prints, per reading, the NMI
against the true labels, the share of points given to the component that owns
them in the run, and the smallest and largest count.

It separates the two halves of the loop: an estimator that reads another
run's generators as well as that run's own score did is not what holds the
clustering back; generators that no estimator reads well are. Reads the
workdir only.
"""

from __future__ import annotations

import copy

from absl import flags
import jax
import numpy as np

from competitive_mixtures import assign
from competitive_mixtures import cli
from competitive_mixtures import points as points_lib
from competitive_mixtures import ratio as ratio_lib
from competitive_mixtures import train
from competitive_mixtures import restore
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.metrics import clustering
from competitive_mixtures.ratio import base

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("workdir", None, "Run directory with a finished round.")
    flags.DEFINE_list("kinds", None, "Estimators to read with (default: the run's own "
                      "kind, and elbo for a VAE run that did not use it).")
    flags.DEFINE_integer("fits", 3, "Fits of a fresh trained estimator, disc.epochs each "
                         "(0: the run's own kind reads its checkpointed state).")
    flags.DEFINE_integer("seeds", 2, "Fresh initialisations per trained estimator.")


# Keys of the readings, apart from the run's own streams.
READ_STREAM = 2**31 - 5


def read(config, programs, state, x, kind: str, fits: int, seeds: int) -> list[dict]:
    """Assignments of the training points `x` by estimator `kind` under the run's generators.

    Returns one record per reading: `{"seed", "epochs", "owner"}` (`epochs` is
    None for an estimator that trains nothing or for the checkpointed one).
    """
    checkpointed = kind == config.ratio.kind and fits == 0
    if checkpointed:
        estimator = programs.ratio
    else:
        other = copy.deepcopy(config)
        other.ratio.kind = kind
        estimator = ratio_lib.make(other, programs.gen_model, x.shape[1:], programs.mesh)
        if fits == 0 and estimator.model is not None:
            raise ValueError(f"--fits=0 reads the run's own estimator ({config.ratio.kind!r}) "
                             f"and the untrained ones; {kind!r} needs --fits >= 1")
    trained = estimator.model is not None and fits > 0
    active = np.asarray(state.active)
    base_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), READ_STREAM)
    records = []
    for seed in range(seeds if trained else 1):
        key = jax.random.fold_in(base_key, seed)
        # A fresh estimator keeps the run's fixed features (`disc.features='latent'`).
        disc = state.disc if checkpointed else base.keep_features(
            estimator.init(key, base.example_batch(x, key)), state.disc)
        for fit in range(fits if trained else 1):
            if trained:
                disc, _ = estimator.fit(disc, state.gen, x, jax.random.fold_in(key, fit + 1),
                                        key, active)
            scores = estimator.log_ratios(disc, state.gen, x, jax.random.fold_in(key, 0))
            result = assign.assign(scores, 0, normalise_ratio=estimator.normalise,
                                   active=state.active)
            records.append({"seed": seed,
                            "epochs": (fit + 1) * config.disc.epochs if trained else None,
                            "owner": points_lib.to_host(result.owner)})
    return records


def table(records: dict, label: np.ndarray, run_owner: np.ndarray, k: int) -> str:
    """One line per reading: NMI, agreement with the run's owners, count range."""
    lines = [f"the run's own assignment: NMI "
             f"{clustering.clustering_scores(run_owner, label, k)['nmi']:.3f}", "",
             "| estimator | seed | epochs | NMI | same owner as the run | counts |",
             "|---|---|---|---|---|---|"]
    for kind, readings in records.items():
        for r in readings:
            owner = np.asarray(r["owner"])
            count = np.bincount(owner, minlength=k)
            nmi = clustering.clustering_scores(owner, label, k)["nmi"]
            epochs = "-" if r["epochs"] is None else f"{r['epochs']:g}"
            lines.append(f"| {kind} | {r['seed']} | {epochs} | {nmi:.3f} | "
                         f"{np.mean(owner == run_owner):.3f} | {count.min()}-{count.max()} |")
    return "\n".join(lines)


def main(argv):
    del argv
    if FLAGS.fits < 0 or FLAGS.seeds < 1:
        cli.fail(f"--fits must be >= 0 and --seeds >= 1, got {FLAGS.fits} and {FLAGS.seeds}")
    try:
        config, programs, state = restore.restore_run(FLAGS.workdir)
    except FileNotFoundError as error:
        cli.fail(str(error))
    kinds = FLAGS.kinds or [config.ratio.kind] + (
        ["elbo"] if getattr(programs.gen_model, "has_elbo", False)
        and config.ratio.kind != "elbo" else [])
    unknown = sorted(set(kinds) - set(ratio_lib.KINDS))
    if unknown:
        cli.fail(f"--kinds: unknown {unknown}; known: {sorted(ratio_lib.KINDS)}")
    dataset, x = train.load_points(config, programs.mesh)
    with open(workdir_lib.Workdir(FLAGS.workdir).file("assignments.npz"), "rb") as f, \
            np.load(f) as saved:
        run_owner = saved["assignment"]
    records = {}
    for kind in kinds:
        try:
            records[kind] = read(config, programs, state, x, kind, FLAGS.fits, FLAGS.seeds)
        except ValueError as error:
            cli.fail(str(error))
    print(table(records, np.asarray(dataset.label), run_owner, config.num_components))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
