"""Metrics of a finished run, from its workdir: what `evaluate` prints and writes.

Metrics (each where the data allows it):
  kde_log_likelihood  mean log-density of the held-out true points under a
                      Gaussian KDE of model samples (bandwidth chosen on
                      held-out model samples; reported);
  heldout_elbo        VAE families: the mixture's mean held-out ELBO, a lower
                      bound on its log-likelihood, and each component's;
  coverage            AdaGAN's C: share of held-out true points above the 5th
                      percentile of the model's own KDE log-density;
  modes               modes covered and share of high-quality samples (within
                      3 standard deviations of a mode centre), for toy data;
  clustering          purity, NMI, ARI of the final assignment vs true labels;
  components_used     number of components with alpha > 0;
  image_quality       for images, per feature kind (digit-classifier features
                      for digits; FID Inception features when a weights file is
                      given): FID with the sample counts it was computed at,
                      and precision / recall (k=3) of the samples.
"""

from __future__ import annotations


from etils import epath
import jax
import numpy as np

from competitive_mixtures import data as data_lib
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.mixture import Mixture
from competitive_mixtures.metrics import clustering
from competitive_mixtures.metrics import coverage
from competitive_mixtures.metrics import elbo
from competitive_mixtures.metrics import features
from competitive_mixtures.metrics import kde
from competitive_mixtures.metrics import modes


def evaluate_run(workdir: str, num_samples: int = 10000, seed: int = 0,
                 inception_weights: str | None = None,
                 digit_classifier: str | None = None) -> dict:
    """All metrics of the run in `workdir`; also written to `workdir/eval.json`.

    `inception_weights` is a converted FID Inception file (without it
    Inception FID is skipped, never downloaded); `digit_classifier` the
    digit-feature network's file (trained there on first use; default in the
    user cache). Reference-side features are cached in
    `workdir/fid_reference_<kind>.npz`.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2 (the KDE splits them), got {num_samples}")
    mixture = Mixture.load(workdir)
    config, programs, state = mixture.config, mixture.programs, mixture.state
    with epath.Path(workdir, "heldout.npz").open("rb") as g, np.load(g) as f:
        heldout = {name: f[name] for name in f.files}
    # Compared with the held-out points in the models' space.
    samples, _ = mixture.sample(num_samples, seed, space="model")
    assignments = workdir_lib.read_npz(workdir, "assignments.npz", ("assignment", "label"))
    owner, label = assignments["assignment"], assignments["label"]
    alpha = np.asarray(state.alpha)
    result = {
        "round": int(state.round) - 1,
        "strategy": config.strategy,
        "num_components": config.num_components,
        "num_samples": num_samples,
        "alphas": alpha.tolist(),
        "components_used": int(np.sum(alpha > 0)),
        "kde": kde.kde_log_likelihood(samples, data_lib.to_data_space(heldout["x"]), seed=seed),
        "coverage": coverage.coverage(samples, data_lib.to_data_space(heldout["x"]), seed=seed),
    }
    if getattr(programs.gen_model, "has_elbo", False):
        result["heldout_elbo"] = elbo.heldout_elbo(programs.gen_model, state.gen, alpha,
                                                   heldout["x"], jax.random.PRNGKey(seed))
    if "centres" in heldout:
        result["modes"] = modes.mode_metrics(samples, heldout["centres"],
                                             float(heldout["mode_std"]))
    if np.any(label >= 0):
        result["clustering"] = clustering.clustering_scores(owner, label, config.num_components)
    if heldout["x"].ndim == 4:
        result["image_quality"] = _image_quality(config, workdir, samples, heldout["x"],
                                                 inception_weights, digit_classifier, seed)
    workdir_lib.write_json_atomic(str(epath.Path(workdir, "eval.json")), _jsonable(result))
    return result


def _image_quality(config, workdir: str, samples: np.ndarray, reference: np.ndarray,
                   inception_weights: str | None, digit_classifier: str | None,
                   seed: int) -> dict:
    """{feature kind: FID / precision / recall, or {'skipped': reason}}."""
    extractors, skipped = features.available_extractors(
        config.data.name, reference.shape[1:], inception_weights, digit_classifier,
        config.data.get("data_dir") or None)
    out = {name: {"skipped": reason} for name, reason in skipped.items()}
    for extractor in extractors:
        cache = str(epath.Path(workdir, f"fid_reference_{extractor.name}.npz"))
        out[extractor.name] = features.quality_metrics(extractor, samples, reference, cache, seed)
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def table(result: dict) -> str:
    """The metrics as aligned text rows."""
    rows = [("KDE log-likelihood (held-out)", f"{result['kde']['log_likelihood']:.4f}"),
            ("  KDE bandwidth", f"{result['kde']['bandwidth']:.4g}"),
            ("coverage C", f"{result['coverage']['coverage']:.4f}"),
            *([("held-out ELBO (mixture)", f"{result['heldout_elbo']['mixture']:.4f}")]
              if "heldout_elbo" in result else []),
            ("components with alpha > 0",
             f"{result['components_used']} of {result['num_components']}")]
    if "modes" in result:
        rows += [("modes covered", f"{result['modes']['modes_covered']} of "
                                   f"{result['modes']['num_modes']}"),
                 ("high-quality samples (3 std)", f"{result['modes']['high_quality_share']:.4f}")]
    if "clustering" in result:
        rows += [(f"clustering {name}", f"{value:.4f}")
                 for name, value in result["clustering"].items()]
    for name, metrics in result.get("image_quality", {}).items():
        if "skipped" in metrics:
            rows.append((f"FID ({name} features)", "skipped: no weights file"))
            continue
        rows += [(f"FID ({name} features)",
                  f"{metrics['fid']:.3f}  ({metrics['num_samples']} samples vs "
                  f"{metrics['num_reference']} held-out)"),
                 (f"  precision / recall (k={metrics['k']})",
                  f"{metrics['precision']:.4f} / {metrics['recall']:.4f}  "
                  f"({metrics['pr_num_points']} points each)"
                  if metrics["precision"] is not None else
                  f"needs more than {metrics['k']} points")]
    width = max(len(name) for name, _ in rows)
    header = (f"{result['strategy']}, K={result['num_components']}, after round "
              f"{result['round']}, {result['num_samples']} model samples")
    return "\n".join([header] + [f"  {name:<{width}}  {value}" for name, value in rows])
