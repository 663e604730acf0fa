"""The other generative models of the source notes as mixture components:
the original WGAN (weight clipping), Adversarial Variational Bayes and GRaM.

Usage: --config=configs/families.py:model=NAME[,ARGS], ARGS a comma-separated list of
  model=wgan_clip|avb|gram  the component family (required);
  data=ring|grid|gaussians5|digits  as configs/gan_ring.py (ring of 8 by
                default), or the 5,000 offline MNIST digits (avb and gram only);
  k=INT         number of components (default: the number of modes; 3 on digits);
  strategy=NAME competitive (default) or single (k=1), same total updates;
  tiny          a seconds-long run for tests.
Networks per component (2-D data): WGAN as configs/gan_ring.py:loss=wgan_clip
(RMSProp 5e-5, clip 0.01, 5 critic steps); AVB encoder 2+8 -> 128 -> 128 -> 8
with noise input, decoder 8 -> 128 -> 128 -> 2x2, adversary T(x, z) 10 -> 128
-> 128 -> 1; GRaM generator 8 -> 128 -> 128 -> 2, projection 2 -> 64 -> 64 -> 8.
On digits AVB and GRaM use MLPs (AVB) and a DCGAN generator of 32 filters
without batch norm and a 16-32 conv projection (GRaM).
"""

import os

from competitive_mixtures import config as config_lib

MODELS = ("wgan_clip", "avb", "gram")
DATA = ("ring", "grid", "gaussians5", "digits")


def get_config(arg=None):
    args = config_lib.parse_arg(arg, {"model", "data", "k", "strategy", "tiny"},
                                "configs/families.py")
    model, data = args.get("model"), args.get("data", "ring")
    if model not in MODELS:
        raise ValueError(f"configs/families.py: model must be one of {MODELS}, got {model!r}")
    if data not in DATA or (data == "digits" and model == "wgan_clip"):
        raise ValueError(f"configs/families.py: data must be one of {DATA} "
                         f"(digits with avb or gram), got {data!r}")
    here = os.path.dirname(os.path.abspath(__file__))
    strategy = args.get("strategy", "competitive")
    if data == "digits":
        c = config_lib.load_config_file("mnist", f"offline,strategy={strategy}", here)
        # These families' samples are not Bernoulli decoder means: grey digits for the
        # assignment discriminators.
        c.disc.binarize = False
        c.num_components = 1 if strategy == "single" else int(args.get("k", 3))
        c.model.hidden = (256, 256)
        c.model.latent = 16
        c.model.learning_rate = 1e-3
        c.gan.filters = 32
        c.pretrain_epochs = 5
        c.epochs_per_round = 5
        c.num_rounds = 3
    else:
        # The GAN toy setting: same data sizes, schedule and assignment discriminators.
        parts = [f"data={data}", f"strategy={strategy}"] + (
            [f"k={args['k']}"] if "k" in args else [])
        c = config_lib.load_config_file("gan_ring", ",".join(parts), here)
        # These families were measured with live generators, a uniform split and
        # 8-epoch rounds on every set (docs/results/families.md).
        c.gan.generator_ema = 0.0
        c.init_split = "uniform"
        c.epochs_per_round = 8
    c.strategy = strategy
    if model == "wgan_clip":
        c.model.family = "gan"
        c.gan.loss = "wgan_clip"
        c.gan.critic_steps = 5
        c.gan.optimizer = "rmsprop"
        c.gan.spectral_norm = False
        c.model.learning_rate = c.gan.critic_learning_rate = 5e-5
    else:
        c.model.family = model
    if args.get("tiny"):
        config_lib.shrink(c, num_points=2000, num_heldout=500, rounds=1, pretrain_epochs=1,
                          epochs_per_round=1, batch_size=32, min_points=50, steps_per_chunk=32,
                          eval_samples=500)
    return c
