"""One (K+1)-way classifier instead of K binary discriminators, or one K-way
classifier of the components' samples alone (`ratio.kind='posterior'`).

Class 0 is the data, class j (1..K) samples of component j. Every training
batch holds B points of each class, so the class priors are equal and at the
optimum softmax(l)_c = p_c(x) / sum_c' p_c'(x), hence

    log dP_gj/dP_X (x) = l_j(x) - l_0(x) - log(prior_j / prior_0),          (1)

the prior term being 0 here. One network serves all K components: its
state is a `Stack` of one.

Why this breaks Lemma 2 of the paper (the procedure with exact likelihoods is
k-means): the lemma needs the score of component j at a point to depend on g_j
alone, as an exact likelihood does and as the binary discriminator D_j at its
own optimum does (it sees only data and samples of g_j). The (K+1)-way softmax
couples the components: every logit is fitted against all K sample sets
at once, through one shared normalisation and one network's capacity, and
eq. (1) holds only at the joint optimum over all classes. Away from it
(finite capacity, finite steps, components whose samples overlap and must
also be told apart from one another, which the binary discriminators never
do), changing g_k moves the estimated ratio of every other component j, so the
assignment is no longer the nearest-model rule that makes the loop k-means.

The posterior kind drops the data class. Trained on equal numbers of samples
of every component, the K-way softmax estimates at its optimum the posterior
of the component under equal priors,

    softmax(l)_j(x) = p_gj(x) / sum_j' p_gj'(x),                           (2)

whose argmax over j is the paper's argmax_j P_gj(x): the common denominator
plays the part of p_X. The classifier never sees data, so it cannot separate
data from samples by what all the components get wrong (faint or blurred
strokes): it only learns what tells the components apart. Eq. (2) is
normalised over the components at every point, so the assignment takes it
without the dataset normaliser (as the ELBO kind); it estimates no ratio to
the data and so serves no data weighting (boosting).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import optax

from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures import steps
from competitive_mixtures.models import discriminator as disc_models
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.ratio import base
from competitive_mixtures.ratio import discriminator as binary
from competitive_mixtures.state import Stack


def classifier_loss(model: LinenModel, data_class: bool = True) -> Callable:
    """Cross-entropy of the classifier on `(real, fake, active)`.

    `real` is `[B, ...]` data (class 0), `fake` `[B, K, ...]` samples (class j+1
    for component j), `active` `[K]` bool: classes of inactive components are
    left out of both the softmax and the loss. Without `data_class` the
    classifier has K classes, sample classes j, and `real` is not used. The
    loss is the mean over the examples that take part.
    """
    def loss(params, model_state, real, fake, active):
        b, k = fake.shape[0], fake.shape[1]
        inputs = fake.reshape((b * k,) + fake.shape[2:])
        labels = jnp.tile(jnp.arange(k, dtype=jnp.int32), b)
        present = active
        if data_class:
            inputs = jnp.concatenate([real, inputs])
            labels = jnp.concatenate([jnp.zeros((b,), jnp.int32), labels + 1])
            present = jnp.concatenate([jnp.ones((1,), bool), active])
        logits = model.apply(params, model_state, inputs)
        log_p = jax.nn.log_softmax(jnp.where(present, logits, -1e30), axis=-1)
        weight = present[labels].astype(jnp.float32)
        picked = jnp.take_along_axis(log_p, labels[:, None], axis=1)[:, 0]
        value = -jnp.sum(jnp.where(weight > 0, picked, 0.0)) / jnp.sum(weight)
        return value, model_state
    return loss


def make_step(model: LinenModel, gen_model, optimizer: optax.GradientTransformation,
              batch_size: int, chunk: int, mesh, unroll: bool = False,
              data_class: bool = True) -> Callable:
    """The classifier's fit: each step B data points and B samples of every component
    (without `data_class` the data points are drawn but not used).

    Returns a jitted
    `step(disc, gen, x, active [K], num_steps [1], offset, key) -> (disc, loss_sum [1], steps [1])`
    that donates `disc` (a `Stack` of one network).
    """
    batch = P(None, sharding.AXIS)
    loss = classifier_loss(model, data_class)
    update = jax.shard_map(stacking.update_fn(loss, optimizer, sharding.AXIS), mesh=mesh,
                           in_specs=(P(), batch, batch, P()), out_specs=(P(), P()))
    target = sharding.batch_sharding(mesh)

    @functools.partial(jax.jit, donate_argnums=0)
    def step_fn(disc: Stack, gen: Stack, x: jax.Array, active: jax.Array,
                num_steps: jax.Array, offset: jax.Array, key: jax.Array):
        k = active.shape[0]

        def step(disc, step_key):
            index_key, sample_key = jax.random.split(step_key)
            index = jax.random.randint(index_key, (1, batch_size), 0, x.shape[0])
            real = steps.take_batch(x, index, mesh)
            fake = stacking.sample(gen_model, gen, jax.random.split(sample_key, k), batch_size)
            fake = jax.lax.with_sharding_constraint(jnp.swapaxes(fake, 0, 1)[None], target)
            return update(disc, real, fake, active[None])

        return steps.scan_chunk(step, disc, num_steps, offset, key, chunk, 1, unroll)

    return step_fn


def make_scorer(model: LinenModel, mesh, data_class: bool = True) -> Callable:
    """Eq. (1), or without `data_class` the log of eq. (2), on one batch: a jitted
    `score(disc, x [B, ...]) -> [B, K]`, B split over devices."""
    def local(disc: Stack, x: jax.Array) -> jax.Array:
        params, model_state = jax.tree.map(lambda leaf: leaf[0], (disc.params, disc.model_state))
        logits = model.apply(params, model_state, x)
        if not data_class:
            return jax.nn.log_softmax(logits, axis=-1)
        return logits[:, 1:] - logits[:, :1]

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(sharding.AXIS)),
                                 out_specs=P(sharding.AXIS)))


@dataclasses.dataclass(frozen=True)
class MultiClassifier(base.Trained):
    """Attributes:
      model: the (K+1)-way (or, for the posterior kind, K-way) classifier;
        `optimizer` its optimizer (`config.disc`).
      step: its jitted chunked fit step (`make_step`); `score` its scorer.
    """

    kind: str = "multiclass"

    @property
    def normalise(self) -> bool:
        """The posterior kind's scores are normalised over the components (eq. 2)."""
        return self.kind == "multiclass"

    def init(self, key: jax.Array, example: jax.Array) -> Stack:
        return stacking.init(self.model, self.optimizer, key[None], example)

    def fit_plan(self, x, active: np.ndarray):
        """As many steps as one binary discriminator; inactive classes are left out."""
        return (np.array([binary.fit_steps(self.config, x.shape[0])]),
                self.config.steps_per_chunk, 1, (jnp.asarray(active, bool),))

    def fit_record(self, loss: np.ndarray) -> dict:
        return {"classifier_loss": base.losses(loss)[0]}


def make(config: ml_collections.ConfigDict, gen_model, data_shape: tuple[int, ...],
         mesh, stack_mode: str = "vmap") -> MultiClassifier:
    """A classifier shaped like the binary discriminators of `config.disc`, with K+1
    outputs, or K for `ratio.kind='posterior'`."""
    data_class = config.ratio.kind != "posterior"
    classes = config.num_components + int(data_class)
    model = disc_models.make(config, data_shape, outputs=classes)
    opt = binary.optimizer(config)
    return MultiClassifier(
        config=config, model=model, optimizer=opt, mesh=mesh,
        step=make_step(model, gen_model, opt, config.disc.batch_size, config.steps_per_chunk,
                       mesh, config.unroll_steps, data_class),
        score=make_scorer(model, mesh, data_class), kind=config.ratio.kind)
