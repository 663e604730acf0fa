"""The config contract: every field a run may set, and the checks made before training.

Experiment files in `configs/` start from `base_config()` and override fields;
`validate` rejects a config with a field `base_config` does not know, or with a
value outside its allowed range, before any work is done.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
import dataclasses
import importlib.util
import math
import os
from typing import Any

import ml_collections

from competitive_mixtures import boosting
from competitive_mixtures import errors
from competitive_mixtures import ratio
from competitive_mixtures import strategies
from competitive_mixtures.models.vae import LOG_VAR_MAX, LOG_VAR_MIN
from competitive_mixtures.stacking import STACK_MODES

# Allowed names come from the registries that build them.
STRATEGIES = tuple(strategies.STRATEGIES)
STEP_BUDGETS = ("epochs", "equal")
INIT_SPLITS = ("uniform", "kmeans", "latent")
SEQUENTIAL_FAMILIES = ("vae", "conv_vae")
RATIO_KINDS = tuple(ratio.KINDS)
TRAINED_RATIO_KINDS = ratio.TRAINED_KINDS
MODEL_FAMILIES = ("vae", "kmeans", "conv_vae", "gan", "avb", "gram")
# Families with networks for both vector and image data.
ANY_DATA_FAMILIES = ("gan", "avb", "gram")
GAN_LOSSES = ("ns", "wgan_gp", "wgan_clip")
GAN_OPTIMIZERS = ("adam", "rmsprop")
DATASETS = ("gaussians", "ring", "grid", "mnist_offline", "mnist_files", "mnist", "celeb_a")
IMAGE_DATASETS = ("mnist_offline", "mnist_files", "mnist", "celeb_a")
LIKELIHOODS = ("bernoulli", "gaussian")
OPTIMIZERS = ("adam", "sgd")
DISC_FEATURES = ("pixels", "latent")
GAUSSIAN_MODES = (3, 5, 9)
# Choosing K needs a log-likelihood bound (the held-out criterion) and an
# estimator with one network (or none) per component, which a split copies.
AUTO_K_FAMILIES = ("vae", "conv_vae", "kmeans")
AUTO_K_RATIOS = ("discriminator", "kernel", "elbo", "exact")
AUTO_K_GAIN_OVER = ("all", "moved")
AUTO_K_REMOVAL_JUDGED_ON = ("removed", "receivers")


# The experiment configs of a source checkout: configs/ beside the package.
CONFIG_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "configs"))


def load_config_file(name: str, arg: str | None = None,
                     config_dir: str = CONFIG_DIR) -> ml_collections.ConfigDict:
    """`configs/NAME.py:ARG` loaded as `--config=configs/NAME.py:ARG` loads it."""
    path = os.path.join(config_dir, f"{name}.py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; pass --config_dir=<checkout>/configs")
    spec = importlib.util.spec_from_file_location(f"configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


class ConfigError(errors.UserError, ValueError):
    """A config field holds a value the run cannot use."""


def base_config() -> ml_collections.ConfigDict:
    """Every field a run may set, with quick 2-D defaults."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_components = 3
    c.strategy = "competitive"
    # Rounds after pre-training; each is M-step -> discriminator fit -> assignment.
    c.num_rounds = 5
    c.pretrain_epochs = 5
    # The first split of the points, on which the components pre-train
    # (competitive strategy; see seeding.py): 'uniform' (the paper's random
    # split), 'kmeans' (k-means++ clusters of the points, one per component) or
    # 'latent' (the VAE families: one network of the components' architecture
    # trains init_epochs epochs on all the points; k-means++ clusters of its
    # latent means, and every component starts from its weights; see
    # latent_split.py).
    c.init_split = "uniform"
    c.init_epochs = 10
    c.epochs_per_round = 2
    # M-step budget of a round: 'epochs' (the paper: epochs_per_round passes
    # over the component's own points, so the budget grows with its share) or
    # 'equal' (every component the steps of epochs_per_round passes over N/K
    # points, whatever its share).
    c.step_budget = "epochs"
    # Points per component per step (global over devices).
    c.batch_size = 32
    # Steps fused into one compiled scan; the host syncs once per chunk.
    c.steps_per_chunk = 250
    # Compile each chunk as straight-line code (no loop): faster for conv
    # models on CPU, where loop bodies run convolutions slowly; keep chunks small.
    c.unroll_steps = False
    # How stacked steps run the K components (M-step of VAE families,
    # discriminator fit, sampling, scoring): 'vmap' (one batched program),
    # 'sequential' (K copies side by side in one compiled program, one step
    # per call) or 'auto': sequential for images on CPU, where a vmapped
    # convolution is a slow grouped convolution, vmap elsewhere.
    c.stack_mode = "auto"
    # Sequential steps: at most this many components per compiled call (the
    # largest divisor of K up to it; 0 = all K in one call). Compilation time
    # grows with the components of one call (about 7 s each for the MNIST conv
    # VAE step on a 2-core CPU) and a call computes its components' steps even
    # when some are done; K in one call ran 1.0-1.2x faster than one at a time.
    c.stack_group = 1

    c.data = ml_collections.ConfigDict()
    c.data.name = "gaussians"
    c.data.modes = 3
    # Training points: synthetic sets draw this many; image sets keep a
    # subsample of this size (0 = all).
    c.data.num_points = 64000
    c.data.num_heldout = 10000
    c.data.seed = 0
    # Image data: tensorflow-datasets directories ("" = tfds defaults) and size.
    c.data.data_dir = ""
    c.data.manual_dir = ""
    c.data.image_size = 64

    c.model = ml_collections.ConfigDict()
    c.model.family = "vae"
    # MLP models (vae): hidden layer widths.
    c.model.hidden = (50, 50)
    c.model.latent = 5
    # Convolutional VAE (conv_vae): encoder / decoder channels, square kernel,
    # decoder likelihood, batch norm (epsilon 1e-5, momentum 0.9).
    c.model.channels = (8, 16, 32, 64)
    c.model.decoder_channels = (64, 32, 16)
    c.model.kernel = 4
    c.model.likelihood = "bernoulli"
    c.model.batch_norm = True
    # Sample x ~ p(x|z) (True) or the decoder mean (False).
    c.model.sample_noise = True
    # MLP VAE: the decoder's log-variance is clipped to [LOG_VAR_MIN, max_log_var].
    c.model.max_log_var = LOG_VAR_MAX
    c.model.learning_rate = 0.005
    c.model.b1 = 0.5
    c.model.b2 = 0.999

    c.gan = ml_collections.ConfigDict()
    # GAN components (model.family='gan'): the generator uses model.hidden (MLP)
    # or model.kernel/batch_norm (conv), model.latent and model's optimizer
    # settings; each component's own critic is set here.
    # 'ns' (non-saturating), 'wgan_gp' (Wasserstein with gradient penalty) or
    # 'wgan_clip' (Wasserstein with critic weights clipped to [-clip, clip]).
    c.gan.loss = "ns"
    # Critic updates per generator update, each on its own real batch.
    c.gan.critic_steps = 1
    c.gan.gp_weight = 10.0
    c.gan.clip = 0.01
    # Optimizer of generator and critic: 'adam' (model.b1/b2 and critic_b1/b2)
    # or 'rmsprop' (the original WGAN's), each at its learning rate.
    c.gan.optimizer = "adam"
    c.gan.spectral_norm = True
    # MLP critic for vector data.
    c.gan.critic_hidden = (128, 128)
    # Conv nets for images: the widest layer's channels (DCGAN: 512 at 64x64).
    c.gan.filters = 64
    c.gan.critic_learning_rate = 2e-4
    c.gan.critic_b1 = 0.5
    c.gan.critic_b2 = 0.999
    # Samples (for assignment, evaluation and pictures) come from an exponential
    # moving average of the generator's weights with this decay per generator
    # update (0: the live weights). The critic always trains against the live
    # generator. A conv generator's batch statistics stay the live ones.
    c.gan.generator_ema = 0.0

    c.avb = ml_collections.ConfigDict()
    # Adversarial Variational Bayes (model.family='avb'): encoder and decoder
    # are MLPs with model.hidden (on flattened images too); the adversary
    # T(x, z) is an MLP with these layers.
    c.avb.adversary_hidden = (128, 128)
    c.avb.adversary_learning_rate = 1e-3

    c.gram = ml_collections.ConfigDict()
    # GRaM (model.family='gram'): the generator is that of a GAN (model.hidden,
    # or gan.filters without batch norm for images); the projection f maps to
    # projection_dim outputs (MLP layers for vectors, stride-2 convs for images).
    c.gram.projection_dim = 8
    c.gram.projection_hidden = (64, 64)
    c.gram.projection_channels = (16, 32)
    c.gram.projection_learning_rate = 1e-3
    # Ridge of the kernel ratio estimate.
    c.gram.eps = 1e-3

    c.disc = ml_collections.ConfigDict()
    # MLP discriminator for vector data; conv channels and kernel for images.
    c.disc.hidden = (50, 50)
    c.disc.channels = (64, 128, 256)
    c.disc.kernel = 4
    c.disc.optimizer = "adam"
    c.disc.learning_rate = 0.005
    c.disc.b1 = 0.5
    c.disc.b2 = 0.999
    # Passes over the N data points per fit; a fraction fits on fewer draws.
    c.disc.epochs = 2.0
    c.disc.batch_size = 32
    c.disc.reinit_each_round = True
    # Images: binarise the real images the discriminators see (afresh at every
    # training draw, at grey level 0.5 when scoring) and show them Bernoulli
    # draws x ~ p(x|z) as samples, to compare like with like whatever
    # model.sample_noise says (which then only sets what `sample` returns).
    c.disc.binarize = False
    # Images: std (pixels) of a fixed Gaussian blur every discriminator input
    # (data, samples, scored points) passes first; 0 = none. The ratio is
    # then that of the blurred images' densities, which fine detail (sharp
    # data against a VAE's smooth decoder means) no longer dominates.
    c.disc.input_blur = 0.0
    # Vector data, binary discriminators: std of fresh Gaussian noise added to
    # every real point and sample the discriminators train on (not to the scored
    # points); 0 = none. The ratio is then that of the densities smoothed at
    # this scale, which a component's spread within a mode no longer dominates.
    # With disc.features='latent' the noise goes on the latent means.
    c.disc.input_noise = 0.0
    # Images, ratio.kind='discriminator': what the discriminators read. 'pixels'
    # (conv discriminators of disc.channels) or 'latent': an MLP of disc.hidden
    # on the latent means of a fixed encoder, the one init_split='latent' trains
    # on all the points (conv VAE components; models/conv.py LatentDiscriminator).
    # The ratio is then that of the densities of the latent means.
    c.disc.features = "pixels"
    # Independently initialised copies of every discriminator (or classifier),
    # fitted alike; a point's log ratio is their mean (ratio/ensemble.py).
    c.disc.ensemble = 1

    c.bagging = ml_collections.ConfigDict()
    # Bags drawn with replacement (N // K points each) instead of a disjoint split.
    c.bagging.bootstrap = False

    c.boosting = ml_collections.ConfigDict()
    # AdaGAN (strategy='boosting'): component t trains on data drawn with the
    # weights of boosting.py, then alpha <- (1 - beta_t) alpha + beta_t e_t.
    # beta schedule: 'constant' (boosting.beta), '1/t' (uniform mixture) or
    # 'one' (beta = 1: each new component replaces the mixture; the theory's limit).
    c.boosting.beta_schedule = "constant"
    c.boosting.beta = 0.5
    # Data weights: 'star' (AdaGAN's lambda*) or 'dagger' (its lambda-dagger variant).
    c.boosting.weights = "star"

    c.ratio = ml_collections.ConfigDict()
    # Density-ratio estimator of the assignment pass (and of boosting's weights):
    # 'discriminator' (K binary, config.disc), 'kernel' (kernel mean matching),
    # 'multiclass' (one (K+1)-way classifier shaped and trained like config.disc),
    # 'posterior' (one K-way classifier of the components' samples, no data class)
    # 'elbo' (VAE families: each component's ELBO, see ratio/elbo.py) or 'exact'
    # (model.family='kmeans': its exact log-likelihood, see ratio/exact.py).
    c.ratio.kind = "discriminator"
    c.ratio.kernel = ml_collections.ConfigDict()
    # Samples drawn from each component per assignment pass.
    c.ratio.kernel.samples = 2048
    # Ridge: r = (N/n) (K_dd + N * eps * I)^-1 K_dm 1.
    c.ratio.kernel.eps = 1e-3
    # Gaussian kernel width as a multiple of the median distance between data points.
    c.ratio.kernel.width = 1.0
    # Exact solve up to this many data points; Nystrom approximation beyond.
    c.ratio.kernel.exact_max = 4096
    c.ratio.kernel.landmarks = 1024

    c.balance = ml_collections.ConfigDict()
    # A component that wins fewer points trains on its `min_points` best-scoring points.
    c.balance.min_points = 200

    c.assign = ml_collections.ConfigDict()
    # Points scored per call in the assignment pass.
    c.assign.batch_size = 16384
    # Score with the K discriminators one after another (lax.map) instead of
    # vmapped: far less memory for conv discriminators on CPU.
    c.assign.sequential_components = False

    c.auto_k = ml_collections.ConfigDict()
    # Choosing K during the competition (auto_k.py): `num_components` is then
    # the most components the run may hold (the stacked K axis never changes
    # size), of which `initial_components` start (0 = all). After each round a
    # move is tried: removing a component or splitting one in two; the move is
    # kept only if the held-out criterion (the mixture's log-likelihood bound
    # on `validation_points` held-out points, nats per point) is better by
    # more than `min_gain` (a split) or worse by at most `min_gain` (a
    # removal) after `trial_rounds` rounds; otherwise it is undone.
    c.auto_k.enabled = False
    c.auto_k.initial_components = 0
    c.auto_k.min_gain = 0.05
    # The most C may drop for a removal to be kept (nats per point); below
    # `min_gain` makes removing harder than splitting (hysteresis).
    c.auto_k.removal_price = 0.05
    # What the two prices are per: 'all' held-out points (a move's change of
    # C), or the held-out points the 'moved' component explained best (the
    # same change divided by their fraction), which prices a move on a small
    # component as one on a large component.
    c.auto_k.gain_over = "all"
    # The held-out points a removal is judged on: those the 'removed' component
    # explained best, or those and the points of the components that took its
    # points ('receivers'), whose training on them is part of the move. The
    # latter counts any rise of the receivers' bound over the trial round as
    # the removal's gain, so it needs components whose bound has settled
    # (configs/synthetic.py uses it; the offline digits' VAEs have not settled).
    c.auto_k.removal_judged_on = "removed"
    c.auto_k.trial_rounds = 1
    # The first round at whose end a move may start (round 0 is pre-training).
    c.auto_k.first_round = 1
    # A component whose share of the points stays below `prune_share` for
    # `prune_rounds` consecutive rounds is removed at once (no trial).
    c.auto_k.prune_share = 0.01
    c.auto_k.prune_rounds = 2
    # Held-out points kept aside for the criterion (at most half the held-out
    # set); the evaluation uses the rest.
    c.auto_k.validation_points = 2000
    # Latent draws averaged per point in the VAE families' ELBO.
    c.auto_k.elbo_samples = 4
    # Std of the Gaussian noise added to the copied parameters of a split.
    c.auto_k.split_noise = 0.01

    c.eval = ml_collections.ConfigDict()
    # Model samples for the end-of-run KDE log-likelihood and the figures.
    c.eval.num_samples = 10000

    c.checkpoint = ml_collections.ConfigDict()
    # Newest round checkpoints kept (>= 1).
    c.checkpoint.max_to_keep = 3
    # Seconds between checkpoints inside a round's M-step (the generators and
    # the steps taken, in WORKDIR/m_step_checkpoints), so a stopped run loses at
    # most this much of a long round such as pre-training; 0: none.
    c.checkpoint.m_step_every_s = 600.0

    c.divergence = ml_collections.ConfigDict()
    # A component with a non-finite loss or parameters is re-initialised. The
    # run stops (exit code 3, the last good checkpoint kept) when all
    # components diverge in one round, or one component in this many
    # consecutive rounds.
    c.divergence.max_consecutive_resets = 3

    c.log = ml_collections.ConfigDict()
    # TensorBoard summaries in WORKDIR/tensorboard every round: every number of
    # metrics.jsonl and a picture of every component's samples (needs the
    # 'tensorboard' extra; see tensorboard_log.py).
    c.log.tensorboard = False
    # A jax.profiler trace of one round (round 1, or round 0 when it is the
    # only one) in WORKDIR/profile, for TensorBoard's profile plugin or Perfetto.
    c.profile = False
    return c


