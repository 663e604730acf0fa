"""The host-side loop of rounds (Algorithm 1): orchestration, checkpoints, logging.

One round (paper, Algorithm 1):
  1. M-step: every component trains on its training set (round 0: the random
     pre-training split, for `pretrain_epochs`; later rounds `epochs_per_round`).
  2. Discriminator fit: D_j learns data (whole dataset) vs samples of g_j.
  3. Assignment pass: log ratios of all N points -> owners, alphas, training sets.
The density ratios come from the estimator `config.ratio.kind` (`ratio/`).
Steps 2-3 belong to the strategy (`strategies.py`): bagging and single skip
them; boosting (AdaGAN) trains one component per stage of rounds and runs
them only when a stage ends, to add that component to the mixture and draw
the next one's re-weighted data.
A checkpoint of the whole state is written after every round; rerunning the
same command resumes from the newest one. What the run compiles and starts
from is in `programs.py`, its files in `workdir.py`, the end-of-run summary
and figures in `summary.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import auto_k
from competitive_mixtures import checkpointing
from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures import errors
from competitive_mixtures import latent_split
from competitive_mixtures import points as points_lib
from competitive_mixtures import ratio as ratio_lib
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import loops
from competitive_mixtures import programs as programs_lib
from competitive_mixtures import strategies
from competitive_mixtures import summary as summary_lib
from competitive_mixtures import tensorboard_log
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.metrics import clustering
from competitive_mixtures.models import kmeans
from competitive_mixtures.programs import Programs, init_state, make_programs
from competitive_mixtures.state import MixtureState


def run_m_step(programs: Programs, gen, num_steps: np.ndarray, key, x: points_lib.Data,
               sets, label: str | None = None, round_index: int | None = None,
               progress: checkpointing.RoundProgress | None = None) -> tuple[Any, np.ndarray]:
    """The M-step: component j takes `num_steps[j]` steps on its training set.

    With `progress`, the M-step of round `round_index` carries on from its
    newest saved step and saves its own every `progress.every_s` seconds.
    Returns the generators and the mean loss per component over the steps it took.
    """
    resume, save = None, None
    if progress is not None:
        restored = progress.restore(round_index, gen, sharding.replicated(programs.mesh))
        if restored is not None:
            gen, resume = restored
            logging.info("round %d: the M-step resumes at step %d (%d of %d component-steps "
                         "done)", round_index, resume.offset, int(resume.taken.sum()),
                         int(num_steps.sum()))
        if progress.every_s > 0:
            save = functools.partial(progress.save, round_index)
    return loops.run_chunks(programs.m_step, gen, num_steps.astype(np.int64), programs.m_chunk,
                            key, x, sets, groups=programs.m_groups, label=label, resume=resume,
                            save=save, save_every_s=progress.every_s if progress else 0.0)


def _reset_broken(programs: Programs, state: MixtureState, gen, gen_loss: np.ndarray,
                  key, x: points_lib.Data):
    """Re-initialises components whose parameters or loss are not finite.

    Only the broken components change; the others' parameters and optimizer
    states pass through untouched.
    """
    broken = ~np.asarray(stacking.all_finite(gen.params)) | ~np.isfinite(gen_loss)
    broken &= np.asarray(state.sets.size) > 0
    if not broken.any():
        return gen, []
    k = broken.shape[0]
    init_key, example_key = jax.random.split(key)
    fresh = stacking.init(programs.gen_model, programs.gen_optimizer,
                          jax.random.split(init_key, k),
                          ratio_lib.base.example_batch(x, example_key))
    gen = stacking.select(jnp.asarray(broken), fresh, gen)
    return gen, [int(j) for j in np.flatnonzero(broken)]


def score_dataset(programs: Programs, stack, x, batch_size: int) -> jax.Array:
    """The assignment pass's scores `[N, K]`, streamed in fixed-size batches.

    `x` may be `points.Points`, or live on the host (numpy) or on the
    devices (see `loops.stream_scores`).
    """
    return loops.stream_scores(programs.score, programs.mesh, stack, x, batch_size)


def m_step_counts(config: ml_collections.ConfigDict, set_sizes: np.ndarray, epochs: int,
                  round_index: int, num_points: int, num_active: int | None = None) -> np.ndarray:
    """`[K]` M-step steps of each component this round.

    'epochs' (the paper): `epochs` passes over the component's own training
    set, so a component's budget grows with its share. 'equal': every
    component with a non-empty set takes the steps of `epochs` passes over an
    equal share N/K (K the active components, `num_active`, all by default),
    whatever its share; pre-training (round 0) keeps 'epochs'.
    """
    if config.step_budget == "equal" and round_index > 0:
        k = config.num_components if num_active is None else num_active
        equal = np.ceil(epochs * num_points / (k * config.batch_size))
        return np.where(set_sizes > 0, equal, 0).astype(np.int64)
    return np.ceil(epochs * set_sizes / config.batch_size).astype(np.int64)


def run_round(config: ml_collections.ConfigDict, programs: Programs, state: MixtureState,
              x: points_lib.Data, validation: np.ndarray | None = None,
              progress: checkpointing.RoundProgress | None = None
              ) -> tuple[MixtureState, dict]:
    """One round: the M-step, then the strategy's end of round (for competition the
    ratio estimator's fit and the assignment pass, see `strategies.Strategy.end_round`).
    Returns the new state and the round's record for `metrics.jsonl`.

    `x` holds the N training points: `points.Points` split over the devices
    (what `train_and_evaluate` passes), or an array replicated on them.
    `validation`: the held-out points of `auto_k`'s criterion (`auto_k.split_heldout`).
    `progress`: the M-step's own checkpoints (see `run_m_step`).
    """
    r = int(state.round)
    k = config.num_components
    m_key, disc_key, reinit_key, reset_key = jax.random.split(
        jax.random.fold_in(state.rng, r), 4)
    record: dict[str, Any] = {"round": r, "pretrain": r == 0}
    start = time.perf_counter()
    owner_before = np.asarray(state.owner)

    epochs = config.pretrain_epochs if r == 0 else config.epochs_per_round
    gen = state.gen
    if programs.exact:
        mu = kmeans.fit_centroids(points_lib.full(x), state.owner, state.sets.best,
                                  state.sets.balanced, gen.params["mu"])
        gen = gen.replace(params={**gen.params, "mu": mu})
        gen_loss = np.zeros(k)
    else:
        num_steps = m_step_counts(config, np.asarray(state.sets.size), epochs, r, x.shape[0],
                                  int(np.sum(state.active)))
        gen, gen_loss = run_m_step(programs, gen, num_steps, m_key, x, state.sets,
                                   label=f"round {r} {'pre-training' if r == 0 else 'M-step'}",
                                   round_index=r, progress=progress)
    gen, reset = _reset_broken(programs, state, gen, gen_loss, reset_key, x)
    if reset:
        logging.warning("round %d: components %s had non-finite loss or parameters and were "
                        "re-initialised", r, reset)
    record["reset_components"] = reset
    record["gen_loss"] = [None if not np.isfinite(v) else float(v) for v in gen_loss]
    jax.block_until_ready(gen)
    record["seconds_m_step"] = time.perf_counter() - start

    ratio_key = jax.random.fold_in(jax.random.fold_in(state.rng, r), programs_lib.RATIO_STREAM)
    fields = programs.strategy.end_round(
        config, programs, state, gen, x, strategies.RoundKeys(disc_key, reinit_key, ratio_key),
        record, validation)

    # One placement for the whole state, so every round calls the steps with
    # the same input shardings (no recompilation).
    state = sharding.replicate(
        state.replace(**{"gen": gen, **fields, "round": jnp.int32(r + 1)}), programs.mesh)
    # Read from the replicated state: on several hosts the assignment pass's
    # outputs span devices this process cannot address.
    owner = np.asarray(state.owner)
    record["counts"] = np.bincount(owner, minlength=k).tolist()
    # The share of the points that changed owner in this round's assignment pass.
    record["moved"] = float(np.mean(owner != owner_before))
    record["alphas"] = [float(a) for a in np.asarray(state.alpha)]
    record["balanced"] = [int(j) for j in np.flatnonzero(np.asarray(state.sets.balanced))]
    if config.auto_k.enabled:
        record["active"] = [int(j) for j in np.flatnonzero(np.asarray(state.active))]
    record["seconds"] = time.perf_counter() - start
    return state, record


def _time_left(records: list[dict], last_round: int) -> str:
    """An estimate of the time the remaining rounds take, from the finished ones
    (pre-training counts only while no later round has run)."""
    done = records[-1]["round"]
    if done >= last_round:
        return "done"
    rounds = [r["seconds"] for r in records if r["round"] > 0] or [records[-1]["seconds"]]
    return f"about {np.mean(rounds) * (last_round - done):.0f}s left"


def check_divergence(config: ml_collections.ConfigDict, records: list[dict],
                     record: dict) -> None:
    """The divergence policy, applied to a finished round before it is checkpointed.

    Raises DivergenceError when every component was re-initialised in this
    round, or one component in `divergence.max_consecutive_resets`
    consecutive rounds (this one included); `records` are the earlier rounds.
    """
    reset = set(record.get("reset_components", []))
    if not reset:
        return
    k, r = len(record.get("active", range(config.num_components))), record["round"]
    advice = ("lower the learning rates (model.learning_rate, disc.learning_rate) or check the "
              "data; the checkpoint of the last good round is kept")
    if len(reset) == k:
        raise errors.DivergenceError(
            f"round {r}: all {k} components diverged (non-finite loss or parameters); {advice}")
    limit = config.divergence.max_consecutive_resets
    for j in sorted(reset):
        streak = 1
        for earlier in reversed(records):
            if j not in earlier.get("reset_components", []):
                break
            streak += 1
        if streak >= limit:
            raise errors.DivergenceError(
                f"round {r}: component {j} diverged in {streak} consecutive rounds "
                f"(divergence.max_consecutive_resets={limit}); {advice}")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False, mesh=None) -> dict:
    """Trains (or resumes) the run in `workdir`; returns the final summary.

    `mesh` defaults to all devices of all hosts (`sharding.make_mesh()`).
    Holds the workdir's lock for the whole run. Nothing in the workdir is
    written before the config, the data and the newest checkpoint have been
    checked.
    """
    config_lib.validate(config)
    work = workdir_lib.Workdir(workdir, lead=jax.process_index() == 0)
    work.create()
    with work.lock():
        return _train(config, work, allow_config_change, mesh)


@contextlib.contextmanager
def _profiled(config: ml_collections.ConfigDict, work: workdir_lib.Workdir, r: int):
    """A `jax.profiler` trace of round 1 (round 0 when it is the last) with `config.profile`."""
    if config.profile and work.lead and r == min(1, config.num_rounds):
        path = work.file("profile")
        with jax.profiler.trace(path):
            yield
        logging.info("profile of round %d written to %s", r, path)
    else:
        yield


def load_points(config: ml_collections.ConfigDict, mesh):
    """The run's data and its training points on `mesh`: `(dataset, x)`.

    Every process loads only the training points its devices hold; images
    stay uint8 on the device (the models scale them), vectors are float32.
    The dataset's labels are those of all points (small), on every process,
    for clustering scores.
    """
    dataset = data_lib.load(config, share=lambda n: points_lib.local_rows(n, mesh))
    x = dataset.x if dataset.x.dtype == np.uint8 else dataset.x.astype(np.float32)
    x = points_lib.from_local(x, dataset.first, dataset.num_points, mesh)
    label = points_lib.to_host(points_lib.from_local(dataset.label, dataset.first,
                                                     dataset.num_points, mesh))
    return dataclasses.replace(dataset, label=label), x


def _train(config: ml_collections.ConfigDict, work: workdir_lib.Workdir,
           allow_config_change: bool, mesh) -> dict:
    mesh = sharding.make_mesh() if mesh is None else mesh
    dataset, x = load_points(config, mesh)
    config_lib.validate(config, dataset.num_points, dataset.data_shape)
    changed = work.config_changes(config, allow_config_change)
    logging.info("data %s: %d training points of shape %s, %d held out", dataset.name,
                 dataset.num_points, dataset.data_shape, len(dataset.heldout_x))
    if jax.process_count() > 1:
        logging.info("process %d holds training points [%d, %d)", jax.process_index(),
                     dataset.first, dataset.first + len(dataset.x))

    programs = make_programs(config, dataset.data_shape, mesh)
    state = init_state(config, programs, x)
    checkpointer = checkpointing.Checkpointer(work.file("checkpoints"),
                                              config.checkpoint.max_to_keep)
    try:
        try:
            restored = checkpointer.restore_latest(
                checkpointing.abstract(state, sharding.replicated(programs.mesh)))
        except config_lib.ConfigError as error:
            if not changed:
                raise config_lib.ConfigError(f"{error}; use a new --workdir") from None
            raise config_lib.ConfigError(
                f"the config change ({'; '.join(changed)}) alters the parameters' shapes, so "
                f"{work.path} cannot resume with it; use a new --workdir. ({error})") from None
        if restored is not None:
            state = restored
            logging.info("resumed from the checkpoint after round %d%s", int(state.round) - 1,
                         f" with config changes: {'; '.join(changed)}" if changed else "")
        # The checks passed: from here on the run writes.
        work.write_config(config)
        mode_info = {} if dataset.centres is None else {
            "centres": dataset.centres.astype(np.float32),
            "mode_std": np.float32(dataset.mode_std)}
        validation = None
        if config.auto_k.enabled:
            validation, rest_x, rest_label = auto_k.split_heldout(
                config, dataset.heldout_x, dataset.heldout_label)
            dataset = dataclasses.replace(dataset, heldout_x=rest_x, heldout_label=rest_label)
            if validation.dtype != np.uint8:
                validation = validation.astype(np.float32)
            logging.info("auto_k: %d held-out points for the criterion, %d for the evaluation",
                         len(validation), len(rest_x))
        heldout_x = dataset.heldout_x
        if heldout_x.dtype != np.uint8:
            heldout_x = heldout_x.astype(np.float32)
        work.save_npz("heldout.npz", x=heldout_x,
                      label=dataset.heldout_label.astype(np.int32), **mode_info)
        records = work.read_metrics(int(state.round))
        work.reset_metrics(records)

        last_round = config.num_rounds  # Round 0 is pre-training.
        writer = (tensorboard_log.Writer(work.file("tensorboard"))
                  if config.log.tensorboard and work.lead else None)
        # A saved M-step belongs to the config it ran with: after a change its round
        # starts over.
        progress = checkpointing.RoundProgress(work.file("m_step_checkpoints"),
                                               config.checkpoint.m_step_every_s)
        if changed:
            progress.clear()
        start_record = None
        if (restored is None and config.init_split == "latent"
                and programs.strategy.reassigns):
            # Checkpoint 0 holds the start, so a rerun does not train the shared network again.
            state, start_record = latent_split.start(config, programs, state, x)
            if dataset.num_classes:
                start_record["clustering"] = clustering.clustering_scores(
                    np.asarray(state.owner), dataset.label, config.num_components)
            logging.info("latent split: %s", start_record)
            checkpointer.save(0, state)
        while int(state.round) <= last_round:
            with _profiled(config, work, int(state.round)):
                state, record = run_round(config, programs, state, x, validation, progress)
            if start_record is not None and record["round"] == 0:
                record["latent_split"] = start_record
            check_divergence(config, records, record)
            if dataset.num_classes:
                record["clustering"] = clustering.clustering_scores(
                    np.asarray(state.owner), dataset.label, config.num_components)
            if record["round"] == 0:
                summary_lib.save_pretrained_samples(config, programs, state, dataset, work)
            checkpointer.save(int(state.round), state)
            records.append(record)
            work.append_metrics(record)
            work.save_npz("assignments.npz", assignment=np.asarray(state.owner, np.int32),
                          label=dataset.label.astype(np.int32))
            if writer:
                tensorboard_log.write_round(writer, programs, state, dataset.data_shape,
                                            record)
            logging.info("round %d of %d (%.1fs, %s): counts %s alphas %s gen loss %s%s",
                         record["round"], last_round, record["seconds"],
                         _time_left(records, last_round), record["counts"],
                         np.round(record["alphas"], 3).tolist(),
                         [None if v is None else round(v, 3) for v in record["gen_loss"]],
                         f" nmi {record['clustering']['nmi']:.3f}"
                         if "clustering" in record else "")
            for event in record.get("auto_k", {}).get("events", []):
                logging.info("round %d auto_k: %s", record["round"], event)
        checkpointer.wait()
        progress.clear()
        if writer:
            writer.close()
    finally:
        checkpointer.close()
    return summary_lib.finish(config, programs, state, dataset, x, work, records)


