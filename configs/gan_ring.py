"""Competitive GANs on 2-D toy sets: a ring of 8 or a grid of 25 Gaussians.

Usage: --config=configs/gan_ring.py[:ARGS], ARGS a comma-separated list of
  data=ring|grid  ring of 8 modes (std 0.02, radius 2; default) or 5x5 grid
                  (std 0.05, spacing 2); configs/gan_grid.py is data=grid;
  k=INT           number of components (default 8 on the ring, 10 on the grid);
  strategy=NAME   competitive (default) or single (k=1): one GAN of the same
                  size trained for the same number of generator updates;
  loss=ns|wgan_gp the GAN loss (wgan_gp: 5 critic steps per generator step);
  tiny            a seconds-long run for tests.
Every component has the same networks: generator MLP 8 -> 128 -> 128 -> 2,
critic MLP 2 -> 128 -> 128 -> 1 with spectral normalisation. A component trains
epochs * (its points) / batch generator steps, so the mixture and the single
GAN take the same number of generator updates in total.
"""

from competitive_mixtures import config as config_lib


def get_config(arg=None):
    args = config_lib.parse_arg(arg, {"data", "k", "strategy", "loss", "tiny"},
                                "configs/gan_ring.py")
    c = config_lib.base_config()
    c.data.name = args.get("data", "ring")
    if c.data.name not in ("ring", "grid"):
        raise ValueError(f"configs/gan_ring.py: data must be ring or grid, got {c.data.name!r}")
    c.strategy = args.get("strategy", "competitive")
    default_k = 8 if c.data.name == "ring" else 10
    c.num_components = 1 if c.strategy == "single" else int(args.get("k", default_k))

    c.model.family = "gan"
    c.model.hidden = (128, 128)
    c.model.latent = 8
    c.model.learning_rate = 1e-3
    c.model.b1 = 0.5
    c.gan.critic_hidden = (128, 128)
    c.gan.critic_learning_rate = 1e-3
    c.gan.loss = args.get("loss", "ns")
    if c.gan.loss == "wgan_gp":
        c.gan.critic_steps = 5
        c.model.b1, c.model.b2 = 0.5, 0.9
        c.gan.critic_b1, c.gan.critic_b2 = 0.5, 0.9

    c.data.num_points = 16000
    c.data.num_heldout = 5000
    c.batch_size = 64
    c.pretrain_epochs = 20
    c.num_rounds = 10
    c.epochs_per_round = 8
    # Assignment discriminators: see the whole data, kept across rounds.
    c.disc.hidden = (128, 128)
    c.disc.epochs = 2
    c.disc.batch_size = 64
    c.disc.reinit_each_round = False
    c.balance.min_points = 200

    if args.get("tiny"):
        c.data.num_points = 2000
        c.data.num_heldout = 1000
        c.pretrain_epochs = 2
        c.num_rounds = 2
        c.epochs_per_round = 2
        c.disc.epochs = 1
        c.batch_size = 32
        c.disc.batch_size = 32
        c.balance.min_points = 50
        c.steps_per_chunk = 64
        c.eval.num_samples = 1000
    return c