@dataclasses.dataclass(frozen=True)
class Range:
    """The numbers a field allows: `low` <= value <= `high` (< with `open_low`,
    `open_high`).

    `integer`: ints only; `each`: the field is a tuple and the rule holds for
    every element.
    """

    low: float
    high: float = math.inf
    integer: bool = False
    open_low: bool = False
    open_high: bool = False
    each: bool = False

    def allows(self, value: Any) -> bool:
        if self.each:
            return (isinstance(value, tuple) and len(value) > 0
                    and all(dataclasses.replace(self, each=False).allows(v) for v in value))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.high == math.inf:
            bound = f"{'>' if self.open_low else '>='} {self.low:g}"
        else:
            bound = (f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                     f"{')' if self.open_high else ']'}")
        text = f"{kind} {bound}"
        return f"a non-empty tuple, each {text}" if self.each else text


_COUNT = Range(0, integer=True)          # 0, 1, 2, ...
_POSITIVE_INT = Range(1, integer=True)   # 1, 2, ...
_WIDTHS = Range(1, integer=True, each=True)
# Adam/RMSprop/SGD step sizes: finite, > 0 and at most 1.
_RATE = Range(0, 1, open_low=True)
_BETA = Range(0, 1, open_high=True)      # Adam's b1, b2 in [0, 1)
_POSITIVE = Range(0, open_low=True)

