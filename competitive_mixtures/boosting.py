"""AdaGAN boosting as pure array code: data weights, mixture weights, stage schedule.

Notation (Tolstikhin et al., "AdaGAN: Boosting Generative Models", 2017):
the mixture after t components is G_t = (1 - beta_t) G_{t-1} + beta_t Q_t (1),
where Q_t is the new component. Before Q_t trains, an estimate of

    h(x_i) = dP_{G_{t-1}} / dP_X (x_i) = (1 - D(x_i)) / D(x_i)              (2)

at every data point (D separates data from G_{t-1}) sets the data weights

    w_i = (lambda* - (1 - beta_t) h(x_i))_+ / (beta_t N),   sum_i w_i = 1,   (3)

the minimiser over Q of the f-divergence between G_t and the data (AdaGAN,
Sec. 3.1); points the mixture already explains (large h) get weight 0. The
`dagger` variant (AdaGAN, Theorem 2) uses

    w_i = (1 - lambda_dagger (1 - beta_t) h(x_i))_+ / (beta_t N),  sum_i w_i = 1.  (4)

Both lambdas are found exactly: sort h, and for each number k of points with
non-zero weight solve the normalisation in closed form; the k consistent with
the sort order gives the answer (as in a Euclidean projection onto the simplex).

Here h comes from the per-component log ratios of `ratio/` (any estimator):
dP_G/dP_X = sum_j alpha_j dP_gj/dP_X, so boosting needs no discriminator of its
own. Nothing here knows about networks.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from competitive_mixtures.config import choices

# beta schedules: constant beta; beta_t = 1/t (G_t is the uniform mixture of the
# t components); beta_t = 1, the limit in which (3) gives uniform weights and
# G_t = Q_t, i.e. every stage trains a fresh model on the plain data and
# replaces the mixture by it (a reference point of the theory, not a useful
# mixture).
BETA_SCHEDULES = choices.BETA_SCHEDULES
WEIGHTINGS = choices.BOOSTING_WEIGHTINGS


def beta(schedule: str, stage: int, constant: float = 0.5) -> float:
    """beta_t for the component added at 0-based `stage` (t = stage + 1).

    The first component always gets beta = 1 (G_1 = Q_1).
    """
    if schedule not in BETA_SCHEDULES:
        raise ValueError(f"unknown beta schedule {schedule!r}; expected one of {BETA_SCHEDULES}")
    if stage == 0 or schedule == "one":
        return 1.0
    if schedule == "1/t":
        return 1.0 / (stage + 1)
    return float(constant)


def add_component(alpha: jax.Array, component: int, beta_t: float) -> jax.Array:
    """Eq. (1) on the mixture weights: `[K]` alpha -> (1 - beta) alpha + beta e_component."""
    return (1.0 - beta_t) * alpha + beta_t * jax.nn.one_hot(component, alpha.shape[0],
                                                           dtype=alpha.dtype)


def mixture_log_ratio(log_ratio: jax.Array, alpha: jax.Array) -> jax.Array:
    """log h of eq. (2) from per-component log ratios `[N, K]` and weights `[K]` -> `[N]`.

    log dP_G/dP_X = logsumexp_j (log alpha_j + log dP_gj/dP_X); components with
    alpha_j = 0 take no part (their ratios may be anything, even +inf).
    """
    terms = jnp.where(alpha[None, :] > 0, jnp.log(alpha)[None, :] + log_ratio, -jnp.inf)
    return jax.nn.logsumexp(terms, axis=1)


def _scaled_sorted(h: jax.Array, beta_t: float) -> tuple[jax.Array, jax.Array]:
    """(1 - beta) h (NaN counted as +inf, exactly 0 when beta = 1), and its ascending sort."""
    h = jnp.where(jnp.isnan(h), jnp.inf, h)
    scaled = jnp.where(beta_t < 1.0, (1.0 - beta_t) * h, 0.0)
    return scaled, jnp.sort(scaled)


def owners(log_ratio: jax.Array, alpha: jax.Array) -> jax.Array:
    """`[N]` int32 most responsible component, argmax_j alpha_j dP_gj/dP_X (x_i).

    The mixture's posterior over components at each point; components with
    alpha_j = 0 own nothing. Ties go to the lowest j.
    """
    scores = jnp.where(alpha[None, :] > 0, jnp.log(alpha)[None, :] + log_ratio, -jnp.inf)
    return jnp.argmax(scores, axis=1).astype(jnp.int32)


def data_weights(h: jax.Array, beta_t: float) -> jax.Array:
    """Eq. (3): AdaGAN's weights `[N]` (non-negative, summing to 1) from h `[N]` >= 0.

    With a_i = (1 - beta) h_i sorted ascending and S_k the sum of the k
    smallest, k points with non-zero weight need lambda_k = (beta N + S_k) / k;
    the largest k with lambda_k > a_(k) is the solution. beta is in (0, 1].
    """
    n = h.shape[0]
    scaled, a = _scaled_sorted(h, beta_t)
    k = jnp.arange(1, n + 1)
    lam = (beta_t * n + jnp.cumsum(a)) / k
    # k = 1 always qualifies: lambda_1 = beta N + a_(1) > a_(1).
    k_star = jnp.max(jnp.where(lam > a, k, 1))
    return jnp.maximum(lam[k_star - 1] - scaled, 0.0) / (beta_t * n)


def data_weights_dagger(h: jax.Array, beta_t: float) -> jax.Array:
    """Eq. (4): the dagger weights `[N]` (non-negative, summing to 1) from h `[N]` >= 0.

    With c_i = (1 - beta) h_i sorted ascending and S_k the sum of the k
    smallest, k points with non-zero weight need lambda_k = (k - beta N) / S_k
    (k > beta N); the k with c_(k) < 1 / lambda_k <= c_(k+1) is the solution.
    When none exists (more than beta N points with h = 0, or beta = 1) the
    weights are the limit lambda -> inf: uniform over the points of smallest h.
    """
    n = h.shape[0]
    scaled, c = _scaled_sorted(h, beta_t)
    k = jnp.arange(1, n + 1)
    total = jnp.cumsum(c)
    lam = (k - beta_t * n) / jnp.where(total > 0, total, 1.0)
    above = jnp.concatenate([c[1:], jnp.full((1,), jnp.inf, c.dtype)])
    valid = (k > beta_t * n) & (total > 0) & (lam * c < 1.0) & (lam * above >= 1.0)
    lam_dagger = lam[jnp.argmax(valid)]
    solved = jnp.maximum(1.0 - lam_dagger * scaled, 0.0) / (beta_t * n)
    smallest = (scaled == c[0]).astype(h.dtype)
    return jnp.where(valid.any(), solved, smallest / jnp.sum(smallest))


def weights(h: jax.Array, beta_t: float, weighting: str = "star") -> jax.Array:
    """`data_weights` (weighting 'star') or `data_weights_dagger` ('dagger')."""
    if weighting == "star":
        return data_weights(h, beta_t)
    if weighting == "dagger":
        return data_weights_dagger(h, beta_t)
    raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")


@functools.partial(jax.jit, static_argnames=("weighting",))
def next_weights(log_ratio: jax.Array, alpha: jax.Array, beta_t: jax.Array,
                 weighting: str = "star") -> jax.Array:
    """The data weights `[N]` for the next component from per-component log ratios
    `[N, K]` and the current mixture weights `[K]` (eqs. 2-4)."""
    return weights(jnp.exp(mixture_log_ratio(log_ratio, alpha)), beta_t, weighting)


def draw_training_points(key: jax.Array, w: jax.Array, num: int) -> jax.Array:
    """`[num]` int32 point indices drawn i.i.d. with replacement from weights `w` `[N]`.

    With replacement, so any number of points with non-zero weight, even one,
    fills a list of any length.
    """
    return jax.random.choice(key, w.shape[0], (num,), replace=True, p=w).astype(jnp.int32)


def stage(round_index: int, num_rounds: int, num_components: int) -> int:
    """The 0-based component that round `round_index` (0..num_rounds) trains.

    The num_rounds + 1 rounds are dealt to the K components in order, as evenly
    as possible (earlier components get the extra rounds).
    """
    return (round_index * num_components) // (num_rounds + 1)


def stage_ends(round_index: int, num_rounds: int, num_components: int) -> bool:
    """Round `round_index` is the last round of its component's stage."""
    return (round_index == num_rounds
            or stage(round_index + 1, num_rounds, num_components)
            != stage(round_index, num_rounds, num_components))
