"""Several independently initialised copies of a trained estimator, averaged.

Two discriminators of the same component, fitted from different
initialisations to the same data and samples, can disagree on which
component explains a point (on the offline digits, two fresh sets of K
discriminators give 12-18% of the digits different owners). With
`disc.ensemble = M > 1` the estimator holds M independent copies of its
networks (`MixtureState.disc` is then a tuple of M stacks), fits each as the
single one would be fitted, and scores a point with the mean of their log
ratios, i.e. the geometric mean of their density ratios: the same estimate
with less variance, for M times the fitting and scoring.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from competitive_mixtures.state import Stack


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """`size` copies of the trained estimator `member`; see the module doc."""

    member: object
    size: int

    def __getattr__(self, name: str):
        # Everything else (kind, model, optimizer, step, score, normalise...) is the member's.
        if name in ("member", "size"):
            raise AttributeError(name)
        return getattr(self.member, name)

    def init(self, key: jax.Array, example: jax.Array) -> tuple[Stack, ...]:
        return tuple(self.member.init(k, example) for k in jax.random.split(key, self.size))

    def fit(self, disc: tuple[Stack, ...], gen: Stack, x, key: jax.Array,
            init_key: jax.Array, active: np.ndarray) -> tuple[tuple[Stack, ...], dict]:
        fitted, records = [], []
        for i, d in enumerate(disc):
            d, record = self.member.fit(d, gen, x, jax.random.fold_in(key, i),
                                        jax.random.fold_in(init_key, i), active)
            fitted.append(d)
            records.append(record)
        return tuple(fitted), {name: _mean_losses([r[name] for r in records])
                               for name in records[0]}

    def log_ratios(self, disc: tuple[Stack, ...], gen: Stack, x, key: jax.Array) -> jax.Array:
        total = None
        for i, d in enumerate(disc):
            scores = self.member.log_ratios(d, gen, x, jax.random.fold_in(key, i))
            total = scores if total is None else total + scores
        return total / self.size


def _mean_losses(values: list):
    """The members' mean loss: per component for lists (None where a component took
    no step), or of single numbers (a classifier's)."""
    if isinstance(values[0], list):
        return [_mean_losses(list(column)) for column in zip(*values)]
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None