# Every numeric field of base_config() and what it allows (checked by
# `validate` before any work; tests/test_config.py checks none is missing).
RANGES: dict[str, Range] = {
    "seed": _COUNT, "num_components": _POSITIVE_INT, "num_rounds": _COUNT,
    "pretrain_epochs": _COUNT, "epochs_per_round": _COUNT, "batch_size": _POSITIVE_INT,
    "steps_per_chunk": _POSITIVE_INT, "stack_group": _COUNT, "init_epochs": _POSITIVE_INT,
    "data.modes": _POSITIVE_INT, "data.num_points": _COUNT, "data.num_heldout": _POSITIVE_INT,
    "data.seed": _COUNT, "data.image_size": Range(8, integer=True),
    "model.hidden": _WIDTHS, "model.latent": _POSITIVE_INT, "model.channels": _WIDTHS,
    "model.decoder_channels": _WIDTHS, "model.kernel": _POSITIVE_INT,
    "model.max_log_var": Range(LOG_VAR_MIN, LOG_VAR_MAX, open_low=True),
    "model.learning_rate": _RATE, "model.b1": _BETA, "model.b2": _BETA,
    "gan.critic_steps": _POSITIVE_INT, "gan.gp_weight": Range(0), "gan.clip": _POSITIVE,
    "gan.critic_hidden": _WIDTHS, "gan.filters": _POSITIVE_INT,
    "gan.critic_learning_rate": _RATE, "gan.critic_b1": _BETA, "gan.critic_b2": _BETA,
    "gan.generator_ema": _BETA,
    "avb.adversary_hidden": _WIDTHS, "avb.adversary_learning_rate": _RATE,
    "gram.projection_dim": _POSITIVE_INT, "gram.projection_hidden": _WIDTHS,
    "gram.projection_channels": _WIDTHS, "gram.projection_learning_rate": _RATE,
    "gram.eps": _POSITIVE,
    "disc.hidden": _WIDTHS, "disc.channels": _WIDTHS, "disc.kernel": _POSITIVE_INT,
    "disc.learning_rate": _RATE, "disc.b1": _BETA, "disc.b2": _BETA, "disc.epochs": Range(0),
    "disc.batch_size": _POSITIVE_INT, "disc.input_blur": Range(0, 10),
    "disc.ensemble": _POSITIVE_INT, "disc.input_noise": Range(0),
    "boosting.beta": Range(0, 1, open_low=True),
    "ratio.kernel.samples": _POSITIVE_INT, "ratio.kernel.eps": _POSITIVE,
    "ratio.kernel.width": _POSITIVE, "ratio.kernel.exact_max": _POSITIVE_INT,
    "ratio.kernel.landmarks": _POSITIVE_INT,
    "balance.min_points": _COUNT, "assign.batch_size": _POSITIVE_INT,
    "auto_k.initial_components": _COUNT, "auto_k.min_gain": Range(0),
    "auto_k.removal_price": Range(0),
    "auto_k.trial_rounds": _POSITIVE_INT, "auto_k.first_round": _POSITIVE_INT,
    "auto_k.prune_share": Range(0, 1, open_high=True), "auto_k.prune_rounds": _POSITIVE_INT,
    "auto_k.validation_points": Range(2, integer=True),
    "auto_k.elbo_samples": _POSITIVE_INT, "auto_k.split_noise": Range(0),
    # The KDE bandwidth is chosen on held-out samples: at least two.
    "eval.num_samples": Range(2, integer=True),
    "checkpoint.max_to_keep": _POSITIVE_INT, "checkpoint.m_step_every_s": Range(0),
    "divergence.max_consecutive_resets": _POSITIVE_INT,
}


