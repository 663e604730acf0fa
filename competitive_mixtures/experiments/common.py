"""The helpers the experiment drivers share: a preset's config for one seed, one
run trained (or reused) and evaluated, tables of mean +- std, worst seed and
paired-seed verdicts, side-by-side sample figures, progress logging, and the
`--config_dir` and `--set` flags of the drivers that take them (`define_flags`).
"""

from collections.abc import Sequence
import json
import os
import time

from absl import flags
from absl import logging
import jax
import numpy as np

from competitive_mixtures import config as config_lib
from competitive_mixtures import plots
from competitive_mixtures import sampling
from competitive_mixtures import train
from competitive_mixtures import restore
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.metrics import report


def define_flags() -> None:
    """`--config_dir` and `--set` (read as `flags.FLAGS.config_dir` and
    `flags.FLAGS.set`), for the drivers that load presets from the config
    folder; a driver calls it from its own `define_flags` when it runs as a
    program, so importing this module defines no flags."""
    flags.DEFINE_string("config_dir", config_lib.CONFIG_DIR,
                        "Folder holding the experiment configs (configs/).")
    flags.DEFINE_multi_string(
        "set", [], "FIELD=VALUE set on every run's config (repeatable), e.g. "
        "--set=epochs_per_round=24 --set=disc.input_noise=0.05; the seeds stay the "
        "driver's. Give such runs their own --workdir: a finished run of another config is "
        "refused.")


def seeded_config(name: str, parts: list[str], config_dir: str, seed: int,
                  overrides: Sequence[str] = ()):
    """`configs/NAME.py` with the arguments `parts` (empty ones dropped) and the
    `FIELD=VALUE` `overrides` (`config.apply_overrides`), for one seed of model
    and data. Boosting gets the K - 1 rounds it needs at least."""
    config = config_lib.load_config_file(name, ",".join(p for p in parts if p), config_dir)
    config_lib.apply_overrides(config, overrides)
    config.seed = seed
    config.data.seed = seed
    if config.strategy == "boosting":
        config.num_rounds = max(config.num_rounds, config.num_components - 1)
    return config


def run_one(config, workdir: str) -> dict:
    """Trains (or resumes) one run and evaluates it once; returns eval.json's content.

    A finished run is reused only if its config.json is `config`; otherwise
    ConfigError names the fields that differ (another preset or `--set` needs
    its own workdir).
    """
    result = finished(config, workdir)
    if result is not None:
        return result
    train.train_and_evaluate(config, workdir)
    return report.evaluate_run(workdir, num_samples=config.eval.num_samples)


def finished(config, workdir: str) -> dict | None:
    """eval.json of a finished and evaluated run of `config` in `workdir`, else None.

    Raises ConfigError naming the fields that differ when the workdir holds a
    run of another config.
    """
    eval_path = os.path.join(workdir, "eval.json")
    if not os.path.exists(eval_path):
        return None
    workdir_lib.Workdir(workdir).config_changes(config, allow_change=False)
    with open(eval_path) as f:
        result = json.load(f)
    return result if result["round"] == config.num_rounds else None


def sample_figure(runs: dict[str, str], path: str, title: str, num_samples: int = 5000) -> None:
    """Side-by-side 2-D samples of finished runs (`{panel name: workdir}`) over the
    held-out data of the first run."""
    panels = []
    for name, run in runs.items():
        _, programs, state = restore.restore_run(run)
        samples, component = sampling.draw_samples(programs.gen_model, state.gen, state.alpha,
                                                jax.random.PRNGKey(0), num_samples)
        panels.append((name, samples, component))
    with np.load(os.path.join(next(iter(runs.values())), "heldout.npz")) as f:
        heldout = f["x"]
    plots.sample_panels(path, heldout, panels, title=title)


def mean_std(values) -> str:
    """'mean +- std' of a list of numbers, two decimals."""
    values = np.asarray(values, float)
    return f"{values.mean():.2f} +- {values.std():.2f}"


def spread(values, higher_is_better: bool = True) -> str:
    """'mean +- std (worst W)' over seeds; the worst is the lowest or the highest value."""
    worst = min(values) if higher_is_better else max(values)
    return f"{mean_std(values)} (worst {worst:.2f})"


# "A beats B" needs A ahead on average and on at least this share of paired seeds
# (4 of 5; all of 3).
WIN_SHARE = 0.8


def verdict(ours, theirs, higher_is_better: bool = True) -> str:
    """Whether `ours` beats `theirs` over paired seeds (same data, same init seed).

    Returns 'beats (W/S seeds, mean +D)' when the mean is ahead and W >= 80% of
    the S seeds are won, else 'not established (W/S seeds, mean +D)'; seeds
    where both are equal are counted ('W/S seeds, T tied').
    """
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * (ours - theirs)
    wins, ties, seeds = int(np.sum(gain > 0)), int(np.sum(gain == 0)), len(gain)
    ahead = gain.mean() > 0 and wins >= int(np.ceil(WIN_SHARE * seeds))
    tied = f", {ties} tied" if ties else ""
    return (f"{'beats' if ahead else 'not established'} ({wins}/{seeds} seeds{tied}, "
            f"mean {sign * gain.mean():+.2f})")


class Progress:
    """Logs 'i of n' with elapsed time and an estimate of what is left."""

    def __init__(self, total: int, what: str):
        self.total, self.what, self.done = total, what, 0
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        elapsed = time.perf_counter() - self.start
        # No estimate before the first item that took time (finished runs are skipped).
        left = (f"about {elapsed / self.done * (self.total - self.done):.0f} s left"
                if self.done and elapsed >= 1 else "time left not yet known")
        logging.info("%s %d of %d: %s (elapsed %.0f s, %s)", self.what, self.done + 1,
                     self.total, label, elapsed, left)
        self.done += 1


def training_seconds(workdir: str) -> float:
    """Seconds the run's rounds took (metrics.jsonl), without compilation and evaluation."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return float(sum(json.loads(line)["seconds"] for line in f if line.strip()))


def write_lines(lines: list[str], path: str) -> str:
    """Writes the markdown `lines` to `path`; returns the text."""
    text = "\n".join(lines) + "\n"
    workdir_lib.write_text_atomic(path, text)
    return text
