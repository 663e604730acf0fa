"""The host-side loop of rounds: orchestration, checkpoints, logging, figures.

One round (paper, Algorithm 1):
  1. M-step: every component trains on its training set (round 0: the random
     pre-training split, for `pretrain_epochs`; later rounds `epochs_per_round`).
  2. Discriminator fit: D_j learns data (whole dataset) vs samples of g_j.
  3. Assignment pass: log ratios of all N points -> owners, alphas, training sets.
The density ratios come from the estimator `config.ratio.kind` (`ratio/`).
Strategy 'boosting' (AdaGAN) trains one component per stage of rounds and runs
steps 2-3 only when a stage ends, to add that component to the mixture and
draw the next one's re-weighted data (`_add_component`).
A checkpoint of the whole state is written after every round; rerunning the
same command resumes from the newest one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from competitive_mixtures import boosting
from competitive_mixtures import checkpointing
from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures import errors
from competitive_mixtures import models
from competitive_mixtures import plots
from competitive_mixtures import points as points_lib
from competitive_mixtures import ratio as ratio_lib
from competitive_mixtures import seeding
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import steps
from competitive_mixtures import strategies
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.metrics import clustering
from competitive_mixtures.metrics import kde
from competitive_mixtures.metrics import modes
from competitive_mixtures.models import kmeans
from competitive_mixtures.state import MixtureState


# Random streams folded into the run's key; round r uses stream r.
_INIT_STREAM = 2**31 - 1
_EVAL_STREAM = 2**31 - 2
# Stream of the density-ratio estimate and of boosting's draws, folded into round r's key.
_RATIO_STREAM = 2**31 - 3
_PRETRAINED_STREAM = 2**31 - 4


@dataclasses.dataclass(frozen=True)
class Programs:
    """The models, optimizers and compiled steps of one run."""

    gen_model: Any
    disc_model: Any
    gen_optimizer: optax.GradientTransformation
    disc_optimizer: optax.GradientTransformation
    mesh: Any
    m_step: Any
    # Steps per call of `m_step` (1 when its components run sequentially), and
    # the calls per step (groups of components, see steps.make_m_step).
    m_chunk: int
    m_groups: int
    disc_step: Any
    score: Any
    assigner: Any
    strategy: strategies.Strategy
    # The density-ratio estimator (`ratio/`); `disc_model`, `disc_optimizer`,
    # `disc_step` and `score` are its network, optimizer, fit step and batch
    # scorer (None for the kernel estimator, which trains nothing).
    ratio: Any
    # The k-means model of Lemma 2: exact M-step and exact-likelihood assignment.
    exact: bool


def make_programs(config: ml_collections.ConfigDict, data_shape: tuple[int, ...],
                  mesh=None) -> Programs:
    """Models, optimizers and compiled steps; `mesh` defaults to all devices."""
    mesh = sharding.make_mesh() if mesh is None else mesh
    for field, value in (("batch_size", config.batch_size),
                         ("disc.batch_size", config.disc.batch_size)):
        sharding.check_divisible(value, mesh, field)
    gen_model = models.generator(config, data_shape)
    gen_optimizer = models.generator_optimizer(config)
    estimator = ratio_lib.make(config, gen_model, data_shape, mesh)
    exact = config.model.family == "kmeans"
    chunk, unroll, group = steps.calls(getattr(gen_model, "stack_mode", "vmap"),
                                       config.num_components, config.steps_per_chunk,
                                       config.unroll_steps, config.stack_group)
    return Programs(
        gen_model=gen_model, disc_model=estimator.model, gen_optimizer=gen_optimizer,
        disc_optimizer=estimator.optimizer,
        mesh=mesh,
        m_step=steps.make_m_step(gen_model, gen_optimizer, config.batch_size, chunk, mesh,
                                 unroll, group),
        m_chunk=chunk, m_groups=config.num_components // group,
        disc_step=estimator.step,
        score=steps.make_scorer(gen_model, exact, mesh) if exact else estimator.score,
        assigner=steps.make_assigner(mesh, config.balance.min_points,
                                     not exact and getattr(estimator, "normalise", True)),
        strategy=strategies.get(config.strategy), ratio=estimator, exact=exact)


def init_state(config: ml_collections.ConfigDict, programs: Programs,
               x: points_lib.Data) -> MixtureState:
    """Fresh state: K random components and the random pre-training split."""
    k = config.num_components
    rng = jax.random.PRNGKey(config.seed)
    gen_key, disc_key, split_key, example_key = jax.random.split(
        jax.random.fold_in(rng, _INIT_STREAM), 4)
    example = ratio_lib.base.example_batch(x, example_key)
    seeded = None
    if config.init_split == "kmeans" and programs.strategy.reassigns:
        seeded = seeding.kmeans_owner(split_key, points_lib.full(x), k)
    owner, sets = programs.strategy.initial_sets(split_key, x.shape[0], k,
                                                 config.balance.min_points,
                                                 config.bagging.bootstrap, seeded)
    state = MixtureState(
        round=jnp.zeros((), jnp.int32),
        gen=stacking.init(programs.gen_model, programs.gen_optimizer,
                          jax.random.split(gen_key, k), example),
        disc=programs.ratio.init(disc_key, example),
        owner=owner, alpha=programs.strategy.alpha(sets.count), sets=sets, rng=rng)
    return sharding.replicate(state, programs.mesh)


def _run_chunks(step_fn, carry, num_steps: np.ndarray, chunk: int, key, *args,
                groups: int = 1):
    """Calls a chunked step until every component has taken its `num_steps`.

    Returns the carry and the mean loss per component over the steps it took.
    """
    return ratio_lib.base.run_chunks(step_fn, carry, num_steps, chunk, key, *args,
                                     groups=groups)


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
    devices (see `ratio.base.stream_scores`).
    """
    return ratio_lib.base.stream_scores(programs.score, programs.mesh, stack, x, batch_size)


