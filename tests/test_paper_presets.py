"""The `paper` variants hold the settings of the paper's appendices C (synthetic)."""

import pytest

from competitive_mixtures import config as config_lib
from conftest import load_config

# Appendix C: (pre-training epochs, iterations) per number of modes.
APPENDIX_C = {3: (10, 100), 5: (100, 130), 9: (1000, 10)}


@pytest.mark.parametrize("modes", sorted(APPENDIX_C))
def test_synthetic_paper_is_appendix_c(modes):
    c = load_config("synthetic", f"modes={modes},paper")
    config_lib.validate(c, c.data.num_points)
    assert c.data.name == "gaussians" and c.data.modes == modes
    assert c.data.num_points == 64000
    assert c.num_components == modes and c.strategy == "competitive"
    # Encoder and decoder 2 x 50 units, latent 5; the discriminator has the same shape.
    assert c.model.family == "vae" and tuple(c.model.hidden) == (50, 50)
    assert c.model.latent == 5 and tuple(c.disc.hidden) == (50, 50)
    # Adam(0.005, beta1=0.5), batch 32, for VAEs and discriminators.
    for part in (c.model, c.disc):
        assert part.learning_rate == 0.005 and part.b1 == 0.5
    assert c.disc.optimizer == "adam"
    assert c.batch_size == 32 and c.disc.batch_size == 32
    # Uniform pre-training, then each iteration: 10 epochs per VAE on its split,
    # 2 epochs of discriminators re-initialised every iteration.
    assert c.init_split == "uniform"
    assert (c.pretrain_epochs, c.num_rounds) == APPENDIX_C[modes]
    assert c.epochs_per_round == 10
    assert c.disc.epochs == 2 and c.disc.reinit_each_round
    assert c.balance.min_points > 0


def test_synthetic_paper_long_nine_modes():
    c = load_config("synthetic", "modes=9,paper,long")
    assert (c.pretrain_epochs, c.num_rounds) == (1000, 100)
    with pytest.raises(ValueError, match="long"):
        load_config("synthetic", "modes=3,paper,long")


@pytest.mark.parametrize("method", ["strategy=bagging", "vae150"])
def test_synthetic_paper_baselines_train_100_epochs(method):
    """The bag (and VAE-150) train 100 epochs and are never reassigned."""
    c = load_config("synthetic", f"modes=5,paper,{method}")
    assert (c.pretrain_epochs, c.num_rounds) == (100, 0)
    assert c.data.num_points == 64000 and c.batch_size == 32
    assert tuple(c.model.hidden) == ((150, 150) if method == "vae150" else (50, 50))


def test_every_synthetic_method_shares_the_decoder_variance_cap():
    """Baselines and the competition use the same VAE decoder (no collapse to one blob)."""
    caps = {load_config("synthetic", arg).model.max_log_var
            for arg in ("modes=5", "modes=5,vae150", "modes=5,strategy=bagging",
                        "modes=5,strategy=boosting", "modes=5,paper", "modes=5,paper,vae150")}
    assert caps == {0.0}


@pytest.mark.parametrize("arg", ["paper", "paper,offline", "full,paper"])
def test_mnist_paper_is_appendix_d(arg):
    c = load_config("mnist", arg)
    if "full" in arg:
        c.data.data_dir = "/mnist"
    config_lib.validate(c)
    assert c.data.name == {"paper": "mnist", "paper,offline": "mnist_offline",
                           "full,paper": "mnist_files"}[arg]
    assert c.model.family == "conv_vae" and c.num_components == 15 and c.num_rounds == 10
    # Encoder 8-16-32-64, decoder 64-32-16, 4x4 filters, latent 8.
    assert tuple(c.model.channels) == (8, 16, 32, 64)
    assert tuple(c.model.decoder_channels) == (64, 32, 16)
    assert c.model.kernel == 4 and c.model.latent == 8 and c.model.batch_norm
    # Discriminator 64-128-256 (+ linear), not re-initialised; Adam 0.005 for all networks.
    assert tuple(c.disc.channels) == (64, 128, 256) and c.disc.kernel == 4
    assert not c.disc.reinit_each_round
    assert c.disc.optimizer == "adam"
    assert c.model.learning_rate == c.disc.learning_rate == 0.005
    assert c.ratio.kind == "discriminator" and c.init_split == "uniform"
    assert c.disc.input_blur == 0.0 and c.pretrain_epochs == c.epochs_per_round == 10
    assert not c.disc.binarize  # The paper's discriminators see the grey digits.


