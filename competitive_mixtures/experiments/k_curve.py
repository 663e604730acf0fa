"""How many components: the held-out bound of a preset trained at a list of K.

    python -m competitive_mixtures.experiments.k_curve \
        --config=configs/synthetic.py:modes=5 --ks=1,2,3,4,5,6,7,8 --seeds=5 \
        --workdir=runs/k_curve_g5 [--auto=2,15]

Every (K, seed) trains the preset with `num_components=K` (model and data seeded
by the seed) in WORKDIR/k{K}/seed{S}; finished runs are reused, so the driver
resumes. Each run is then scored by `auto_k`'s own criterion on `auto_k`'s own
validation points (`auto_k.split_heldout` of the held-out set):

    C = mean_i log sum_j alpha_j exp(L_j(x_i)),

L_j the ELBO averaged over `auto_k.elbo_samples` draws (VAE families) or the
exact log-density (k-means family): a bound on the mixture's held-out
log-likelihood per point. `--auto=START,...` also runs the preset's `auto=START`
search (config files that take it, such as configs/synthetic.py) per seed, and
marks the K it ends with. The sweep trains the preset's rounds and a search
its own (40 in configs/synthetic.py); `--set=num_rounds=40` trains the sweep
as long as the searches (a search's config is then unchanged, so finished
searches are reused).

`auto_k`'s target against the curve: the K it finds should lie where the
sweep's curve of the same seed is within auto_k's price of its best,
C(K_found) >= max_K C(K) - price, price = `auto_k.min_gain` (a component is
worth keeping when it gains more than that). Written to WORKDIR/k_curve.png
(mean +- std over seeds, each seed's curve faint, the picks marked),
k_curve.json and k_curve.md.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np

from competitive_mixtures import auto_k
from competitive_mixtures import cli
from competitive_mixtures import data as data_lib
from competitive_mixtures import plots
from competitive_mixtures import train
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.experiments import common
from competitive_mixtures.mixture import Mixture

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The driver's flags, defined when it runs as a program (importing it defines none,
    so it imports beside the other drivers)."""
    flags.DEFINE_string("config", "configs/synthetic.py:modes=5",
                        "configs/NAME.py[:ARGS] of the preset to sweep.")
    flags.DEFINE_list("ks", ["1", "2", "3", "4", "5", "6", "7", "8"], "The K to train.")
    flags.DEFINE_integer("seeds", 5, "Seeds 0..S-1 of every K.")
    flags.DEFINE_list("auto", [], "Starts of an auto_k run per seed (config arg auto=START).")
    flags.DEFINE_string("workdir", "runs/k_curve", "Folder of the runs and the figure.")
    common.define_flags()


def config_for(config_arg: str, config_dir: str, seed: int, k: int | None = None,
               auto: int | None = None, overrides: Sequence[str] = ()):
    """The preset at K = `k` (or its `auto=START` search) for one seed, with the
    `FIELD=VALUE` `overrides` (`--set`)."""
    path, _, arg = config_arg.partition(":")
    name = os.path.splitext(os.path.basename(path))[0]
    parts = arg.split(",") + ([f"auto={auto}"] if auto is not None else [])
    config = common.seeded_config(name, parts, config_dir, seed, overrides)
    if k is not None:
        config.num_components = k
    return config


def bound(workdir: str) -> tuple[float, int]:
    """`auto_k`'s criterion C of a finished run on its validation points, and the
    number of components that hold points."""
    m = Mixture.load(workdir)
    config = m.config
    dataset = data_lib.load(config)
    validation, _, _ = auto_k.split_heldout(config, dataset.heldout_x, dataset.heldout_label)
    draws = 1 if not m.has_elbo else config.auto_k.elbo_samples
    if m.has_elbo:
        log_lik = np.mean([m.elbo(validation, seed=d, space="model") for d in range(draws)],
                          axis=0)
    else:
        log_lik = m.log_ratios(validation, space="model")
    active = np.asarray(m.state.active, bool)
    value, _, _ = auto_k.criterion(np.asarray(log_lik, np.float64), m.alphas, active)
    return value, int(np.sum(active & (m.alphas > 0)))


def measure(workdir: str, config) -> dict:
    """Trains (or reuses) one run and returns its bound and component count. A finished
    run of another config in `workdir` is refused (ConfigError)."""
    if os.path.exists(os.path.join(workdir, "summary.json")):
        workdir_lib.Workdir(workdir).config_changes(config, allow_change=False)
    else:
        train.train_and_evaluate(config, workdir)
    value, used = bound(workdir)
    return {"bound": value, "components": used}