def _add_component(config: ml_collections.ConfigDict, programs: Programs, state: MixtureState,
                   gen, x: points_lib.Data, disc_key, init_key, ratio_key, record: dict):
    """The end of a boosting stage (AdaGAN): the component just trained joins the mixture.

    alpha <- (1 - beta_t) alpha + beta_t e_t; the ratio estimator is fitted to
    the data vs the mixture's components; each point's owner becomes its most
    responsible component; unless this was the last component, the next one's
    training set is drawn with the AdaGAN weights (`boosting.py`). Returns
    (disc, owner, alpha, sets); `record` gets the stage's figures.
    """
    r, k, n = int(state.round), config.num_components, x.shape[0]
    c = config.boosting
    stage = boosting.stage(r, config.num_rounds, k)
    alpha = boosting.add_component(state.alpha, stage, boosting.beta(c.beta_schedule, stage,
                                                                      c.beta))
    tick = time.perf_counter()
    disc, fitted = programs.ratio.fit(state.disc, gen, x, disc_key, init_key,
                                      np.asarray(alpha) > 0)
    record.update(fitted)
    jax.block_until_ready(disc)
    record["seconds_disc"] = time.perf_counter() - tick

    tick = time.perf_counter()
    score_key, draw_key = jax.random.split(ratio_key)
    log_ratio = programs.ratio.log_ratios(disc, gen, x, score_key)
    owner = boosting.owners(log_ratio, alpha)
    sets = state.sets
    summary = {"stage": stage}
    if stage + 1 < k:
        beta_next = boosting.beta(c.beta_schedule, stage + 1, c.beta)
        weights = boosting.next_weights(log_ratio, alpha, beta_next, c.weights)
        sets = strategies.boosting_sets(boosting.draw_training_points(draw_key, weights, n),
                                        stage + 1, k)
        summary.update(beta_next=beta_next, zero_weight_share=float(jnp.mean(weights == 0)),
                       max_weight_times_n=float(jnp.max(weights)) * n)
    jax.block_until_ready(sets)
    record["seconds_assign"] = time.perf_counter() - tick
    record["boosting"] = summary
    return disc, owner, alpha, sets


def m_step_counts(config: ml_collections.ConfigDict, set_sizes: np.ndarray, epochs: int,
                  round_index: int, num_points: int) -> np.ndarray:
    """`[K]` M-step steps of each component this round.

    'epochs' (the paper): `epochs` passes over the component's own training
    set, so a component's budget grows with its share. 'equal': every
    component with a non-empty set takes the steps of `epochs` passes over an
    equal share N/K, whatever its share; pre-training (round 0) keeps 'epochs'.
    """
    if config.step_budget == "equal" and round_index > 0:
        equal = np.ceil(epochs * num_points / (config.num_components * config.batch_size))
        return np.where(set_sizes > 0, equal, 0).astype(np.int64)
    return np.ceil(epochs * set_sizes / config.batch_size).astype(np.int64)