def test_batch_norm_constants_are_the_papers():
    from competitive_mixtures.models import conv
    assert conv.BN_EPSILON == 1e-5 and conv.BN_MOMENTUM == 0.9


@pytest.mark.parametrize("name,widths", [("vae8", (8, 16, 32, 64)),
                                         ("vae64", (64, 128, 256, 512)),
                                         ("vae96", (96, 192, 384, 768))])
def test_mnist_single_baselines_are_the_papers_networks(name, widths):
    c = load_config("mnist", f"offline,{name}")
    assert c.strategy == "single" and c.num_components == 1
    assert tuple(c.model.channels) == widths


def test_mnist_offline_quick_preset_guards_against_starvation():
    c = load_config("mnist", "offline")
    config_lib.validate(c)
    assert c.num_components == 10 and c.ratio.kind == "discriminator"
    assert c.init_split == "kmeans" and c.step_budget == "equal"
    assert c.balance.min_points == 4500 // (2 * c.num_components)
    # The paper's 110 generator epochs in 4 iterations (30 of pre-training, rounds
    # of 20); discriminators see a 3-pixel blur of binarised digits against the
    # decoders' Bernoulli draws.
    paper = load_config("mnist", "paper,offline")
    assert (c.pretrain_epochs, c.epochs_per_round, c.num_rounds) == (30, 20, 4)
    assert (c.pretrain_epochs + c.num_rounds * c.epochs_per_round
            == paper.pretrain_epochs + paper.num_rounds * paper.epochs_per_round == 110)
    assert c.disc.input_blur == 3.0 and c.disc.binarize
    for arg, kind in (("elbo", "elbo"), ("posterior", "posterior")):
        other = load_config("mnist", f"offline,{arg}")
        config_lib.validate(other)
        assert other.ratio.kind == kind


def test_gan_presets_average_generators_start_from_kmeans_and_match_budgets():
    """The ring and grid presets' stated choices (configs/gan_ring.py): averaged
    generators for both methods, a k-means start, one component per mode, the
    grid's 24-epoch rounds for both; the families keep the settings they were
    measured with."""
    ring, grid = load_config("gan_ring", "data=ring"), load_config("gan_grid")
    singles = [load_config("gan_ring", f"data={d},strategy=single") for d in ("ring", "grid")]
    for c in [ring, grid] + singles:
        config_lib.validate(c)
        assert c.gan.generator_ema == 0.99
    assert ring.init_split == grid.init_split == "kmeans"
    assert (ring.num_components, grid.num_components) == (8, 25)
    assert [c.num_components for c in singles] == [1, 1]
    assert (ring.epochs_per_round, grid.epochs_per_round) == (8, 24)
    assert [c.epochs_per_round for c in singles] == [8, 24]
    for data in ("ring", "grid"):
        family = load_config("families", f"model=wgan_clip,data={data}")
        config_lib.validate(family)
        assert family.gan.generator_ema == 0.0 and family.init_split == "uniform"
        assert family.epochs_per_round == 8


@pytest.mark.parametrize("method", ["", "strategy=bagging", "vae8", "vae64"])
def test_mnist_full_cpu_preset_and_its_baselines_share_one_schedule(method):
    """The full-MNIST CPU preset: K = 15, the offline preset's stated choices, and
    32 generator epochs that its baselines (Table 2: bagging, VAE-8, VAE-64) share."""
    c = load_config("mnist", ",".join(filter(None, ["full", method])))
    c.data.data_dir = "/mnist"
    config_lib.validate(c)
    assert c.data.name == "mnist_files" and c.data.num_points == 0
    assert c.data.num_heldout == c.eval.num_samples == 10000
    assert (c.pretrain_epochs, c.num_rounds, c.epochs_per_round) == (8, 3, 8)
    assert c.step_budget == "equal" and c.batch_size == 64
    if not method:
        assert c.num_components == 15 and c.strategy == "competitive"
        assert c.init_split == "kmeans" and c.balance.min_points == 60000 // 30
        assert tuple(c.disc.channels) == (8, 16, 32) and c.disc.epochs == 0.2
        assert c.disc.input_blur == 3.0 and c.disc.binarize
    elif method == "strategy=bagging":
        assert c.num_components == 15 and c.strategy == "bagging"
    else:
        assert c.num_components == 1 and c.strategy == "single"