def shrink(c: ml_collections.ConfigDict, *, num_points: int, num_heldout: int, rounds: int,
           pretrain_epochs: int, epochs_per_round: int, batch_size: int, min_points: int,
           steps_per_chunk: int, eval_samples: int, disc_epochs: int | None = 1,
           assign_batch: int | None = None) -> ml_collections.ConfigDict:
    """A config cut down to a smoke run (the `tiny` / `small` config arguments).

    Sets the data sizes, the schedule, one batch size for the components and
    the discriminators, the balancing threshold, the chunk and the number of
    evaluation samples; `disc_epochs` / `assign_batch` None keep the config's.
    """
    c.data.num_points, c.data.num_heldout = num_points, num_heldout
    c.num_rounds, c.pretrain_epochs, c.epochs_per_round = rounds, pretrain_epochs, epochs_per_round
    c.batch_size = c.disc.batch_size = batch_size
    c.balance.min_points = min_points
    c.steps_per_chunk = steps_per_chunk
    c.eval.num_samples = eval_samples
    if disc_epochs is not None:
        c.disc.epochs = disc_epochs
    if assign_batch is not None:
        c.assign.batch_size = assign_batch
    return c


def from_dict(values: dict) -> ml_collections.ConfigDict:
    """A config read back from a run's `config.json`.

    Fields the run's version did not have yet keep their `base_config()`
    defaults, so runs made before a field was added can still be restored.
    """
    config = base_config()

    def merge(target: ml_collections.ConfigDict, source: dict) -> None:
        for key, value in source.items():
            default = target.get(key)
            if isinstance(default, ml_collections.ConfigDict) and isinstance(value, dict):
                merge(default, value)
            elif isinstance(default, tuple) and isinstance(value, list):
                target[key] = tuple(value)
            else:
                target[key] = value

    merge(config, values)
    return config