def within_price(curve: dict[int, float], k: int, price: float) -> bool:
    """Whether C(k) is within `price` of the curve's best (k outside the curve: no)."""
    return k in curve and curve[k] >= max(curve.values()) - price


def run(config_arg: str, ks: list[int], seeds: int, auto: list[int], workdir: str,
        config_dir: str, overrides: Sequence[str] = ()) -> dict:
    """Trains the sweep (and the searches), scores every run; writes the figure and tables."""
    os.makedirs(workdir, exist_ok=True)
    total = len(ks) * seeds + len(auto) * seeds
    progress = common.Progress(total, "k_curve run")
    curves: dict[int, dict[int, float]] = {s: {} for s in range(seeds)}
    picks: dict[int, dict[int, dict]] = {start: {} for start in auto}
    price = None
    for seed in range(seeds):
        for k in ks:
            config = config_for(config_arg, config_dir, seed, k=k, overrides=overrides)
            price = config.auto_k.min_gain
            progress.step(f"K={k} seed {seed}")
            curves[seed][k] = measure(os.path.join(workdir, f"k{k}", f"seed{seed}"),
                                      config)["bound"]
        for start in auto:
            config = config_for(config_arg, config_dir, seed, auto=start, overrides=overrides)
            progress.step(f"auto={start} seed {seed}")
            found = measure(os.path.join(workdir, f"auto{start}", f"seed{seed}"), config)
            found["within_price"] = within_price(curves[seed], found["components"], price)
            picks[start][seed] = found
    result = {"config": config_arg, "ks": ks, "seeds": seeds, "price": price,
              "curves": {str(s): {str(k): v for k, v in c.items()} for s, c in curves.items()},
              "picks": {str(a): {str(s): p for s, p in by_seed.items()}
                        for a, by_seed in picks.items()}}
    with open(os.path.join(workdir, "k_curve.json"), "w") as f:
        json.dump(result, f, indent=1)
    plots.k_curve(os.path.join(workdir, "k_curve.png"), ks, curves, picks, price,
                  title=f"{config_arg}: held-out bound against K ({seeds} seeds)")
    text = common.write_lines(table(result), os.path.join(workdir, "k_curve.md"))
    print(text)
    return result


def table(result: dict) -> list[str]:
    """Markdown: the curve's mean +- std per K, and per seed each search's pick."""
    ks, seeds, price = result["ks"], result["seeds"], result["price"]
    curves = {int(s): {int(k): v for k, v in c.items()} for s, c in result["curves"].items()}
    lines = [f"Held-out bound C (nats per point) of {result['config']} against K, "
             f"{seeds} seeds; auto_k's price {price}.", "",
             "| K | " + " | ".join(f"seed {s}" for s in range(seeds)) + " | mean +- std |",
             "|---|" + "---|" * (seeds + 1)]
    for k in ks:
        values = [curves[s][k] for s in range(seeds)]
        lines.append(f"| {k} | " + " | ".join(f"{v:.3f}" for v in values)
                     + f" | {common.mean_std(values)} |")
    best = [max(curves[s], key=curves[s].get) for s in range(seeds)]
    band = [sorted(k for k in ks if within_price(curves[s], k, price)) for s in range(seeds)]
    lines += ["", "| " + " | ".join(["seed", "best K", "K within the price of the best"]
                                     + [f"auto from {a}" for a in result["picks"]]) + " |",
              "|---|---|---|" + "---|" * len(result["picks"])]
    for s in range(seeds):
        cells = [str(s), str(best[s]), str(band[s])]
        for start in result["picks"]:
            pick = result["picks"][start][str(s)]
            cells.append(f"{pick['components']} ({'in' if pick['within_price'] else 'out'})")
        lines.append("| " + " | ".join(cells) + " |")
    for start, by_seed in result["picks"].items():
        hits = sum(p["within_price"] for p in by_seed.values())
        lines.append(f"\nauto from {start}: within the price of the curve's best on {hits} "
                     f"of {len(by_seed)} seeds.")
    return lines


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        ks = sorted({int(k) for k in FLAGS.ks})
        auto = [int(a) for a in FLAGS.auto]
    except ValueError:
        cli.fail(f"--ks and --auto take integers, got {FLAGS.ks} and {FLAGS.auto}")
    if not ks or min(ks) < 1 or FLAGS.seeds < 1:
        cli.fail("--ks needs K >= 1 and --seeds at least 1")
    logging.info("k_curve of %s at K = %s, %d seeds", FLAGS.config, ks, FLAGS.seeds)
    run(FLAGS.config, ks, FLAGS.seeds, auto, FLAGS.workdir, FLAGS.config_dir, FLAGS.set)


if __name__ == "__main__":
    define_flags()
    logging.set_verbosity(logging.INFO)
    cli.run(main)
