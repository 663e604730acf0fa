"""Density-ratio estimators for the assignment pass, chosen by `config.ratio.kind`.

  discriminator  K binary classifiers, data vs samples of g_j (the paper's);
  kernel         kernel mean matching, r = (N/n) (K_dd + N eps I)^-1 K_dm 1;
  multiclass     one (K+1)-way classifier, data vs the K components' samples;
  posterior      one K-way classifier of the K components' samples alone: the
                 posterior of the component at a point, under equal priors
                 (assigned without the dataset normaliser);
  elbo           VAE families: each component's own ELBO, a bound on its
                 log-density (assigned without the dataset normaliser);
  exact          the k-means family: each component's exact log-likelihood
                 (with its exact M-step, the loop is Lloyd's k-means).

Each returns log dP_gj/dP_X at the N data points as one `[N, K]` array, so
`assign.py` is the same for all (see `ratio.base.RatioEstimator`). With
`disc.ensemble = M > 1` a trained kind is M independent copies whose log
ratios are averaged (`ratio/ensemble.py`).
"""

from __future__ import annotations

import ml_collections

from competitive_mixtures import sharding
from competitive_mixtures.ratio import base
from competitive_mixtures.ratio import discriminator
from competitive_mixtures.ratio import elbo
from competitive_mixtures.ratio import ensemble
from competitive_mixtures.ratio import exact
from competitive_mixtures.ratio import kernel
from competitive_mixtures.ratio import multiclass
from competitive_mixtures.ratio.base import RatioEstimator

KINDS = {"discriminator": discriminator.make, "kernel": kernel.make,
         "multiclass": multiclass.make, "posterior": multiclass.make, "elbo": elbo.make,
         "exact": exact.make}

# The kinds with networks to fit, which `disc.ensemble` can replicate.
TRAINED_KINDS = ("discriminator", "multiclass", "posterior")

__all__ = ["KINDS", "TRAINED_KINDS", "RatioEstimator", "base", "make", "make_likelihood"]


def make(config: ml_collections.ConfigDict, gen_model, data_shape: tuple[int, ...],
         mesh, stack_mode: str | None = None) -> RatioEstimator:
    """The estimator named by `config.ratio.kind` for data of `data_shape`; `stack_mode` as
    `models.generator` takes it (the discriminators' steps and scores run so)."""
    kind = config.ratio.kind
    if kind not in KINDS:
        raise ValueError(f"unknown ratio.kind {kind!r}; expected one of {sorted(KINDS)}")
    if stack_mode is None:
        stack_mode = sharding.resolve_stack_mode(config.stack_mode, len(data_shape) == 3)
    estimator = KINDS[kind](config, gen_model, data_shape, mesh, stack_mode)
    if config.disc.ensemble > 1 and kind in TRAINED_KINDS:
        return ensemble.Ensemble(estimator, config.disc.ensemble)
    return estimator


def make_likelihood(config: ml_collections.ConfigDict, gen_model, data_shape: tuple[int, ...],
                    mesh) -> RatioEstimator:
    """Every component's log-likelihood bound at given points, whatever `ratio.kind`:
    the exact log-density for the k-means family, the ELBO for the VAE families."""
    kind = "exact" if config.model.family == "kmeans" else "elbo"
    return KINDS[kind](config, gen_model, data_shape, mesh)