def parse_arg(arg: str | None, allowed: set[str], where: str) -> dict[str, Any]:
    """A config file's argument, big_vision style: 'modes=5,paper' -> {'modes': '5', 'paper': True}.

    Raises ValueError naming `where` and the allowed keys for an unknown key.
    """
    out: dict[str, Any] = {}
    for part in filter(None, (arg or "").split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip() if value else True
    unknown = set(out) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown argument(s) {sorted(unknown)}; "
                         f"allowed: {sorted(allowed)}")
    return out


def apply_overrides(config: ml_collections.ConfigDict,
                    items: Sequence[str]) -> ml_collections.ConfigDict:
    """Sets `FIELD=VALUE` strings on `config` in place, as `--config.FIELD=VALUE` would.

    A value is read as a Python literal ('24', '0.05', '(8, 16)', 'True') or,
    failing that, as a string; 'true' / 'false' are booleans. The field must
    exist and keep its type (an int field takes no '0.5'). Raises ConfigError
    naming the item otherwise.
    """
    for item in items:
        field, sep, text = item.partition("=")
        field, text = field.strip(), text.strip()
        parent_path, _, leaf = field.rpartition(".")
        try:
            parent = _get(config, parent_path) if parent_path else config
            known = (isinstance(parent, ml_collections.ConfigDict) and leaf in parent
                     and not isinstance(parent[leaf], ml_collections.ConfigDict))
        except (KeyError, TypeError):  # A missing field, or a path through a value.
            known = False
        if not sep or not known:
            raise ConfigError(f"override {item!r}: expected FIELD=VALUE with FIELD a field of "
                              "the config (not a group of fields), e.g. 'epochs_per_round=24' "
                              "or 'disc.input_noise=0.05'.")
        if text.lower() in ("true", "false"):
            value: Any = text.lower() == "true"
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
        if isinstance(value, list):
            value = tuple(value)
        try:
            parent[leaf] = value
        except TypeError as error:
            raise ConfigError(f"override {item!r}: {field} is {type(parent[leaf]).__name__}, "
                              f"not {type(value).__name__} ({error}).") from None
    return config


