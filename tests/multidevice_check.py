"""Runs the same computations on a 1-device and an 8-device mesh; prints JSON diffs.

Run by tests/test_multidevice.py in a subprocess, because the device count
must be fixed (XLA_FLAGS) before JAX starts.
"""

import os

# Keeps the test's other XLA flags; a later device count overrides an earlier one.
os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} "
                           "--xla_force_host_platform_device_count=8").strip()

import importlib.util  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from competitive_mixtures import assign, data as data_lib, points, sharding, train  # noqa: E402
from competitive_mixtures import steps as steps_lib  # noqa: E402
from competitive_mixtures.models.base import PartOptimizers  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(arg, name="synthetic"):
    spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def max_diff(a, b):
    """Largest |a - b| relative to the largest |a| of the same leaf."""
    return float(max(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64)))
                     / max(np.max(np.abs(np.asarray(u, np.float64))), 1e-12)
                     for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


def max_diff_global(a, b):
    """Largest |a - b| over all leaves relative to the largest |a| of any leaf."""
    diff = max(float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    return diff / max(float(np.max(np.abs(np.asarray(u)))) for u in jax.tree.leaves(a))


def sgd_step_on(mesh, config, dataset):
    """One plain-SGD step (lr 1: params move by -grad) through the sharded update."""
    programs = train.make_programs(config, dataset.data_shape, mesh)
    model = programs.gen_model
    x = jax.device_put(dataset.x, sharding.replicated(mesh))
    state = train.init_state(config, programs, x)
    k, b = config.num_components, config.batch_size
    batch = x[jax.random.randint(jax.random.PRNGKey(3), (k, b), 0, x.shape[0])]
    noise = jax.random.normal(jax.random.PRNGKey(4), (k, b) + model.noise_shape)
    update = steps_lib._sharded(model.make_step(optax.sgd(1.0), sharding.AXIS), mesh, 2)
    stack = state.gen.replace(opt_state=jax.vmap(optax.sgd(1.0).init)(state.gen.params))
    new, loss = jax.jit(update)(stack, batch, noise)
    return jax.device_get(new.params), np.asarray(loss)


def part_steps_on(mesh, config, dataset, steps):
    """`steps` M-steps of components of several networks trained in turn (GAN, GRaM).

    Plain SGD: the Wasserstein critic's loss has gradients that cancel exactly
    (e.g. its output bias), and Adam's first steps turn their float noise,
    which depends on the summation order, into steps of size lr.
    """
    programs = train.make_programs(config, dataset.data_shape, mesh)
    optimizer = PartOptimizers.of(**{name: optax.sgd(0.01)
                                     for name, _ in programs.gen_optimizer.parts})
    x = jax.device_put(dataset.x, sharding.replicated(mesh))
    state = train.init_state(config, programs, x)
    stack = state.gen.replace(opt_state=jax.vmap(optimizer.init)(state.gen.params))
    m_step = steps_lib.make_m_step(programs.gen_model, optimizer, config.batch_size, 8, mesh)
    num = jnp.full((config.num_components,), steps, jnp.int32)
    gen, loss, _ = m_step(stack, x, state.sets, num, jnp.int32(0), jax.random.PRNGKey(1))
    return jax.device_get(gen.params), np.asarray(loss)


def multiclass_on(mesh, dataset):
    """Fit and scores of the (K+1)-way classifier (plain SGD, see `gan_steps_on`)."""
    config = load_config("tiny,ratio=multiclass")
    config.disc.optimizer, config.disc.learning_rate = "sgd", 0.1
    config.steps_per_chunk = 8
    programs = train.make_programs(config, dataset.data_shape, mesh)
    x = jax.device_put(dataset.x, sharding.replicated(mesh))
    state = train.init_state(config, programs, x)
    num = jnp.full((1,), 8, jnp.int32)
    disc, _, _ = programs.disc_step(state.disc, state.gen, x, jnp.ones(3, bool), num,
                                    jnp.int32(0), jax.random.PRNGKey(2))
    return jax.device_get(disc.params), np.asarray(train.score_dataset(programs, disc, x, 1000))


def steps_on(mesh, config, dataset, steps, split=False):
    """M-step, discriminator steps and assignment pass; with `split` the points
    are `Points` split over the devices, else replicated."""
    programs = train.make_programs(config, dataset.data_shape, mesh)
    x = (points.put(dataset.x, mesh) if split
         else jax.device_put(dataset.x, sharding.replicated(mesh)))
    state = train.init_state(config, programs, x)
    num = jnp.full((config.num_components,), steps, jnp.int32)
    gen, gen_loss, _ = programs.m_step(state.gen, x, state.sets, num, jnp.int32(0),
                                       jax.random.PRNGKey(1))
    state = train.init_state(config, programs, x)
    disc, disc_loss, _ = programs.disc_step(state.disc, state.gen, x, num, jnp.int32(0),
                                            jax.random.PRNGKey(2))
    scores = train.score_dataset(programs, disc, x, 1000)
    result, sets = programs.assigner(scores)
    return dict(gen=jax.device_get(gen.params),
                gen_loss=np.asarray(gen_loss), disc=jax.device_get(disc.params),
                scores=np.asarray(scores), owner=np.asarray(result.owner),
                count=np.asarray(result.count), best=np.asarray(result.best),
                order=np.asarray(sets.order), programs=programs)


def main():
    out = {"devices": jax.device_count()}
    one, eight = sharding.make_mesh(jax.devices()[:1]), sharding.make_mesh()
    config = load_config("tiny")
    # 2999 points: not divisible by 8, so the assignment pass pads.
    config.data.num_points = 2999
    dataset = data_lib.load(config)
    a, b = steps_on(one, config, dataset, 4), steps_on(eight, config, dataset, 4)
    out["m_step_params"] = max_diff(a["gen"], b["gen"])
    out["m_step_loss"] = max_diff(a["gen_loss"], b["gen_loss"])
    out["disc_params"] = max_diff(a["disc"], b["disc"])
    out["scores"] = max_diff(a["scores"], b["scores"])
    # Points split over the 8 devices (each reads its rows, a reduce-scatter
    # builds the batch) against the same points replicated: bit-identical.
    c = steps_on(eight, config, dataset, 4, split=True)
    for what in ("gen", "gen_loss", "disc", "scores", "owner", "best", "order"):
        out[f"split_{what}_equal"] = bool(all(
            np.array_equal(u, v) for u, v in zip(jax.tree.leaves(b[what]),
                                                 jax.tree.leaves(c[what]))))
    images = np.random.default_rng(0).integers(0, 256, (29, 4, 4, 3), dtype=np.uint8)
    index = np.random.default_rng(1).integers(0, 29, (3, 8), dtype=np.int32)
    split = points.put(images, eight)
    out["take_uint8_replicated_equal"] = bool(np.array_equal(points.take(split, index),
                                                             images[index]))
    taken = points.take(split, index, split_axis=1)
    out["take_uint8_split_equal"] = bool(np.array_equal(taken, images[index]))
    out["take_split_sharding"] = str(taken.sharding.spec)
    out["take_full_equal"] = bool(np.array_equal(points.to_host(split), images))

    (p1, l1), (p8, l8) = sgd_step_on(one, config, dataset), sgd_step_on(eight, config, dataset)
    out["sgd_step_params"] = max_diff(p1, p8)
    out["sgd_step_loss"] = max_diff(l1, l8)

    # GAN components with the gradient penalty and two critic steps per step.
    gan_config = load_config("tiny,loss=wgan_gp", "gan_ring")
    gan_config.gan.critic_steps = 2
    gan_data = data_lib.load(gan_config)
    (g1, gl1), (g8, gl8) = (part_steps_on(mesh, gan_config, gan_data, 3) for mesh in (one, eight))
    out["gan_m_step_params"] = max_diff(g1, g8)
    out["gan_m_step_loss"] = max_diff(gl1, gl8)
    # GRaM: kernel statistics of the whole batch, gathered over the devices.
    gram_config = load_config("model=gram,tiny", "families")
    (g1, gl1), (g8, gl8) = (part_steps_on(mesh, gram_config, gan_data, 3)
                            for mesh in (one, eight))
    # Relative to the largest parameter: the projection's output bias has an
    # exactly zero gradient (kernels are shift invariant), so only noise moves it.
    out["gram_m_step_params"] = max_diff_global(g1, g8)
    out["gram_m_step_loss"] = max_diff(gl1, gl8)

    (c1, s1), (c8, s8) = (multiclass_on(mesh, dataset) for mesh in (one, eight))
    out["multiclass_params"] = max_diff(c1, c8)
    out["multiclass_scores"] = max_diff(s1, s8)

    # The assignment arithmetic on identical scores: must match exactly.
    scores = a["scores"]
    ref = assign.assign(jnp.asarray(scores), config.balance.min_points)
    ref_sets = assign.training_sets(ref)
    # Force balancing on one component by a huge min_points-sized tie-free case too.
    for name, programs in (("one", a["programs"]), ("eight", b["programs"])):
        result, sets = programs.assigner(jax.device_put(scores))
        out[f"assign_{name}_owner_equal"] = bool(np.array_equal(result.owner, ref.owner))
        out[f"assign_{name}_count_equal"] = bool(np.array_equal(result.count, ref.count))
        out[f"assign_{name}_best_equal"] = bool(np.array_equal(result.best, ref.best))
        out[f"assign_{name}_alpha_equal"] = bool(np.array_equal(result.alpha, ref.alpha))
        out[f"assign_{name}_order_equal"] = bool(np.array_equal(sets.order, ref_sets.order))
    # Load balancing across shards: a component that owns few points.
    skewed = np.array(scores)
    skewed[:, 2] = skewed[:, 0]  # Ties go to component 0 ...
    skewed[:20, 2] += 30.0  # ... except on 20 points, fewer than min_points=60.
    ref = assign.assign(jnp.asarray(skewed), 60)
    result, _ = steps_lib.make_assigner(eight, 60, True)(jax.device_put(skewed))
    out["balanced_component"] = np.asarray(ref.balanced).tolist()
    out["balanced_best_equal"] = bool(np.array_equal(result.best, ref.best))
    out["balanced_equal"] = bool(np.array_equal(result.balanced, ref.balanced))

    # End to end: the k-means model (deterministic M-step) and the VAE.
    for family in ("kmeans", "vae"):
        owners = []
        for devices in (1, 8):
            cfg = load_config("tiny")
            cfg.model.family = family
            if family == "kmeans":
                cfg.ratio.kind = "exact"
                cfg.balance.min_points = 0
            with tempfile.TemporaryDirectory() as workdir:
                train.train_and_evaluate(cfg, workdir, mesh=sharding.make_mesh(
                    jax.devices()[:devices]))
                owners.append(np.load(os.path.join(workdir, "assignments.npz"))["assignment"])
        out[f"e2e_{family}_agreement"] = float(np.mean(owners[0] == owners[1]))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
