"""CelebA 64x64 with convolutional VAEs (Locatello et al. 2018, Sec. 5.2: K=5).

Usage: --config=configs/celeba.py[:ARGS], ARGS a comma-separated list of
  k=INT         number of components (default 5);
  strategy=NAME competitive (default), bagging or single;
  small         a CPU-sized smoke run on a few hundred images;
  vae96         the single-model baseline with a decoder of at most 96 filters
                (the paper's larger single model is strategy=single).
The images come from tensorflow-datasets `celeb_a` (centre crop 108x108, then
resized to 64x64); set --config.data.data_dir to the directory it was built in.
Example: --config=configs/celeba.py:k=8
"""

from competitive_mixtures import config as config_lib


def get_config(arg=None):
    args = config_lib.parse_arg(arg, {"k", "strategy", "small", "vae96"}, "configs/celeba.py")
    c = config_lib.base_config()
    c.data.name = "celeb_a"
    c.data.num_points = 0
    c.data.num_heldout = 10000
    c.data.image_size = 64
    c.model.family = "conv_vae"
    # Paper: encoder 64-128-256-512, decoder 256-128-64, 5x5 kernels, latent 128, Adam 2e-4.
    c.model.channels = (64, 128, 256, 512)
    c.model.decoder_channels = (256, 128, 64)
    c.model.kernel = 5
    c.model.latent = 128
    c.model.likelihood = "gaussian"
    c.model.sample_noise = False
    c.model.learning_rate = 2e-4
    c.model.b1 = 0.5
    # Discriminators: 3 layers of 128 3x3 filters, SGD 1e-4, kept across rounds.
    c.disc.channels = (128, 128, 128)
    c.disc.kernel = 3
    c.disc.optimizer = "sgd"
    c.disc.learning_rate = 1e-4
    c.disc.reinit_each_round = False
    c.disc.epochs = 1
    c.num_components = int(args.get("k", 5))
    # Assignment every 10 epochs, as in the paper.
    c.batch_size = 64
    c.disc.batch_size = 64
    c.pretrain_epochs = 10
    c.epochs_per_round = 10
    c.num_rounds = 5
    c.balance.min_points = 1000
    # Scoring one discriminator at a time needs 0.18 GB of XLA temporaries per
    # 256 images (CPU); vmapped it needed 1.35 GB plus ~5 GB of grouped-conv
    # scratch. 512 images per call keep the process within the uint8 data
    # plus 2 GiB (bench memory section).
    c.assign.batch_size = 512
    c.assign.sequential_components = True
    c.eval.num_samples = 2000
    c.steps_per_chunk = 100
    c.strategy = args.get("strategy", "competitive")
    if args.get("vae96"):
        c.strategy = "single"
        c.model.channels = (12, 24, 48, 96)
        c.model.decoder_channels = (48, 24, 12)
    if c.strategy == "single":
        c.num_components = 1
    if args.get("small"):
        config_lib.shrink(c, num_points=400, num_heldout=100, rounds=1, pretrain_epochs=1,
                          epochs_per_round=1, batch_size=16, min_points=20, steps_per_chunk=20,
                          eval_samples=100, disc_epochs=None, assign_batch=128)
        c.num_components = min(c.num_components, 2)
        c.model.channels = (8, 16, 16, 32)
        c.model.decoder_channels = (16, 8, 8)
        c.model.latent = 16
        c.disc.channels = (8, 8, 8)
    return c