def _unknown_fields(config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict,
                    prefix: str = "") -> list[str]:
    unknown = []
    for key, value in config.items():
        name = prefix + key
        if key not in reference:
            unknown.append(name)
        elif isinstance(value, ml_collections.ConfigDict):
            unknown += _unknown_fields(value, reference[key], name + ".")
    return unknown


def _get(config: ml_collections.ConfigDict, dotted: str) -> Any:
    for part in dotted.split("."):
        config = config[part]
    return config


def _require(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"config.{field}={value!r} is not allowed: {allowed}.")


def validate(config: ml_collections.ConfigDict, num_points: int | None = None) -> None:
    """Raises ConfigError naming the first bad field and what it allows.

    Args:
      config: the resolved run config.
      num_points: training points N, when known; enables the checks that
        depend on the data size.
    """
    unknown = _unknown_fields(config, base_config())
    if unknown:
        raise ConfigError(
            f"unknown config field(s): {', '.join('config.' + u for u in unknown)}; "
            "the known fields are those of competitive_mixtures.config.base_config().")
    for field, allowed in RANGES.items():
        value = _get(config, field)
        _require(allowed.allows(value), field, value, allowed.describe())
    k = config.num_components
    _require(config.strategy in STRATEGIES, "strategy", config.strategy,
             f"one of {STRATEGIES}")
    if config.bagging.bootstrap:
        _require(config.strategy == "bagging", "bagging.bootstrap", True,
                 "True only with strategy='bagging'")
    if config.strategy == "single":
        _require(k == 1, "num_components", k, "1 with strategy='single'")
    if config.strategy == "boosting":
        _require(config.num_rounds + 1 >= k, "num_rounds", config.num_rounds,
                 f"at least num_components - 1 = {k - 1} with strategy='boosting' (rounds "
                 "0..num_rounds are dealt to the components one after another)")
        _require(config.model.family != "kmeans", "model.family", config.model.family,
                 "not 'kmeans' with strategy='boosting' (its exact M-step ignores data weights)")
    _require(config.boosting.beta_schedule in boosting.BETA_SCHEDULES, "boosting.beta_schedule",
             config.boosting.beta_schedule, f"one of {boosting.BETA_SCHEDULES}")
    _require(config.boosting.weights in boosting.WEIGHTINGS, "boosting.weights",
             config.boosting.weights, f"one of {boosting.WEIGHTINGS}")
    _require(config.ratio.kind in RATIO_KINDS, "ratio.kind", config.ratio.kind,
             f"one of {RATIO_KINDS}")
    if config.ratio.kind in ("elbo", "posterior", "exact"):
        _require(config.strategy != "boosting", "ratio.kind", config.ratio.kind,
                 "not 'elbo', 'posterior' or 'exact' with strategy='boosting' (its data "
                 "weights need a ratio to the data)")
    if config.ratio.kind == "elbo":
        _require(config.model.family in ("vae", "conv_vae"), "ratio.kind", "elbo",
                 "'elbo' only with model.family 'vae' or 'conv_vae'")
    if (config.model.family == "kmeans") != (config.ratio.kind == "exact"):
        _require(False, "ratio.kind", config.ratio.kind,
                 "'exact' with model.family='kmeans', and only with it (the k-means "
                 "family assigns by its exact likelihood)")
    _require(config.model.family in MODEL_FAMILIES, "model.family", config.model.family,
             f"one of {MODEL_FAMILIES}")
    _require(config.data.name in DATASETS, "data.name", config.data.name,
             f"one of {DATASETS}")
    _require(config.step_budget in STEP_BUDGETS, "step_budget", config.step_budget,
             f"one of {STEP_BUDGETS}")
    _require(config.init_split in INIT_SPLITS, "init_split", config.init_split,
             f"one of {INIT_SPLITS}")
    _require(config.init_split != "latent" or config.model.family in ("vae", "conv_vae"),
             "init_split", config.init_split,
             f"'latent' only with model.family 'vae' or 'conv_vae' (an encoder's latent "
             f"means), not {config.model.family!r}")
    _require(config.stack_mode in STACK_MODES, "stack_mode", config.stack_mode,
             f"one of {STACK_MODES}")
    _require(config.stack_mode != "sequential" or config.model.family in SEQUENTIAL_FAMILIES,
             "stack_mode", config.stack_mode,
             f"'auto' or 'vmap' unless model.family is one of {SEQUENTIAL_FAMILIES}")
    _require(config.model.likelihood in LIKELIHOODS, "model.likelihood",
             config.model.likelihood, f"one of {LIKELIHOODS}")
    _require(config.disc.optimizer in OPTIMIZERS, "disc.optimizer", config.disc.optimizer,
             f"one of {OPTIMIZERS}")
    images = config.data.name in IMAGE_DATASETS
    if config.disc.binarize:
        _require(images and config.model.family == "conv_vae"
                 and config.model.likelihood == "bernoulli", "disc.binarize", True,
                 "True only for images with model.family='conv_vae' and "
                 "model.likelihood='bernoulli' (Bernoulli draws against binarised data)")
    if config.disc.input_noise > 0:
        _require((not images or config.disc.features == "latent")
                 and config.ratio.kind == "discriminator", "disc.input_noise",
                 config.disc.input_noise,
                 "0 unless ratio.kind='discriminator' and the data are vectors or "
                 "disc.features='latent' (images: disc.input_blur)")
    _require(config.disc.features in DISC_FEATURES, "disc.features", config.disc.features,
             f"one of {DISC_FEATURES}")
    if config.disc.features == "latent":
        _require(config.init_split == "latent" and config.model.family == "conv_vae"
                 and config.ratio.kind == "discriminator" and config.disc.input_blur == 0
                 and not config.auto_k.enabled, "disc.features", "latent",
                 "'latent' only with init_split='latent', model.family='conv_vae', "
                 "ratio.kind='discriminator', disc.input_blur=0 and auto_k off (the "
                 "discriminators read the encoder the latent split trains)")
    if config.disc.ensemble > 1:
        _require(config.ratio.kind in TRAINED_RATIO_KINDS and not config.auto_k.enabled,
                 "disc.ensemble", config.disc.ensemble,
                 f"1 unless ratio.kind is one of {TRAINED_RATIO_KINDS} (networks to fit) "
                 "and auto_k is off")
    family = config.model.family
    _require(family in ANY_DATA_FAMILIES or images == (family == "conv_vae"), "model.family",
             family, f"'conv_vae' or one of {ANY_DATA_FAMILIES} for image data (data.name in "
             f"{IMAGE_DATASETS}), and not 'conv_vae' for vector data")
    if family == "gan":
        _require(config.gan.loss in GAN_LOSSES, "gan.loss", config.gan.loss,
                 f"one of {GAN_LOSSES}")
        _require(config.gan.optimizer in GAN_OPTIMIZERS, "gan.optimizer", config.gan.optimizer,
                 f"one of {GAN_OPTIMIZERS}")
        _require(config.gan.filters & (config.gan.filters - 1) == 0,
                 "gan.filters", config.gan.filters, "a power of two")
    _require(config.auto_k.gain_over in AUTO_K_GAIN_OVER, "auto_k.gain_over",
             config.auto_k.gain_over, f"one of {AUTO_K_GAIN_OVER}")
    _require(config.auto_k.removal_judged_on in AUTO_K_REMOVAL_JUDGED_ON,
             "auto_k.removal_judged_on", config.auto_k.removal_judged_on,
             f"one of {AUTO_K_REMOVAL_JUDGED_ON}")
    if config.auto_k.enabled:
        _require(config.strategy == "competitive", "auto_k.enabled", True,
                 "True only with strategy='competitive'")
        _require(family in AUTO_K_FAMILIES, "auto_k.enabled", True,
                 f"True only with model.family in {AUTO_K_FAMILIES} (the held-out criterion "
                 "is a log-likelihood bound)")
        _require(config.ratio.kind in AUTO_K_RATIOS, "ratio.kind", config.ratio.kind,
                 f"one of {AUTO_K_RATIOS} with auto_k (one network or none per component)")
        _require(config.auto_k.initial_components <= k, "auto_k.initial_components",
                 config.auto_k.initial_components,
                 f"at most num_components = {k}, the most components the run may hold")
    if config.data.name == "mnist_files":
        _require(bool(config.data.data_dir), "data.data_dir", config.data.data_dir,
                 "the directory of MNIST's four IDX files for data.name='mnist_files'")
    if config.data.name == "gaussians":
        _require(config.data.modes in GAUSSIAN_MODES, "data.modes", config.data.modes,
                 f"one of {GAUSSIAN_MODES} for data.name='gaussians'")
    if num_points is not None:
        _require(config.batch_size <= num_points, "batch_size", config.batch_size,
                 f"at most the number of training points ({num_points})")
        _require(config.disc.batch_size <= num_points, "disc.batch_size",
                 config.disc.batch_size,
                 f"at most the number of training points ({num_points})")
        limit = num_points // k
        _require(config.balance.min_points <= limit, "balance.min_points",
                 config.balance.min_points,
                 f"at most N/K = {num_points}/{k} = {limit}")


def diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Names of the fields whose values differ between two config dicts."""
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += diff(a, b, prefix + key + ".")
        elif a != b:
            names.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return names
