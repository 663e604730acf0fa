"""GAN components: a generator and its own adversary, trained by alternating steps.

A GAN component of the mixture is a generator g_j and an adversary (the
"critic") c_j that sees only the points component j trains on; the mixture's
assignment discriminators, which see the whole dataset, stay separate
(`models.discriminator`, `ratio.discriminator.make_disc_step`), as in Locatello et al.
(2018), section 5.3.

Networks (DCGAN, Radford et al. 2016):
  vectors `[B, D]`: MLP generator z -> x and MLP critic x -> logit;
  images `[B, H, W, C]`: the generator maps z by a dense layer to a small map
  of `filters` channels and doubles it with stride-2 transposed convs
  (halving the channels each time, batch norm + ReLU) up to `[H, W, C]`,
  through a sigmoid into [0, 1]; the critic mirrors it with stride-2 convs
  and leaky ReLU (0.2), its widest layer `filters` channels. 64x64 images
  take 4 doublings from 4x4 (filters 512 -> 256 -> 128 -> 64 -> 3 channels,
  DCGAN's CelebA setting), 28x28 take 2 from 7x7.

Spectral normalisation of the critic (Miyato et al. 2018) uses Flax's
`nn.SpectralNorm`: it is the published method (one power iteration per
training call, conv kernels reshaped to `[kh*kw*c_in, c_out]`), and its
power-iteration vectors live in the 'batch_stats' collection, which the
stacked state already keeps per component (`Stack.model_state`) and
checkpoints; nothing here has to be written twice.

Losses (`loss`):
  'ns': non-saturating GAN, critic -log D(x) - log(1 - D(g(z))), generator
    -log D(g(z)), D = sigmoid(critic);
  'wgan_gp': Wasserstein GAN with gradient penalty (Gulrajani et al. 2017),
    critic c(g(z)) - c(x) + gp_weight * (||grad c(x_hat)|| - 1)^2 on
    x_hat = eps x + (1 - eps) g(z), eps ~ U[0, 1]; generator -c(g(z));
  'wgan_clip': the original Wasserstein GAN (Arjovsky et al. 2017): the same
    critic and generator losses without the penalty; the critic is kept
    Lipschitz by clipping every critic weight to [-clip, clip] after each of
    its updates (the paper: RMSProp, clip 0.01, 5 critic steps, no spectral
    normalisation; `configs/gan_ring.py:loss=wgan_clip`).
One training step is `critic_steps` critic updates, each on its own real
batch, then one generator update.

Generator averaging (`generator_ema` = d > 0, Yazici et al. 2019): the
component also keeps g_bar <- d g_bar + (1 - d) g after each generator
update, starting from the initial weights, and samples from g_bar. The
critic trains against the live g as before. A live generator fitted to a
narrow mode circles it rather than settling, so the share of its samples
near the mode swings from one update to the next; the average sits on it
(docs/results/gans.md, "The preset: averaged generators and a k-means start").
The average lives in model_state['generator_ema'], so it is stacked,
sharded and checkpointed with the rest of the component.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from competitive_mixtures.models.base import ComponentStep, PartOptimizers, gradient_step
from competitive_mixtures.models.conv import ConvTranspose, _batch_norm, to_unit_interval

PyTree = Any
LOSSES = ("ns", "wgan_gp", "wgan_clip")
LEAKY_SLOPE = 0.2


def _dense(features: int, spectral_norm: bool, train: bool):
    """A dense layer, spectrally normalised when asked; returns a callable on x."""
    layer = nn.Dense(features)
    if not spectral_norm:
        return layer
    wrapped = nn.SpectralNorm(layer)
    return lambda x: wrapped(x, update_stats=train)


class MLPGenerator(nn.Module):
    """z `[B, latent]` -> x `[B, data_dim]`: ReLU MLP, linear output."""

    hidden: Sequence[int]
    data_dim: int

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        for width in self.hidden:
            z = nn.relu(nn.Dense(width)(z))
        return nn.Dense(self.data_dim)(z)


class MLPCritic(nn.Module):
    """x `[B, D]` -> one logit per point `[B]`: leaky-ReLU MLP."""

    hidden: Sequence[int]
    spectral_norm: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        x = x.astype(jnp.float32)
        for width in self.hidden:
            x = nn.leaky_relu(_dense(width, self.spectral_norm, train)(x), LEAKY_SLOPE)
        return _dense(1, self.spectral_norm, train)(x)[:, 0]


def num_doublings(image_shape: Sequence[int]) -> int:
    """Stride-2 stages between the generator's first map and `image_shape`.

    The size is halved while it stays even and at least 4: 64 -> 4 (4 stages),
    32 -> 4 (3), 28 -> 7 (2).
    """
    height, width = image_shape[:2]
    stages = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width, stages = height // 2, width // 2, stages + 1
    if stages == 0:
        raise ValueError(f"images of {height}x{width} cannot be halved; DCGAN needs even sizes")
    return stages


def stage_channels(filters: int, stages: int) -> tuple[int, ...]:
    """Channels of the critic's convs, narrowest first: filters / 2^(stages-1) .. filters.

    The generator uses them widest first.
    """
    if filters % 2 ** (stages - 1):
        raise ValueError(f"filters={filters} must divide by 2^{stages - 1} for {stages} stages")
    return tuple(filters // 2 ** (stages - 1 - i) for i in range(stages))


class ConvGenerator(nn.Module):
    """z `[B, latent]` -> images `[B, H, W, C]` in [0, 1] (DCGAN generator)."""

    filters: int
    image_shape: Sequence[int]
    kernel: int = 4
    batch_norm: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        stages = num_doublings(self.image_shape)
        channels = stage_channels(self.filters, stages)[::-1]
        height, width = (s // 2 ** stages for s in self.image_shape[:2])
        x = nn.Dense(height * width * channels[0], use_bias=not self.batch_norm)(z)
        x = x.reshape(z.shape[0], height, width, channels[0])
        outputs = channels[1:] + (self.image_shape[-1],)
        for i, out in enumerate(outputs):
            if self.batch_norm:
                x = _batch_norm(train, self.axis_name)(x)
            x = nn.relu(x)
            # Only the last layer is not followed by batch norm, which cancels a bias.
            last = i == len(outputs) - 1
            x = ConvTranspose(out, (self.kernel, self.kernel), strides=(2, 2),
                              use_bias=last or not self.batch_norm)(x)
        return nn.sigmoid(x)


class ConvCritic(nn.Module):
    """Images `[B, H, W, C]` (uint8 or [0, 1]) -> one logit per image `[B]` (DCGAN critic).

    No batch norm: a per-example gradient penalty and per-image scores need
    outputs that do not depend on the rest of the batch.
    """

    filters: int
    kernel: int = 4
    spectral_norm: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        x = 2.0 * to_unit_interval(x) - 1.0
        for width in stage_channels(self.filters, num_doublings(x.shape[1:])):
            conv = nn.Conv(width, (self.kernel, self.kernel), strides=(2, 2), padding="SAME")
            if self.spectral_norm:
                x = nn.SpectralNorm(conv)(x, update_stats=train)
            else:
                x = conv(x)
            x = nn.leaky_relu(x, LEAKY_SLOPE)
        return _dense(1, self.spectral_norm, train)(x.reshape(x.shape[0], -1))[:, 0]


def gradient_penalty(critic_fn, real: jax.Array, fake: jax.Array,
                     eps: jax.Array) -> jax.Array:
    """Mean over the batch of (||grad_x critic(x_hat)||_2 - 1)^2, x_hat = eps real + (1-eps) fake.

    `critic_fn` maps `[B, ...]` -> `[B]` with each output depending on its own
    example only, so the gradient of the sum is the per-example gradient.
    """
    eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda v: jnp.sum(critic_fn(v)))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


@dataclasses.dataclass(frozen=True)
class GANModel:
    """One GAN component as pure functions; the same protocol as `base.LinenModel`.

    params = `{'generator': .., 'critic': ..}`, model_state likewise (batch
    statistics of the generator, power-iteration vectors of the critic).
    A training batch is `x [B, critic_steps, *data_shape]` (a real batch per
    critic step) and `noise [B, critic_steps + 1, latent + 1]` (latent codes
    per critic step and for the generator step; the last entry is turned
    into the gradient penalty's uniform eps).
    """

    generator: nn.Module
    critic: nn.Module
    latent: int
    loss: str = "ns"
    critic_steps: int = 1
    gp_weight: float = 10.0
    clip: float = 0.01
    generator_ema: float = 0.0
    # No sequential form: the K components always run vmapped.
    stack_mode = "vmap"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0.0 <= self.generator_ema < 1.0:
            raise ValueError(f"generator_ema must be in [0, 1), got {self.generator_ema}")

    @property
    def draws_per_example(self) -> int:
        return self.critic_steps

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.critic_steps + 1, self.latent + 1)

    def init(self, key: jax.Array, x: jax.Array) -> tuple[PyTree, PyTree]:
        """(params, model_state) for one component; `x` `[B, *data_shape]` is an example."""
        gen_key, critic_key = jax.random.split(key)
        z = jnp.zeros((x.shape[0], self.latent), jnp.float32)
        gen_vars = dict(self.generator.init(gen_key, z, train=False))
        critic_vars = dict(self.critic.init(critic_key, x, train=False))
        params = {"generator": gen_vars.pop("params"), "critic": critic_vars.pop("params")}
        model_state = {"generator": gen_vars, "critic": critic_vars}
        if self.generator_ema:
            # A copy: the step donates params and state, which must not share buffers.
            model_state["generator_ema"] = jax.tree.map(jnp.copy, params["generator"])
        return params, model_state

    def generate(self, params: PyTree, model_state: PyTree, z: jax.Array,
                 train: bool) -> tuple[jax.Array, PyTree]:
        """g(z) `[B, *data_shape]` and the generator's new state (batch statistics)."""
        state = model_state["generator"]
        if not train:
            return self.generator.apply({"params": params, **state}, z, train=False), state
        out, mutated = self.generator.apply({"params": params, **state}, z, train=True,
                                            mutable=list(state))
        return out, {**state, **mutated}

    def criticise(self, params: PyTree, model_state: PyTree, x: jax.Array,
                  train: bool) -> tuple[jax.Array, PyTree]:
        """critic(x) `[B]` and the critic's new state (power-iteration vectors)."""
        state = model_state["critic"]
        if not train:
            return self.critic.apply({"params": params, **state}, x, train=False), state
        out, mutated = self.critic.apply({"params": params, **state}, x, train=True,
                                         mutable=list(state))
        return out, {**state, **mutated}

    def critic_loss(self, critic_params: PyTree, critic_state: PyTree, real: jax.Array,
                    fake: jax.Array, eps: jax.Array) -> tuple[jax.Array, PyTree]:
        """The critic's loss on one real and one generated batch; returns (loss, state)."""
        logits, critic_state = self.criticise(
            critic_params, {"critic": critic_state}, jnp.concatenate(
                [to_unit_interval(real), fake]), train=True)
        real_logits, fake_logits = jnp.split(logits, 2)
        if self.loss == "ns":
            loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
        elif self.loss == "wgan_clip":
            loss = jnp.mean(fake_logits) - jnp.mean(real_logits)
        else:
            def plain(v):
                return self.criticise(critic_params, {"critic": critic_state}, v, train=False)[0]
            penalty = gradient_penalty(plain, to_unit_interval(real), fake, eps)
            loss = jnp.mean(fake_logits) - jnp.mean(real_logits) + self.gp_weight * penalty
        return loss, critic_state

    def generator_loss(self, logits: jax.Array) -> jax.Array:
        """The generator's loss from the critic's logits on its samples."""
        if self.loss == "ns":
            return jnp.mean(jax.nn.softplus(-logits))
        return -jnp.mean(logits)

    def make_step(self, optimizer: PartOptimizers, axis_name: str | None = None) -> ComponentStep:
        """`critic_steps` critic updates, then one generator update (see class docstring).

        The loss returned is the generator's.
        """
        latent = self.latent

        critic_update = gradient_step(self.critic_loss, optimizer["critic"], axis_name)

        def gen_fn(gen_params, state, critic_params, z):
            fake, gen_state = self.generate(gen_params, state, z, train=True)
            logits, _ = self.criticise(critic_params, state, fake, train=False)
            return self.generator_loss(logits), gen_state

        gen_update = gradient_step(gen_fn, optimizer["generator"], axis_name)

        def step(params, model_state, opt_state, x, noise):
            critic_params, critic_state = params["critic"], model_state["critic"]
            critic_opt = opt_state["critic"]
            for i in range(self.critic_steps):
                fake, _ = self.generate(params["generator"], model_state, noise[:, i, :latent],
                                        train=True)
                eps = jax.scipy.special.ndtr(noise[:, i, latent])
                critic_params, critic_state, critic_opt, _ = critic_update(
                    critic_params, critic_state, critic_opt, x[:, i],
                    jax.lax.stop_gradient(fake), eps)
                if self.loss == "wgan_clip":
                    critic_params = jax.tree.map(lambda w: jnp.clip(w, -self.clip, self.clip),
                                                 critic_params)
            state = {**model_state, "critic": critic_state}
            gen_params, gen_state, gen_opt, loss = gen_update(
                params["generator"], state, opt_state["generator"], critic_params,
                noise[:, self.critic_steps, :latent])
            new_state = {**state, "generator": gen_state}
            if self.generator_ema:
                decay = self.generator_ema
                new_state["generator_ema"] = jax.tree.map(
                    lambda avg, w: decay * avg + (1.0 - decay) * w,
                    model_state["generator_ema"], gen_params)
            return ({"generator": gen_params, "critic": critic_params}, new_state,
                    {"generator": gen_opt, "critic": critic_opt}, loss)

        return step

    def sample(self, params: PyTree, model_state: PyTree, key: jax.Array, n: int) -> jax.Array:
        """`n` samples `[n, *data_shape]` of g(z), z ~ N(0, I); g is the averaged
        generator when `generator_ema` is set."""
        z = jax.random.normal(key, (n, self.latent))
        weights = model_state["generator_ema"] if self.generator_ema else params["generator"]
        return self.generate(weights, model_state, z, train=False)[0]