def run_round(config: ml_collections.ConfigDict, programs: Programs, state: MixtureState,
              x: points_lib.Data) -> tuple[MixtureState, dict]:
    """One round: M-step, discriminator fit, assignment pass. Returns the new state and
    the round's record for `metrics.jsonl`.

    `x` holds the N training points: `points.Points` split over the devices
    (what `train_and_evaluate` passes), or an array replicated on them.
    """
    r = int(state.round)
    k = config.num_components
    m_key, disc_key, reinit_key, reset_key = jax.random.split(
        jax.random.fold_in(state.rng, r), 4)
    record: dict[str, Any] = {"round": r, "pretrain": r == 0}
    start = time.perf_counter()

    epochs = config.pretrain_epochs if r == 0 else config.epochs_per_round
    gen = state.gen
    if programs.exact:
        mu = kmeans.fit_centroids(points_lib.full(x), state.owner, state.sets.best,
                                  state.sets.balanced, gen.params["mu"])
        gen = gen.replace(params={**gen.params, "mu": mu})
        gen_loss = np.zeros(k)
    else:
        num_steps = m_step_counts(config, np.asarray(state.sets.size), epochs, r, x.shape[0])
        gen, gen_loss = _run_chunks(programs.m_step, gen, num_steps.astype(np.int64),
                                    programs.m_chunk, m_key, x, state.sets,
                                    groups=programs.m_groups)
    gen, reset = _reset_broken(programs, state, gen, gen_loss, reset_key, x)
    if reset:
        logging.warning("round %d: components %s had non-finite loss or parameters and were "
                        "re-initialised", r, reset)
    record["reset_components"] = reset
    record["gen_loss"] = [None if not np.isfinite(v) else float(v) for v in gen_loss]
    jax.block_until_ready(gen)
    record["seconds_m_step"] = time.perf_counter() - start

    disc, owner, alpha, sets = state.disc, state.owner, state.alpha, state.sets
    ratio_key = jax.random.fold_in(jax.random.fold_in(state.rng, r), _RATIO_STREAM)
    if programs.strategy.reassigns:
        tick = time.perf_counter()
        if not programs.exact:
            disc, fitted = programs.ratio.fit(disc, gen, x, disc_key, reinit_key,
                                              np.ones(k, bool))
            record.update(fitted)
        jax.block_until_ready(disc)
        record["seconds_disc"] = time.perf_counter() - tick

        tick = time.perf_counter()
        if programs.exact:
            scores = score_dataset(programs, gen, x, config.assign.batch_size)
        else:
            scores = programs.ratio.log_ratios(disc, gen, x, ratio_key)
        result, sets = programs.assigner(scores)
        owner, alpha = result.owner, result.alpha
        jax.block_until_ready(owner)
        record["seconds_assign"] = time.perf_counter() - tick
    elif programs.strategy.boosts and boosting.stage_ends(r, config.num_rounds, k):
        disc, owner, alpha, sets = _add_component(config, programs, state, gen, x, disc_key,
                                                  reinit_key, ratio_key, record)

    # One placement for the whole state, so every round calls the steps with
    # the same input shardings (no recompilation).
    state = sharding.replicate(
        state.replace(round=jnp.int32(r + 1), gen=gen, disc=disc, owner=owner, alpha=alpha,
                      sets=sets),
        programs.mesh)
    # Read from the replicated state: on several hosts the assignment pass's
    # outputs span devices this process cannot address.
    record["counts"] = np.bincount(np.asarray(state.owner), minlength=k).tolist()
    record["alphas"] = [float(a) for a in np.asarray(state.alpha)]
    record["balanced"] = [int(j) for j in np.flatnonzero(np.asarray(state.sets.balanced))]
    record["seconds"] = time.perf_counter() - start
    return state, record


# Mixture samples drawn per compiled call (every component draws this many).
SAMPLE_BLOCK = 4096
# Images per component in the sample grids.
GRID_COLUMNS = 10


