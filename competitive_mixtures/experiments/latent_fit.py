"""Where a run's image FID comes from: its VAE decoders, or the codes they decode.

python -m competitive_mixtures.experiments.latent_fit --workdir=DIR
    [--gaussians=1,10] [--num_samples=2000] [--seed=0] [--digit_classifier=PATH]
    [--inception_weights=inception_fid.npz]

Reads a finished run of convolutional VAEs and prints FID, precision and
recall (with the features `evaluate` uses: digit-classifier features for
digits, Inception features with --inception_weights) of these images against
the held-out ones:

  reconstructions  every held-out image decoded from its latent mean by the
                   component whose ELBO of it is highest: what the decoders
                   draw where the encoders put real images;
  prior            `num_samples` images decoded from z ~ N(0, I): the model's
                   own samples (`evaluate`'s, with other draws) when
                   model.sample_noise is off;
  fitted G         `num_samples` images decoded from z drawn from a mixture of
                   G full-covariance Gaussians (scikit-learn, EM), fitted for
                   each component to the latent means of the training points
                   it owns; one row for each G of --gaussians.

The generated rows give component j the same number of images in every row
(a multinomial draw with the run's alpha), so they differ only in where the
codes come from. When the fitted rows close most of the gap from the prior
to the reconstructions, the samples lose their quality between N(0, I) and
where the encoders put the data, not in the decoders. Comparing runs, give
every run the same total number of fitted Gaussians (G = K for a single VAE,
G = 1 for a mixture of K) to compare them at equal freedom of the codes.

Reads the workdir only: the held-out features come from evaluate's cache
there when it holds them, and are computed otherwise.
"""

from __future__ import annotations

import functools
import os

from absl import flags
from etils import epath
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.mixture import GaussianMixture

from competitive_mixtures import cli
from competitive_mixtures import data as data_lib
from competitive_mixtures import stacking
from competitive_mixtures import restore
from competitive_mixtures.metrics import features
from competitive_mixtures.metrics import inception

# Images per compiled call.
BATCH = 500


@functools.partial(jax.jit, static_argnames=("model",))
def _decode(model, params, model_state, z):
    return model.decode_mean(params, model_state, z)


@functools.partial(jax.jit, static_argnames=("model",))
def _means_and_elbos(model, gen, x):
    """Latent means `[K, B, latent]` and ELBOs at the means `[K, B]` of every component."""
    def one(params, model_state):
        mean = model.latent_mean(params, model_state, x)
        return mean, model.elbo(params, model_state, x, jnp.zeros_like(mean))
    return jax.vmap(one)(gen.params, gen.model_state)


def decode(model, gen, j: int, z: np.ndarray) -> np.ndarray:
    """Component j's mean images of codes `z` `[n, latent]`."""
    params, model_state = stacking.component(gen.params, j), stacking.component(gen.model_state, j)
    return np.concatenate([np.asarray(_decode(model, params, model_state,
                                              jnp.asarray(z[i:i + BATCH], jnp.float32)))
                           for i in range(0, len(z), BATCH)])


