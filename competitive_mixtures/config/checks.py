"""What each field allows (`RANGES`), and the cross-field checks made before any work
(`validate`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import ml_collections

from competitive_mixtures.config.choices import (
    ANY_DATA_FAMILIES, AUTO_K_FAMILIES, AUTO_K_GAIN_OVER, AUTO_K_RATIOS,
    AUTO_K_REMOVAL_JUDGED_ON, BETA_SCHEDULES, BOOSTING_WEIGHTINGS, DATASETS, DISC_FEATURES,
    EITHER_DATASETS, GAN_LOSSES, GAN_OPTIMIZERS, GAUSSIAN_MODES, IMAGE_DATASETS, INIT_SPLITS,
    LIKELIHOODS, LOG_VAR_MAX, LOG_VAR_MIN, MODEL_FAMILIES, OPTIMIZERS, RATIO_KINDS,
    SEQUENTIAL_FAMILIES, STACK_MODES, STEP_BUDGETS, STRATEGIES, TRAINED_RATIO_KINDS)
from competitive_mixtures.config.fields import base_config
from competitive_mixtures.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Range:
    """The numbers a field allows: `low` <= value <= `high` (< with `open_low`,
    `open_high`).

    `integer`: ints only; `each`: the field is a tuple and the rule holds for
    every element (a non-empty one, unless `may_be_empty`).
    """

    low: float
    high: float = math.inf
    integer: bool = False
    open_low: bool = False
    open_high: bool = False
    each: bool = False
    may_be_empty: bool = False

    def allows(self, value: Any) -> bool:
        if self.each:
            return (isinstance(value, tuple) and (len(value) > 0 or self.may_be_empty)
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
        if self.high == math.inf and self.low == -math.inf:
            bound = ""
        elif self.high == math.inf:
            bound = f"{'>' if self.open_low else '>='} {self.low:g}"
        else:
            bound = (f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                     f"{')' if self.open_high else ']'}")
        text = f"{kind} {bound}".rstrip()
        if not self.each:
            return text
        return f"a {'' if self.may_be_empty else 'non-empty '}tuple, each {text}"


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
    "data.seed": _COUNT, "data.image_size": _COUNT, "data.scale": _POSITIVE,
    "data.shift": Range(-math.inf, each=True, may_be_empty=True),
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


def validate(config: ml_collections.ConfigDict, num_points: int | None = None,
             data_shape: tuple[int, ...] | None = None) -> None:
    """Raises ConfigError naming the first bad field and what it allows.

    Args:
      config: the resolved run config.
      num_points: training points N, when known; enables the checks that
        depend on the data size.
      data_shape: the shape of one point, when known: whether an array file
        holds images or vectors (`EITHER_DATASETS`) is only known from it.
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
    _check_strategy(config, k)
    _check_models(config)
    _check_data_kind(config, data_shape)
    _check_auto_k(config, k)
    _check_data(config)
    _check_sizes(config, num_points, k)


def _check_strategy(config: ml_collections.ConfigDict, k: int) -> None:
    """The strategy and its companions (bagging, single, boosting)."""
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
    _require(config.boosting.beta_schedule in BETA_SCHEDULES, "boosting.beta_schedule",
             config.boosting.beta_schedule, f"one of {BETA_SCHEDULES}")
    _require(config.boosting.weights in BOOSTING_WEIGHTINGS, "boosting.weights",
             config.boosting.weights, f"one of {BOOSTING_WEIGHTINGS}")


def _check_models(config: ml_collections.ConfigDict) -> None:
    """The estimator, the model family and how the components are stacked."""
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


