"""The end of a training run: summary.json, the figures, the pre-training samples."""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import numpy as np

from competitive_mixtures import auto_k
from competitive_mixtures import data as data_lib
from competitive_mixtures import plots
from competitive_mixtures import points as points_lib
from competitive_mixtures import programs as programs_lib
from competitive_mixtures import sampling
from competitive_mixtures import stacking
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.metrics import clustering
from competitive_mixtures.metrics import kde
from competitive_mixtures.metrics import modes
from competitive_mixtures.state import MixtureState


# Samples kept from the models as pre-training left them, for the before/after figure.
PRETRAINED_SAMPLES = "pretrained_samples.npz"


def save_pretrained_samples(config, programs: programs_lib.Programs, state: MixtureState, dataset,
                             work: workdir_lib.Workdir) -> None:
    """Samples of every component after pre-training (round 0), equally many each.

    2-D data: `x` `[M, 2]` and `component` `[M]` for `figures/before_after.png`;
    images: `grid` `[K, sampling.GRID_COLUMNS, H, W, C]` for `figures/components_pretrained.png`.
    """
    key = jax.random.fold_in(state.rng, programs_lib.PRETRAINED_STREAM)
    k = config.num_components
    if len(dataset.data_shape) == 3:
        grid = np.asarray(stacking.sample(programs.gen_model, state.gen,
                                          jax.random.split(key, k), sampling.GRID_COLUMNS))
        work.save_npz(PRETRAINED_SAMPLES, grid=grid)
        return
    uniform = jnp.full((k,), 1.0 / k)
    samples, component = sampling.draw_samples(programs.gen_model, state.gen, uniform, key,
                                      min(config.eval.num_samples, 5000))
    work.save_npz(PRETRAINED_SAMPLES, x=samples, component=component)


def finish(config, programs: programs_lib.Programs, state: MixtureState, dataset,
           x: points_lib.Data, work: workdir_lib.Workdir, records: list[dict]) -> dict:
    """End-of-run evaluation: KDE log-likelihood, clustering, figures; writes summary.json."""
    key = jax.random.fold_in(state.rng, programs_lib.EVAL_STREAM)
    samples, component = sampling.draw_samples(programs.gen_model, state.gen, state.alpha, key,
                                      config.eval.num_samples)
    summary: dict[str, Any] = {
        "rounds": int(state.round),
        "counts": np.bincount(np.asarray(state.owner), minlength=config.num_components).tolist(),
        "alphas": [float(a) for a in np.asarray(state.alpha)],
        "active_components": int(np.sum(state.active))}
    summary["kde"] = kde.kde_log_likelihood(samples, data_lib.to_data_space(dataset.heldout_x))
    logging.info("KDE log-likelihood of %d held-out points under %d mixture samples: %.4f "
                 "(bandwidth %.4g chosen on held-out samples)", len(dataset.heldout_x),
                 len(samples), summary["kde"]["log_likelihood"], summary["kde"]["bandwidth"])
    if dataset.centres is not None:
        found = modes.mode_metrics(samples, dataset.centres, dataset.mode_std)
        summary["modes"] = {**found, "mode_counts": found["mode_counts"].tolist()}
        logging.info("modes covered: %d of %d; high-quality samples: %.3f",
                     found["modes_covered"], found["num_modes"], found["high_quality_share"])
    if dataset.num_classes:
        summary["clustering"] = clustering.clustering_scores(
            np.asarray(state.owner), dataset.label, config.num_components)
        logging.info("clustering against true modes: %s", summary["clustering"])
    per_component = owned = None
    owner = np.asarray(state.owner)
    if len(dataset.data_shape) == 3:
        per_component = np.asarray(stacking.sample(
            programs.gen_model, state.gen, jax.random.split(key, config.num_components),
            sampling.GRID_COLUMNS))
        # The first points each component owns, read from the devices that hold them.
        firsts = [np.flatnonzero(owner == j)[:sampling.GRID_COLUMNS]
                  for j in range(config.num_components)]
        rows = np.asarray(points_lib.take(x, np.concatenate(firsts).astype(np.int32)))
        owned = np.split(rows, np.cumsum([len(f) for f in firsts])[:-1])
    all_x = points_lib.to_host(x) if dataset.data_shape == (2,) else None
    if work.lead:
        _figures(config, state, dataset, work, records, samples, component, per_component,
                 owned, all_x)
        work.write_text("summary.json", json.dumps(summary, indent=2))
    return summary


def _figures(config, state: MixtureState, dataset, work: workdir_lib.Workdir,
             records: list[dict], samples: np.ndarray, component: np.ndarray, per_component,
             owned, all_x) -> None:
    """The PNG figures of a finished run (written by the lead process).

    `owned`: the first images each component owns (image data); `all_x`: all
    N points (2-D data).
    """
    owner = np.asarray(state.owner)
    if all_x is not None:
        plots.owners_and_samples(os.path.join(work.figures, "owners_and_samples.png"),
                                 all_x, owner, samples, component, np.asarray(state.alpha),
                                 title=f"{config.strategy}, K={int(np.sum(state.active))}, "
                                       f"after round {int(state.round) - 1}")
    if per_component is not None:
        plots.component_grids(os.path.join(work.figures, "components.png"), per_component,
                              owned, np.asarray(state.alpha))
    if dataset.num_classes:
        plots.class_heatmap(os.path.join(work.figures, "classes.png"),
                            clustering.contingency(owner, dataset.label, config.num_components,
                                                   dataset.num_classes))
    pretrained = work.file(PRETRAINED_SAMPLES)
    if epath.Path(pretrained).exists():
        with epath.Path(pretrained).open("rb") as f, np.load(f) as before:
            if all_x is not None and "x" in before:
                last = int(state.round) - 1
                plots.sample_panels(
                    os.path.join(work.figures, "before_after.png"), all_x,
                    [("after pre-training (round 0)", before["x"], before["component"]),
                     (f"after round {last}", samples, component)],
                    title=f"{config.strategy}, K={config.num_components}: samples of every "
                          "component (grey: data)")
            if per_component is not None and "grid" in before:
                plots.component_grids(os.path.join(work.figures, "components_pretrained.png"),
                                      before["grid"], None,
                                      np.full(config.num_components, 1.0 / config.num_components),
                                      title="samples after pre-training (round 0)")
    if records:  # metrics.jsonl may have been lost; the checkpoint alone resumes.
        plots.counts_over_rounds(os.path.join(work.figures, "counts.png"),
                                 [r["round"] for r in records], [r["counts"] for r in records],
                                 auto_k.event_marks(records))
