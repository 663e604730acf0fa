"""Convolutional VAE for images `[B, H, W, C]`.

It takes images either as uint8 (0..255, how datasets are stored) or as
float in [0, 1] (how generators emit samples); uint8 is divided by 255 inside
the network so that a dataset never has to be held as float. Samples of the
VAE are float32 in [0, 1], the same data space the discriminators
(models/discriminator.py) accept.

Settings of Locatello et al. (2018):
  MNIST  `ConvVAE(encoder_channels=(8, 16, 32, 64), decoder_channels=(64, 32, 16),
                  kernel=4, latent=8, image_shape=(28, 28, 1))`;
  CelebA `ConvVAE(encoder_channels=(64, 128, 256, 512), decoder_channels=(256, 128, 64),
                  kernel=5, latent=128, image_shape=(64, 64, 3),
                  likelihood='gaussian' or 'bernoulli')`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from competitive_mixtures.models.vae import LOG_VAR_MAX, LOG_VAR_MIN, gaussian_kl, gaussian_nll

LIKELIHOODS = ('bernoulli', 'gaussian')

# Batch-norm constants of the usual (PyTorch / DCGAN) setting; Flax's
# momentum is the weight of the old running average.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def to_unit_interval(x: jax.Array) -> jax.Array:
    """Images as float32 in [0, 1]: uint8 `[B, H, W, C]` is divided by 255, floats pass."""
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) / 255.0
    return x.astype(jnp.float32)


def gaussian_blur(x: jax.Array, sigma: float) -> jax.Array:
    """Images `[B, H, W, C]` convolved with a normalised Gaussian of std `sigma` pixels
    (separable, per channel, zero padding; radius ceil(3 sigma))."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = jnp.asarray(taps / taps.sum(), x.dtype)
    channels = x.shape[-1]
    for shape in ((-1, 1, 1, 1), (1, -1, 1, 1)):
        kernel = jnp.tile(taps.reshape(shape), (1, 1, 1, channels))
        x = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         feature_group_count=channels)
    return x


def _batch_norm(train: bool, axis_name: str | None) -> nn.BatchNorm:
    # Training normalises with the batch's statistics and updates the running
    # averages in 'batch_stats'; evaluation and sampling read the averages.
    # With `axis_name` the statistics are those of the whole batch split over
    # that mesh axis, so a data-parallel step equals the one-device step.
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                        epsilon=BN_EPSILON, axis_name=axis_name if train else None)


def decoder_start_shape(image_shape: Sequence[int], num_upsample: int) -> tuple[int, int]:
    """Spatial size `(h0, w0)` that `num_upsample` doublings take exactly to `image_shape`."""
    height, width = image_shape[:2]
    factor = 2 ** num_upsample
    if height % factor or width % factor:
        raise ValueError(
            f'{num_upsample} stride-2 upsamplings cannot reach {height}x{width} exactly; '
            f'choose decoder_channels with len - 1 = number of halvings of the image size '
            f'(e.g. 3 channels for 28x28: 7 -> 14 -> 28).')
    return height // factor, width // factor


