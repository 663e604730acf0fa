"""2-D Gaussian mixtures with the paper's skew (Locatello et al. 2018, Sec. 5.1).

Usage: --config=configs/synthetic.py[:ARGS], ARGS a comma-separated list of
  modes=3|5|9   which dataset (K defaults to the number of modes), default 3;
  data=NAME     gaussians (default), ring (8 modes) or grid (25 modes);
  k=INT         number of components;
  strategy=NAME competitive (default), bagging, single (sets k=1) or boosting;
  ratio=KIND    density-ratio estimator: discriminator (default), kernel, multiclass;
  hidden=INT    units in each of the two hidden layers of the VAE (default 50);
  vae150        the paper's larger single model: strategy=single, hidden=150;
  paper         the paper's schedule (64k points, 10 epochs per round, ...);
  tiny          a seconds-long run for tests.
Example: --config=configs/synthetic.py:modes=9,paper
"""

from competitive_mixtures import config as config_lib


def get_config(arg=None):
    args = config_lib.parse_arg(
        arg, {"modes", "data", "k", "strategy", "ratio", "hidden", "vae150", "paper", "tiny"},
        "configs/synthetic.py")
    if args.get("vae150"):
        args.update(strategy="single", hidden="150")
    c = config_lib.base_config()
    c.data.name = args.get("data", "gaussians")
    c.data.modes = int(args.get("modes", 3))
    # Modes of each set: the ring has 8, the grid 5 x 5.
    num_modes = {"ring": 8, "grid": 25}.get(c.data.name, c.data.modes)
    c.strategy = args.get("strategy", "competitive")
    c.ratio.kind = args.get("ratio", "discriminator")
    c.num_components = 1 if c.strategy == "single" else int(args.get("k", num_modes))
    width = int(args.get("hidden", 50))
    c.model.hidden = (width, width)

    # Quick default: under a minute on a 2-core CPU. Discriminators are kept
    # across rounds: their estimates sharpen with every round, which moved
    # runs out of split-mode local optima that re-initialised ones stayed in.
    c.data.num_points = 16000
    c.pretrain_epochs = 5
    c.num_rounds = 15
    c.epochs_per_round = 4
    c.disc.epochs = 2
    c.disc.reinit_each_round = False
    c.batch_size = 64
    c.disc.batch_size = 64
    c.balance.min_points = 200

    if args.get("paper"):
        # The paper's settings: 64k points, Adam(0.005, beta1=0.5), batch 32,
        # 10 epochs per component per round, discriminators 2 epochs on the
        # whole data, re-initialised every round.
        c.data.num_points = 64000
        c.batch_size = 32
        c.disc.batch_size = 32
        c.epochs_per_round = 10
        c.disc.epochs = 2
        c.disc.reinit_each_round = True
        c.pretrain_epochs = 10
        c.num_rounds = 10
        c.balance.min_points = 1000
    if args.get("tiny"):
        c.data.num_points = 3000
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