def latent_means(model, gen, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every component's latent means `[K, N, latent]` and ELBOs at them `[K, N]` of `x`."""
    means, elbos = [], []
    for start in range(0, len(x), BATCH):
        batch = np.asarray(x[start:start + BATCH])
        size = len(batch)
        if size < BATCH:  # One compiled shape: pad the last batch.
            batch = np.concatenate([batch, np.repeat(batch[:1], BATCH - size, axis=0)])
        mean, elbo = _means_and_elbos(model, gen, jnp.asarray(batch))
        means.append(np.asarray(mean)[:, :size])
        elbos.append(np.asarray(elbo)[:, :size])
    return np.concatenate(means, axis=1), np.concatenate(elbos, axis=1)


def reconstructions(model, gen, alpha: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Every image of `x` decoded from its latent mean by the component (alpha > 0)
    whose ELBO at that mean is highest."""
    means, elbos = latent_means(model, gen, x)
    elbos = np.where(np.asarray(alpha)[:, None] > 0, elbos, -np.inf)
    best = np.argmax(elbos, axis=0)
    out = None
    for j in np.unique(best):
        rows = best == j
        images = decode(model, gen, int(j), means[j, rows])
        if out is None:
            out = np.zeros((len(x),) + images.shape[1:], np.float32)
        out[rows] = images
    return out


def fit_codes(means: np.ndarray, gaussians: int, seed: int) -> GaussianMixture:
    """A mixture of up to `gaussians` full-covariance Gaussians fitted to latent means
    `[n, latent]` (no more Gaussians than points)."""
    return GaussianMixture(min(gaussians, len(means)), covariance_type="full",
                           random_state=seed).fit(np.asarray(means, np.float64))


def generated(model, gen, alpha: np.ndarray, owner: np.ndarray, x: np.ndarray,
              gaussians: list[int], num_samples: int,
              seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({'prior': images, 'fitted G': images for each G}, counts `[K]`).

    Component j decodes counts[j] codes in every entry, its images after those
    of components < j; counts is one multinomial draw with `alpha`."""
    rng = np.random.default_rng(seed)
    alpha = np.asarray(alpha, np.float64)
    counts = rng.multinomial(num_samples, alpha / alpha.sum())
    latent = model.module.latent
    out = {name: [] for name in ["prior"] + [f"fitted {g}" for g in gaussians]}
    for j in np.flatnonzero(counts):
        out["prior"].append(decode(model, gen, int(j),
                                   rng.standard_normal((counts[j], latent))))
        mine = x[owner == j]
        if len(mine) < 2:
            raise ValueError(f"component {j} draws {counts[j]} images but owns {len(mine)} "
                             f"training points; a code distribution needs 2 or more")
        means, _ = latent_means(model, jax.tree.map(lambda a: a[j:j + 1], gen), mine)
        for g in gaussians:
            codes, _ = fit_codes(means[0], g, seed).sample(counts[j])
            out[f"fitted {g}"].append(decode(model, gen, int(j), codes))
    return {name: np.concatenate(parts) for name, parts in out.items()}, counts


def evaluate(workdir: str, gaussians: list[int], num_samples: int = 2000, seed: int = 0,
             digit_classifier: str | None = None,
             inception_weights: str | None = None) -> dict[str, dict[str, dict]]:
    """{feature kind: {row: image-quality metrics (`features.quality_metrics`)}} of a
    run's VAEs; the kinds are `evaluate`'s (digits for digit data, inception with
    `inception_weights`)."""
    config, programs, state = restore.restore_run(workdir)
    model = programs.gen_model
    if not hasattr(model.module, "decode_mean"):
        raise ValueError(f"{workdir}: model.family={config.model.family!r} has no decoder of "
                         f"latent codes; latent_fit reads convolutional VAE runs")
    with epath.Path(workdir, "heldout.npz").open("rb") as g, np.load(g) as f:
        heldout = f["x"]
    extractors, _ = features.available_extractors(
        config.data.name, heldout.shape[1:], inception_weights, digit_classifier,
        config.data.get("data_dir") or None)
    if not extractors:
        raise ValueError(f"{workdir}: no image features for data.name={config.data.name!r}; "
                         f"give --inception_weights")
    with epath.Path(workdir, "assignments.npz").open("rb") as g, np.load(g) as f:
        owner = f["assignment"]
    x = data_lib.load(config).x
    alpha = np.asarray(state.alpha)
    images = {"reconstructions": reconstructions(model, state.gen, alpha, heldout)}
    images.update(generated(model, state.gen, alpha, owner, x, gaussians, num_samples, seed)[0])
    result = {}
    for extractor in extractors:
        # evaluate's cache of the held-out side is read when it is there, never written.
        cache = epath.Path(workdir, f"fid_reference_{extractor.name}.npz")
        result[extractor.name] = {
            name: features.quality_metrics(extractor, value, heldout,
                                           str(cache) if cache.exists() else None, seed)
            for name, value in images.items()}
    return result


def table(result: dict[str, dict[str, dict]]) -> str:
    lines = ["| features | images | count | FID | precision | recall |",
             "|---|---|---|---|---|---|"]
    for kind, rows in result.items():
        for name, m in rows.items():
            lines.append(f"| {kind} | {name} | {m['num_samples']} | {m['fid']:.2f} | "
                         f"{m['precision']:.3f} | {m['recall']:.3f} |")
    return "\n".join(lines)


def define_flags() -> None:
    """The command line's flags, defined only when run as a program (tests import
    this module beside other tools that define --workdir)."""
    flags.DEFINE_string("workdir", None, "Run directory with a finished round.")
    flags.DEFINE_list("gaussians", ["1"], "Gaussians fitted per component, one 'fitted' row "
                      "each.")
    flags.DEFINE_integer("num_samples", 2000, "Images per generated row.")
    flags.DEFINE_integer("seed", 0, "Seed of the draws and of the fits.")
    flags.DEFINE_string("digit_classifier", None,
                        "Digit-feature classifier file (default: evaluate's).")
    flags.DEFINE_string("inception_weights", None, "FID InceptionV3 weights (.npz from "
                        "metrics.convert_inception); adds Inception-feature rows.")


def main(argv):
    del argv
    args = flags.FLAGS
    try:
        gaussians = [int(g) for g in args.gaussians]
    except ValueError:
        gaussians = []
    if not gaussians or min(gaussians) < 1:
        cli.fail(f"--gaussians must be integers >= 1, got {args.gaussians}")
    if args.num_samples < 4:
        cli.fail(f"--num_samples must be >= 4 (precision and recall use 3 neighbours), "
                 f"got {args.num_samples}")
    if args.inception_weights and not os.path.exists(args.inception_weights):
        cli.fail(f"--inception_weights={args.inception_weights} not found. "
                 f"{inception.HOW_TO_GET}")
    try:
        result = evaluate(args.workdir, gaussians, args.num_samples, args.seed,
                          args.digit_classifier, args.inception_weights)
    except (FileNotFoundError, ValueError) as error:
        cli.fail(str(error))
    print(table(result))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
