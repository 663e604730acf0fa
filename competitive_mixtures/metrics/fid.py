"""Frechet distance between Gaussian fits of two feature sets (FID, Heusel et al. 2017).

  d^2 = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

Statistics are float64. tr((S_1 S_2)^(1/2)) is the sum of the square roots of
the eigenvalues of S_1 S_2, which are those of the symmetric positive
semi-definite S_1^(1/2) S_2 S_1^(1/2); computing them that way needs only
symmetric eigendecompositions, so it stays real and finite where a general
matrix square root of a near-singular product can fail. If it still fails,
both covariances are offset by eps * I, as in the original FID code.

FID is biased in the number of samples N (it falls as N grows), so values
are only comparable at equal N; `FeatureStats` keeps N with mu and sigma.
"""

from __future__ import annotations

import dataclasses

from absl import logging
from etils import epath
import numpy as np

# Offset added to both covariances when the trace term is not finite.
SQRT_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """Gaussian fit of a feature set: mean `[d]`, covariance `[d, d]`, N points."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


def feature_stats(features: np.ndarray) -> FeatureStats:
    """Mean and unbiased covariance of `features` `[n, d]`, in float64 (n >= 2)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need features [n >= 2, d], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinity")
    return FeatureStats(mu=x.mean(axis=0), sigma=np.cov(x, rowvar=False), n=x.shape[0])


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 sigma2)^(1/2)) for symmetric PSD `[d, d]` matrices."""
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))


def frechet_distance(stats1: FeatureStats, stats2: FeatureStats,
                     eps: float = SQRT_EPS) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(stats1.mu, np.float64), np.asarray(stats2.mu, np.float64)
    s1, s2 = np.asarray(stats1.sigma, np.float64), np.asarray(stats2.sigma, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f"statistics of different dimensions: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {s1.shape} vs {s2.shape}")
    try:
        covmean = trace_sqrt_product(s1, s2)
    except np.linalg.LinAlgError:
        covmean = np.nan
    if not np.isfinite(covmean):
        logging.warning("FID: tr sqrt(S1 S2) is not finite; adding %g * I to both covariances",
                        eps)
        offset = eps * np.eye(s1.shape[0])
        covmean = trace_sqrt_product(s1 + offset, s2 + offset)
        if not np.isfinite(covmean):
            raise ValueError("FID: covariances give a non-finite trace term even with offset")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * covmean)


def save_stats(path: str, stats: FeatureStats, fingerprint: str = "",
               features: np.ndarray | None = None) -> None:
    """Writes `stats` to an `.npz`: mu, sigma, n, what made them, and optionally the features."""
    extra = {} if features is None else {"features": np.asarray(features, np.float32)}
    tmp = epath.Path(path + ".tmp.npz")
    with tmp.open("wb") as f:
        np.savez(f, mu=stats.mu, sigma=stats.sigma, n=stats.n,
                 fingerprint=np.asarray(fingerprint), **extra)
    tmp.replace(path)


def load_stats(path: str, fingerprint: str | None = None) -> FeatureStats | None:
    """Statistics from an `.npz` with `mu` and `sigma` (and `n`, 0 when absent).

    Returns None when the file is absent, or when `fingerprint` is given and
    the file was made by something else.
    """
    if not epath.Path(path).exists():
        return None
    with epath.Path(path).open("rb") as f, np.load(f) as npz:
        if fingerprint is not None and (
                "fingerprint" not in npz.files or str(npz["fingerprint"]) != fingerprint):
            return None
        return FeatureStats(mu=np.asarray(npz["mu"], np.float64),
                            sigma=np.asarray(npz["sigma"], np.float64),
                            n=int(npz["n"]) if "n" in npz.files else 0)
