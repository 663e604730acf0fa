"""Competitive DCGANs with spectral normalisation vs one GAN: the capacity ablation
of Locatello et al. (2018), Sec. 5.3, Table 4 (3 GANs vs 1 at 64/128/256/512 filters).

Usage: --config=configs/celeba_gan.py[:ARGS], ARGS a comma-separated list of
  filters=64|128|256|512  the widest conv layer of generator and critic (default 64);
  strategy=NAME           competitive (default, K=3) or single (one GAN, same size);
  k=INT                   number of components;
  loss=ns|wgan_gp         GAN loss (default non-saturating);
  digits                  the CPU variant: the 5,000 offline MNIST digits (28x28)
                          with the discriminators of configs/mnist.py:offline;
  small                   a seconds-long smoke run (with or without digits).
CelebA comes from tensorflow-datasets as in configs/celeba.py, whose
assignment discriminators and schedule this reuses.
Example: --config=configs/celeba_gan.py:filters=128,strategy=single
"""

import os

from competitive_mixtures import config as config_lib


def get_config(arg=None):
    args = config_lib.parse_arg(arg, {"filters", "strategy", "k", "loss", "digits", "small"},
                                "configs/celeba_gan.py")
    here = os.path.dirname(os.path.abspath(__file__))
    if args.get("digits"):
        c = config_lib.load_config_file("mnist", "offline", here)
        # A GAN's samples are not Bernoulli decoder means: its discriminators see grey digits.
        c.disc.binarize = False
    else:
        c = config_lib.load_config_file("celeba", None, here)
    c.model.family = "gan"
    c.model.kernel = 4
    c.model.latent = 32 if args.get("digits") else 128
    c.model.batch_norm = True
    # DCGAN / SNGAN optimiser: Adam(2e-4, beta1=0.5) for generator and critic.
    c.model.learning_rate = 2e-4
    c.model.b1, c.model.b2 = 0.5, 0.999
    c.gan.critic_learning_rate = 2e-4
    c.gan.critic_b1, c.gan.critic_b2 = 0.5, 0.999
    c.gan.spectral_norm = True
    c.gan.filters = int(args.get("filters", 64))
    c.gan.loss = args.get("loss", "ns")
    if c.gan.loss == "wgan_gp":
        c.gan.critic_steps = 5
        c.model.b2 = c.gan.critic_b2 = 0.9
    c.strategy = args.get("strategy", "competitive")
    c.num_components = 1 if c.strategy == "single" else int(args.get("k", 3))
    if args.get("digits"):
        # About 5 minutes per run on a 2-core CPU.
        c.pretrain_epochs = 4
        c.epochs_per_round = 4
        c.num_rounds = 2
        c.eval.num_samples = 2000
    if args.get("small"):
        config_lib.shrink(c, num_points=300, num_heldout=100, rounds=1, pretrain_epochs=1,
                          epochs_per_round=1, batch_size=16, min_points=20, steps_per_chunk=8,
                          eval_samples=100, disc_epochs=None, assign_batch=100)
        c.num_components = min(c.num_components, 2)
        c.gan.filters = min(c.gan.filters, 8)
        c.model.latent = 8
        c.disc.channels = (4, 8, 8)
    return c