def _phases(kernel: int, stride: int) -> list[tuple[list[int], int]]:
    """For each output phase a (outputs s*i + a): the kernel taps it uses and the
    input offset of its first tap, for a 'SAME' transposed convolution.

    `lax.conv_transpose(..., 'SAME')` dilates the input by `stride`, pads it by
    (pad_a, pad_b) and correlates it with the kernel, so output s*i + a reads
    input i + (a + t - pad_a) / s through tap t, for the taps t with
    t = pad_a - a (mod s).
    """
    pad_len = kernel + stride - 2
    pad_a = kernel - 1 if stride > kernel - 1 else -(-pad_len // 2)
    phases = []
    for a in range(stride):
        first = (pad_a - a) % stride
        phases.append((list(range(first, kernel, stride)), (a + first - pad_a) // stride))
    return phases


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """`lax.conv_transpose(x, kernel, (s, s), 'SAME')` (NHWC, HWIO) as one plain convolution.

    The transposed convolution is computed phase by phase (sub-pixel form):
    output pixel (s*i + a, s*j + b) depends on a few input pixels near (i, j)
    through the taps of phase (a, b). One stride-1 convolution with
    s*s*C_out outputs computes every phase at every position, and each phase
    reads its own shifted window. This does the same arithmetic without the
    zeros that the dilated form multiplies, and its gradients are plain
    convolutions too: on XLA:CPU it ran 2.6-3.7x faster (forward and
    backward) than `lax.conv_transpose` on the MNIST decoder's layers.

    Args:
      x: `[B, H, W, C_in]`.
      kernel: `[k, k, C_in, C_out]`, as `flax.linen.ConvTranspose` holds it.
      stride: s.
    Returns:
      `[B, s*H, s*W, C_out]`.
    """
    k, c_in, c_out = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    phases = _phases(k, stride)
    n = max(len(taps) for taps, _ in phases)
    offsets = [offset for _, offset in phases]
    left = max(0, -min(offsets))
    right = max(0, max(offsets) + n - 1)
    # Taps of each phase, padded with zeros to n: index k reads the zero row.
    index = np.array([taps + [k] * (n - len(taps)) for taps, _ in phases])  # [s, n]
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
    # combined[u, v, c, a, b, o] = kernel[taps_a[u], taps_b[v], c, o]
    combined = padded[index.T[:, None, :, None], index.T[None, :, None, :]]  # [n, n, s, s, ci, co]
    combined = combined.transpose(0, 1, 4, 2, 3, 5).reshape(n, n, c_in, -1)
    batch, height, width = x.shape[:3]
    out = jax.lax.conv_general_dilated(
        jnp.pad(x, ((0, 0), (left, right), (left, right), (0, 0))), combined, (1, 1), 'VALID',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    out = out.reshape(out.shape[:3] + (stride, stride, c_out))
    rows = [jnp.stack([out[:, left + offsets[a]:left + offsets[a] + height,
                           left + offsets[b]:left + offsets[b] + width, a, b]
                       for b in range(stride)], axis=3) for a in range(stride)]
    return jnp.stack(rows, axis=2).reshape(batch, stride * height, stride * width, c_out)


class ConvTranspose(nn.Module):
    """`flax.linen.ConvTranspose` with 'SAME' padding and equal strides, computed by
    `conv_transpose`: the same parameters ('kernel' `[k, k, C_in, C_out]`,
    'bias'), initialisers and outputs (up to float rounding)."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (2, 2)
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kernel_size[0] != self.kernel_size[1] or self.strides[0] != self.strides[1]:
            raise ValueError('ConvTranspose takes square kernels and equal strides')
        kernel = self.param('kernel', nn.linear.default_kernel_init,
                            tuple(self.kernel_size) + (x.shape[-1], self.features))
        y = conv_transpose(x, kernel.astype(x.dtype), self.strides[0])
        if self.use_bias:
            y = y + self.param('bias', nn.initializers.zeros_init(), (self.features,))
        return y


class ConvEncoder(nn.Module):
    """q(z|x): stride-2 convs (+ batch norm) + ReLU, then dense heads.

    `[B, H, W, C]` float -> (mean `[B, latent]`, log-variance `[B, latent]`).
    Each conv halves the spatial size (rounding up, 'SAME' padding).
    """

    channels: Sequence[int]
    kernel: int
    latent: int
    batch_norm: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
        for width in self.channels:
            # A bias before batch norm would be cancelled by its centring.
            x = nn.Conv(width, (self.kernel, self.kernel), strides=(2, 2), padding='SAME',
                        use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = _batch_norm(train, self.axis_name)(x)
            x = nn.relu(x)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.latent, name='mean')(x), nn.Dense(self.latent, name='log_var')(x)


class ConvDecoder(nn.Module):
    """p(x|z): dense to a small map, stride-2 transposed convs, then a conv to outputs.

    With `channels = (c0, c1, ..., cU)`: dense -> `[B, H/2^U, W/2^U, c0]`, then
    U transposed convs (stride 2, 'SAME', so each exactly doubles the size)
    with c1..cU channels, each followed by batch norm and ReLU, reach
    `[B, H, W, cU]`; a final stride-1 conv gives `[B, H, W, out_channels]`.
    So `len(channels) - 1` is the number of upsamplings, and H and W must be
    divisible by 2^U: (64, 32, 16) on 28x28 is 7 -> 14 -> 28; (256, 128, 64)
    on 64x64 is 16 -> 32 -> 64.
    """

    channels: Sequence[int]
    kernel: int
    image_shape: Sequence[int]
    out_channels: int
    batch_norm: bool = True
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z: jax.Array, train: bool) -> jax.Array:
        if not self.channels:
            raise ValueError('decoder_channels must not be empty')
        height, width = decoder_start_shape(self.image_shape, len(self.channels) - 1)
        x = nn.Dense(height * width * self.channels[0], use_bias=not self.batch_norm)(z)
        x = x.reshape(z.shape[0], height, width, self.channels[0])
        if self.batch_norm:
            x = _batch_norm(train, self.axis_name)(x)
        x = nn.relu(x)
        for channels in self.channels[1:]:
            x = ConvTranspose(channels, (self.kernel, self.kernel), strides=(2, 2),
                              use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = _batch_norm(train, self.axis_name)(x)
            x = nn.relu(x)
        return nn.Conv(self.out_channels, (self.kernel, self.kernel), padding='SAME')(x)


class ConvVAE(nn.Module):
    """Convolutional VAE on images; the loss is the negative ELBO averaged over the batch.

    Input `[B, H, W, C]` uint8 (0..255) or float in [0, 1]; `image_shape` is
    `(H, W, C)`. The ELBO sums the reconstruction term over all H*W*C values
    (pixel scale [0, 1]) and adds KL(q(z|x) || N(0, I)).

    Likelihoods:
      'bernoulli': the decoder gives C logits per pixel; cross-entropy with
        the grey levels in [0, 1] as soft targets.
      'gaussian': the decoder gives C means (through a sigmoid, so they lie in
        [0, 1] like the data) and C log-variances clipped to
        [LOG_VAR_MIN, LOG_VAR_MAX] (so that a component with few points
        cannot drive its likelihood to infinity).

    `sample(n)` -> `[n, H, W, C]` float32 in [0, 1]: the decoder's mean image
    (Bernoulli probabilities or Gaussian means) of z ~ N(0, I), or with
    `sample_noise=True` a draw from p(x|z) (Bernoulli {0, 1}; Gaussian noise
    clipped to [0, 1]). Batch norm uses its running averages when sampling.
    Batch statistics live in the 'batch_stats' collection when `batch_norm`.
    """

    encoder_channels: Sequence[int] = (8, 16, 32, 64)
    decoder_channels: Sequence[int] = (64, 32, 16)
    kernel: int = 4
    latent: int = 8
    image_shape: Sequence[int] = (28, 28, 1)
    likelihood: str = 'bernoulli'
    batch_norm: bool = True
    sample_noise: bool = False
    # Mesh axis of the data-parallel training step, for batch-norm statistics.
    axis_name: str | None = None

    def setup(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f'likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}')
        channels = self.image_shape[-1]
        self.encoder = ConvEncoder(tuple(self.encoder_channels), self.kernel, self.latent,
                                   self.batch_norm, self.axis_name)
        out_channels = channels if self.likelihood == 'bernoulli' else 2 * channels
        self.decoder = ConvDecoder(tuple(self.decoder_channels), self.kernel,
                                   tuple(self.image_shape), out_channels, self.batch_norm,
                                   self.axis_name)

    def _decode(self, z: jax.Array, train: bool) -> tuple[jax.Array, jax.Array | None]:
        """Decoder outputs for `z` `[B, latent]`.

        Returns (logits, None) for Bernoulli, (mean, log_var) for Gaussian,
        each `[B, H, W, C]`.
        """
        out = self.decoder(z, train)
        if self.likelihood == 'bernoulli':
            return out, None
        mean, log_var = jnp.split(out, 2, axis=-1)
        return nn.sigmoid(mean), jnp.clip(log_var, LOG_VAR_MIN, LOG_VAR_MAX)

    def _nll(self, x: jax.Array, first: jax.Array, log_var: jax.Array | None) -> jax.Array:
        """-log p(x|z) summed over pixels: `[B, H, W, C]` -> `[B]`."""
        batch = x.shape[0]
        if self.likelihood == 'bernoulli':
            # log sigmoid(l) and log sigmoid(-l) are stable for large |l|.
            ll = x * jax.nn.log_sigmoid(first) + (1.0 - x) * jax.nn.log_sigmoid(-first)
            return -jnp.sum(ll.reshape(batch, -1), axis=-1)
        return gaussian_nll(x.reshape(batch, -1), first.reshape(batch, -1),
                            log_var.reshape(batch, -1))

    def loss_noise_shape(self) -> tuple[int, ...]:
        """Per-example shape of the standard normal noise of the loss: `(latent,)`."""
        return (self.latent,)

    def __call__(self, x: jax.Array, noise: jax.Array, train: bool = True) -> jax.Array:
        """Negative ELBO averaged over the batch: a scalar.

        Args:
          x: images `[B, H, W, C]`, uint8 or float in [0, 1].
          noise: standard normal `[B, latent]`, the reparameterisation noise
            (drawn by the caller, see models/base.py).
          train: batch norm uses (and updates) batch statistics when True.
        """
        return -jnp.mean(self.elbo(x, noise, train))

    def elbo(self, x: jax.Array, noise: jax.Array, train: bool = False) -> jax.Array:
        """One-sample ELBO of each image, `[B, H, W, C]` -> `[B]`, pixels scaled to [0, 1].

        With `train=False` batch norm reads its running averages, so an
        image's ELBO does not depend on the rest of its batch.
        """
        x = to_unit_interval(x)
        z_mean, z_log_var = self.encoder(x, train)
        z = z_mean + jnp.exp(0.5 * z_log_var) * noise
        first, log_var = self._decode(z, train)
        return -(self._nll(x, first, log_var) + gaussian_kl(z_mean, z_log_var))

    def latent_mean(self, x: jax.Array) -> jax.Array:
        """The mean of q(z|x), `[B, H, W, C]` -> `[B, latent]` (batch norm's running averages)."""
        return self.encoder(to_unit_interval(x), False)[0]

    def decode_mean(self, z: jax.Array) -> jax.Array:
        """The decoder's mean image of codes `z` `[n, latent]`: `[n, H, W, C]` float32 in
        [0, 1] (Bernoulli probabilities or Gaussian means; batch norm's running averages)."""
        first, _ = self._decode(z, train=False)
        return nn.sigmoid(first) if self.likelihood == 'bernoulli' else first

    def sample(self, n: int) -> jax.Array:
        """`n` images `[n, H, W, C]` float32 in [0, 1]."""
        z_key, x_key = jax.random.split(self.make_rng('noise'))
        z = jax.random.normal(z_key, (n, self.latent))
        if not self.sample_noise:
            return self.decode_mean(z)
        first, log_var = self._decode(z, train=False)
        if self.likelihood == 'bernoulli':
            return jax.random.bernoulli(x_key, nn.sigmoid(first)).astype(jnp.float32)
        noisy = first + jnp.exp(0.5 * log_var) * jax.random.normal(x_key, first.shape)
        return jnp.clip(noisy, 0.0, 1.0)


def binarize_images(key: jax.Array | None, x: jax.Array) -> jax.Array:
    """Images (uint8 or [0, 1]) as float32 {0, 1}: each pixel 1 with probability its grey
    level (dynamic binarisation), or, without a key, where its grey level exceeds 0.5."""
    x = to_unit_interval(x)
    if key is None:
        return (x > 0.5).astype(jnp.float32)
    return jax.random.bernoulli(key, x).astype(jnp.float32)