def draw_samples(model, gen, alpha, key: jax.Array, num_samples: int,
                 block: int = SAMPLE_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """`num_samples` mixture samples in fixed-size blocks (one compiled shape).

    Returns `x` `[n, *data_shape]` float32 and `component` `[n]` int32.
    Raises SampleBudgetError when the samples would not fit in half of the
    machine's free memory; logs progress when drawing takes long.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    k = alpha.shape[0]
    values_per_sample = int(np.prod(jax.eval_shape(
        lambda: steps.sample_mixture(model, gen, alpha, key, 1))[0].shape))
    _check_sample_memory(num_samples, values_per_sample)
    # Every component draws a whole block per call. Keep the samples of one
    # call under 2M values (8 MB): a conv decoder's activations are tens of
    # times its output, and K=10 digit VAEs decoding 4096 images each failed
    # to allocate (19 GB resident) on CPU.
    block = max(1, min(block, num_samples, 2**21 // (k * values_per_sample)))
    xs, components = [], []
    calls = -(-num_samples // block)
    start = last_log = time.perf_counter()
    for i in range(calls):
        x, component = steps.sample_mixture(model, gen, alpha, jax.random.fold_in(key, i), block)
        xs.append(np.asarray(x, np.float32))
        components.append(np.asarray(component, np.int32))
        now = time.perf_counter()
        if now - last_log > 10 and i + 1 < calls:
            last_log = now
            logging.info("drew %d of %d samples (%.0f s, about %.0f s left)", (i + 1) * block,
                         num_samples, now - start, (now - start) * (calls - i - 1) / (i + 1))
    return np.concatenate(xs)[:num_samples], np.concatenate(components)[:num_samples]


class SampleBudgetError(errors.UserError):
    """More samples asked for than the machine's memory holds."""


def _check_sample_memory(num_samples: int, values_per_sample: int) -> None:
    needed = num_samples * values_per_sample * 4
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if needed > free // 2:
        raise SampleBudgetError(
            f"{num_samples} samples of {values_per_sample} float32 values need "
            f"{needed / 2**30:.1f} GiB, more than half of the {free / 2**30:.1f} GiB free; "
            "ask for fewer samples")


def restore_run(workdir: str) -> tuple[ml_collections.ConfigDict, Programs, MixtureState]:
    """The config, programs and newest state of a run, for tools that read a workdir.

    Reads only (nothing in the workdir is created, renamed or written);
    raises RunNotFoundError when no round has finished there.
    """
    work = workdir_lib.Workdir(workdir)
    needed = [workdir_lib.CONFIG, "heldout.npz", "assignments.npz", "checkpoints"]
    missing = [name for name in needed if not epath.Path(work.file(name)).exists()]
    if missing:
        raise workdir_lib.RunNotFoundError(
            f"{workdir} holds no finished round (missing {', '.join(missing)}); train first with "
            f"python -m competitive_mixtures.main --config=... --workdir={workdir}")
    config = work.read_config()
    with epath.Path(work.file("heldout.npz")).open("rb") as f, np.load(f) as heldout:
        data_shape = heldout["x"].shape[1:]
    with epath.Path(work.file("assignments.npz")).open("rb") as f, np.load(f) as assignments:
        num_points = len(assignments["assignment"])
    # The state's shapes depend on the data's shape and count, not on its values.
    x_spec = jax.ShapeDtypeStruct((num_points,) + data_shape, jnp.float32)
    programs = make_programs(config, x_spec.shape[1:])
    abstract_state = checkpointing.abstract(
        jax.eval_shape(lambda x: init_state(config, programs, x), x_spec),
        sharding.replicated(programs.mesh))
    checkpointer = checkpointing.Checkpointer(work.file("checkpoints"), read_only=True)
    state = checkpointer.restore_latest(abstract_state)
    checkpointer.close()
    if state is None:
        raise workdir_lib.RunNotFoundError(
            f"{workdir}/checkpoints holds no checkpoint; train first")
    return config, programs, state


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
    k, r = config.num_components, record["round"]
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


def _train(config: ml_collections.ConfigDict, work: workdir_lib.Workdir,
           allow_config_change: bool, mesh) -> dict:
    mesh = sharding.make_mesh() if mesh is None else mesh
    # Every process loads only the training points its devices hold.
    dataset = data_lib.load(config, share=lambda n: points_lib.local_rows(n, mesh))
    config_lib.validate(config, dataset.num_points)
    changed = work.config_changes(config, allow_config_change)
    logging.info("data %s: %d training points of shape %s, %d held out", dataset.name,
                 dataset.num_points, dataset.data_shape, len(dataset.heldout_x))
    if jax.process_count() > 1:
        logging.info("process %d holds training points [%d, %d)", jax.process_index(),
                     dataset.first, dataset.first + len(dataset.x))

    programs = make_programs(config, dataset.data_shape, mesh)
    # Images stay uint8 on the device (the models scale them); vectors are float32.
    x = dataset.x if dataset.x.dtype == np.uint8 else dataset.x.astype(np.float32)
    x = points_lib.from_local(x, dataset.first, dataset.num_points, mesh)
    # The labels of all points (small), for clustering scores on every process.
    dataset = dataclasses.replace(dataset, label=points_lib.to_host(points_lib.from_local(
        dataset.label, dataset.first, dataset.num_points, mesh)))
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
        heldout_x = dataset.heldout_x
        if heldout_x.dtype != np.uint8:
            heldout_x = heldout_x.astype(np.float32)
        work.save_npz("heldout.npz", x=heldout_x,
                      label=dataset.heldout_label.astype(np.int32), **mode_info)
        records = work.read_metrics(int(state.round))
        work.reset_metrics(records)

        last_round = config.num_rounds  # Round 0 is pre-training.
        while int(state.round) <= last_round:
            state, record = run_round(config, programs, state, x)
            check_divergence(config, records, record)
            if dataset.num_classes:
                record["clustering"] = clustering.clustering_scores(
                    np.asarray(state.owner), dataset.label, config.num_components)
            if record["round"] == 0:
                _save_pretrained_samples(config, programs, state, dataset, work)
            checkpointer.save(int(state.round), state)
            records.append(record)
            work.append_metrics(record)
            work.save_npz("assignments.npz", assignment=np.asarray(state.owner, np.int32),
                          label=dataset.label.astype(np.int32))
            logging.info("round %d (%.1fs): counts %s alphas %s gen loss %s%s",
                         record["round"], record["seconds"], record["counts"],
                         np.round(record["alphas"], 3).tolist(),
                         np.round(np.asarray(record["gen_loss"], float), 3).tolist(),
                         f" nmi {record['clustering']['nmi']:.3f}"
                         if "clustering" in record else "")
        checkpointer.wait()
    finally:
        checkpointer.close()
    return _finish(config, programs, state, dataset, x, work, records)


# Samples kept from the models as pre-training left them, for the before/after figure.
PRETRAINED_SAMPLES = "pretrained_samples.npz"


def _save_pretrained_samples(config, programs: Programs, state: MixtureState, dataset,
                             work: workdir_lib.Workdir) -> None:
    """Samples of every component after pre-training (round 0), equally many each.

    2-D data: `x` `[M, 2]` and `component` `[M]` for `figures/before_after.png`;
    images: `grid` `[K, GRID_COLUMNS, H, W, C]` for `figures/components_pretrained.png`.
    """
    key = jax.random.fold_in(state.rng, _PRETRAINED_STREAM)
    k = config.num_components
    if len(dataset.data_shape) == 3:
        grid = np.asarray(stacking.sample(programs.gen_model, state.gen,
                                          jax.random.split(key, k), GRID_COLUMNS))
        work.save_npz(PRETRAINED_SAMPLES, grid=grid)
        return
    uniform = jnp.full((k,), 1.0 / k)
    samples, component = draw_samples(programs.gen_model, state.gen, uniform, key,
                                      min(config.eval.num_samples, 5000))
    work.save_npz(PRETRAINED_SAMPLES, x=samples, component=component)


def _finish(config, programs: Programs, state: MixtureState, dataset, x: points_lib.Data,
            work: workdir_lib.Workdir, records: list[dict]) -> dict:
    """End-of-run evaluation: KDE log-likelihood, clustering, figures; writes summary.json."""
    key = jax.random.fold_in(state.rng, _EVAL_STREAM)
    samples, component = draw_samples(programs.gen_model, state.gen, state.alpha, key,
                                      config.eval.num_samples)
    summary: dict[str, Any] = {
        "rounds": int(state.round),
        "counts": np.bincount(np.asarray(state.owner), minlength=config.num_components).tolist(),
        "alphas": [float(a) for a in np.asarray(state.alpha)]}
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
            GRID_COLUMNS))
        # The first points each component owns, read from the devices that hold them.
        firsts = [np.flatnonzero(owner == j)[:GRID_COLUMNS] for j in range(config.num_components)]
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
                                 title=f"{config.strategy}, K={config.num_components}, "
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
                                 [r["round"] for r in records], [r["counts"] for r in records])