def _check_data_kind(config: ml_collections.ConfigDict, data_shape: tuple[int, ...] | None) -> None:
    """What depends on whether the points are images (known from `data_shape`, or from
    the dataset name unless it holds either)."""
    if data_shape is not None:
        images = len(data_shape) == 3
    else:
        images = None if config.data.name in EITHER_DATASETS else (
            config.data.name in IMAGE_DATASETS)
    if config.disc.binarize and images is not None:
        _require(images and config.model.family == "conv_vae"
                 and config.model.likelihood == "bernoulli", "disc.binarize", True,
                 "True only for images with model.family='conv_vae' and "
                 "model.likelihood='bernoulli' (Bernoulli draws against binarised data)")
    if config.disc.input_noise > 0 and images is not None:
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
    _require(images is None or family in ANY_DATA_FAMILIES or images == (family == "conv_vae"),
             "model.family", family, f"'conv_vae' or one of {ANY_DATA_FAMILIES} for image data "
             f"(data.name in {IMAGE_DATASETS}, or an array of images), and not 'conv_vae' for "
             "vector data")
    if family == "gan":
        _require(config.gan.loss in GAN_LOSSES, "gan.loss", config.gan.loss,
                 f"one of {GAN_LOSSES}")
        _require(config.gan.optimizer in GAN_OPTIMIZERS, "gan.optimizer", config.gan.optimizer,
                 f"one of {GAN_OPTIMIZERS}")
        _require(config.gan.filters & (config.gan.filters - 1) == 0,
                 "gan.filters", config.gan.filters, "a power of two")


def _check_auto_k(config: ml_collections.ConfigDict, k: int) -> None:
    """The search over K (auto_k)."""
    _require(config.auto_k.gain_over in AUTO_K_GAIN_OVER, "auto_k.gain_over",
             config.auto_k.gain_over, f"one of {AUTO_K_GAIN_OVER}")
    _require(config.auto_k.removal_judged_on in AUTO_K_REMOVAL_JUDGED_ON,
             "auto_k.removal_judged_on", config.auto_k.removal_judged_on,
             f"one of {AUTO_K_REMOVAL_JUDGED_ON}")
    if config.auto_k.enabled:
        _require(config.strategy == "competitive", "auto_k.enabled", True,
                 "True only with strategy='competitive'")
        _require(config.model.family in AUTO_K_FAMILIES, "auto_k.enabled", True,
                 f"True only with model.family in {AUTO_K_FAMILIES} (the held-out criterion "
                 "is a log-likelihood bound)")
        _require(config.ratio.kind in AUTO_K_RATIOS, "ratio.kind", config.ratio.kind,
                 f"one of {AUTO_K_RATIOS} with auto_k (one network or none per component)")
        _require(config.auto_k.initial_components <= k, "auto_k.initial_components",
                 config.auto_k.initial_components,
                 f"at most num_components = {k}, the most components the run may hold")


def _check_data(config: ml_collections.ConfigDict) -> None:
    """The dataset fields each source needs."""
    if config.data.name == "mnist_files":
        _require(bool(config.data.data_dir), "data.data_dir", config.data.data_dir,
                 "the directory of MNIST's four IDX files for data.name='mnist_files'")
    name = config.data.name
    if name in ("array", "image_folder"):
        _require(bool(config.data.path), "data.path", config.data.path,
                 f"the {'.npy or .npz file' if name == 'array' else 'folder of images'} "
                 f"for data.name={name!r}")
    if name == "tfds":
        _require(bool(config.data.tfds_name), "data.tfds_name", config.data.tfds_name,
                 "the tensorflow-datasets name of an image set (e.g. 'fashion_mnist') for "
                 "data.name='tfds'")
    _require(config.data.image_size >= 8 or (config.data.image_size == 0 and name in (
        "image_folder", "tfds")), "data.image_size", config.data.image_size,
        "at least 8, or 0 (keep the size) for data.name 'image_folder' or 'tfds'")
    if name != "array":
        _require(not len(config.data.shift) and config.data.scale == 1.0, "data.shift",
                 tuple(config.data.shift), "() with data.scale=1 unless data.name='array' "
                 "(vector points of a file)")
    if config.data.name == "gaussians":
        _require(config.data.modes in GAUSSIAN_MODES, "data.modes", config.data.modes,
                 f"one of {GAUSSIAN_MODES} for data.name='gaussians'")


def _check_sizes(config: ml_collections.ConfigDict, num_points: int | None, k: int) -> None:
    """What must fit in the N training points."""
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
