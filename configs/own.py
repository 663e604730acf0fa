"""Your own data: an array file, a folder of images or a tensorflow-datasets image set.

Usage: --config=configs/own.py:ARGS, ARGS a comma-separated list of
  path=FILE|DIR  a .npy / .npz file of points (data.name='array') or a folder of
                 PNG / JPEG images (data.name='image_folder'); see
                 competitive_mixtures/data/own.py for what each may hold;
  tfds=NAME      instead of path: a tensorflow-datasets image set prepared on
                 disk (data.name='tfds'; --config.data.data_dir=DIR for its
                 directory);
  k=INT          number of components (default 5 for vectors, 10 for images);
  size=INT       resize images to INT x INT (default: a folder's own size; 32
                 for a tfds set);
  strategy=NAME  competitive (default), bagging or single;
  tiny           a seconds-long run, for tests and smoke runs.
Examples: --config=configs/own.py:path=points.npy,k=6
          --config=configs/own.py:path=digits/,k=10

The data decide the models (`data/own.py:describe`, read when the config loads):

Vectors [N, D]: MLP VAEs as in configs/synthetic.py's quick preset (two hidden
layers of max(50, min(512, 2D)) units, latent 5 up to D = 20 and D / 4 (at most
32) above, Gaussian decoder whose log-variance is capped at 0, the base
config's Adam), with discriminators of the same shape. The points are centred and scaled by
one factor, (x - mean) * 5 / s, s the root mean per-dimension variance of all
points (data.shift, data.scale): the quick preset's models and its decoder cap
were chosen for the 2-D sets, whose points spread about 5 units, so any set
gets that spread. One factor for every dimension keeps the data's shape.
Schedule: 5 epochs of pre-training on a k-means++ split, then 15 rounds of 4
epochs, discriminators 2 epochs a round and kept; for N above 16,000 the epochs
shrink by 16,000 / N (at least 1), so a run takes about as many steps as the
quick 2-D preset. Load balancing below N / 80 points.

Images: the networks, optimisers and stated choices of configs/mnist.py's
offline preset (conv VAEs 8-16-32-64 with 4x4 filters and latent 8, 8-16-32
discriminators kept across rounds, a k-means++ split, step_budget='equal',
balancing below N / (2K)), with the decoder's upsamplings chosen from the image
side (three for sides divisible by 8 with at least 4 pixels left, else two or
one).
Grey images: Bernoulli decoder, discriminators on binarised images blurred by
3 pixels (the digit preset's choices); colour images: Gaussian decoder, no
binarising or blur. The generator budget is about 500,000 image visits:
E = clip(round(500,000 / N), 8, 110) epochs, spent as 3 rounds of floor(E / 4)
epochs and the rest as pre-training (110 at the 4,500 offline digits, as the
offline preset; 8 at 60,000, as the full one); discriminators
min(1, 12,000 / N) epochs a round (0.2 at 60,000, as the full-MNIST preset).
Held-out points: the data's test split (at most 10,000) when it has one, else
N / 10 carved out (at most 10,000).
"""

import os

import ml_collections
import numpy as np

from competitive_mixtures import config as config_lib
from competitive_mixtures.data import own

# The spread (root mean per-dimension std) vector points are scaled to.
SPREAD = 5.0
# Vectors: the quick 2-D preset's schedule, and the N it is sized for.
VECTOR_POINTS = 16000
# Images: generator epochs times N.
IMAGE_VISITS = 500_000
MAX_HELDOUT = 10000
DECODER_CHANNELS = (128, 64, 32, 16)


def _upsamplings(side: int) -> int:
    """Upsamplings of the decoder: the most (up to 3) that halve `side` exactly to >= 4."""
    for u in (3, 2, 1):
        if side % 2**u == 0 and side // 2**u >= 4:
            return u
    raise config_lib.ConfigError(f"configs/own.py: images of side {side} need a side "
                                 "divisible by 2 (give size=INT)")


def _vectors(c, info, k):
    dim = int(info["point_shape"][0])
    n = info["num_points"]
    width = max(50, min(512, 2 * dim))
    c.model.family = "vae"
    c.model.hidden = (width, width)
    c.model.latent = 5 if dim <= 20 else min(32, dim // 4)
    c.model.max_log_var = 0.0
    c.disc.hidden = (width, width)
    c.data.shift = tuple(float(v) for v in info["mean"])
    c.data.scale = SPREAD / info["spread"] if info["spread"] > 0 else 1.0
    shrink = max(1.0, n / VECTOR_POINTS)
    c.pretrain_epochs = max(1, round(5 / shrink))
    c.num_rounds = 15
    c.epochs_per_round = max(1, round(4 / shrink))
    c.disc.epochs = max(1, round(2 / shrink))
    c.batch_size = c.disc.batch_size = 64
    c.num_components = k or 5


def _images(c, shape, n, k):
    """The offline digits preset's networks and stated choices, sized for `shape` and N."""
    digits = config_lib.load_config_file("mnist", "offline", os.path.dirname(__file__))
    c.model = ml_collections.ConfigDict(digits.model.to_dict())
    c.disc = ml_collections.ConfigDict(digits.disc.to_dict())
    for field in ("init_split", "step_budget", "batch_size"):
        c[field] = digits[field]
    c.assign.batch_size = digits.assign.batch_size
    side, channels = int(shape[0]), int(shape[-1])
    u = _upsamplings(side)
    c.model.decoder_channels = DECODER_CHANNELS[len(DECODER_CHANNELS) - u - 1:]
    grey = channels == 1
    c.model.likelihood = "bernoulli" if grey else "gaussian"
    c.disc.binarize = grey
    c.disc.input_blur = digits.disc.input_blur if grey else 0.0
    epochs = int(np.clip(round(IMAGE_VISITS / n), 8, 110))
    c.epochs_per_round = max(1, epochs // 4)
    c.num_rounds = 3
    c.pretrain_epochs = epochs - 3 * c.epochs_per_round
    c.disc.epochs = min(1.0, 12000 / n)
    c.num_components = k or 10


def get_config(arg=None):
    args = config_lib.parse_arg(arg, {"path", "tfds", "k", "size", "strategy", "tiny"},
                                "configs/own.py")
    if bool(args.get("path")) == bool(args.get("tfds")):
        raise config_lib.ConfigError("configs/own.py: give path=FILE_OR_DIR (your points or "
                                     "images) or tfds=NAME, one of them")
    c = config_lib.base_config()
    k = int(args["k"]) if "k" in args else None
    size = int(args.get("size", 0))
    c.init_split = "kmeans"
    c.disc.reinit_each_round = False
    c.data.num_points = 0
    if args.get("tfds"):
        c.data.name, c.data.tfds_name = "tfds", str(args["tfds"])
        c.data.image_size = size or 32
        c.data.num_heldout = MAX_HELDOUT
        # Not read until training: sized for a set of 60,000 images of size x size.
        n, shape = 60000, (c.data.image_size, c.data.image_size, 3)
    else:
        info = own.describe(str(args["path"]))
        c.data.name, c.data.path = info["source"], str(args["path"])
        n, shape = info["num_points"], tuple(info["point_shape"])
        c.data.num_heldout = (MAX_HELDOUT if info["has_test"]
                              else max(1, min(MAX_HELDOUT, n // 10)))
        if not info["has_test"]:
            n -= c.data.num_heldout
        if size:
            if info["source"] != "image_folder":
                raise config_lib.ConfigError("configs/own.py: size=INT resizes the images "
                                             "of a folder or a tfds set, not an array file")
            c.data.image_size = size
            shape = (size, size, shape[-1])
        elif info["source"] == "image_folder":
            c.data.image_size = 0
    if len(shape) == 1:
        _vectors(c, info, k)
        c.balance.min_points = max(1, n // 80)
    else:
        _images(c, shape, n, k)
        c.balance.min_points = max(1, n // (2 * c.num_components))
    c.strategy = args.get("strategy", "competitive")
    if c.strategy == "single":
        c.num_components = 1
    if args.get("tiny"):
        c.data.num_points = min(n, 2000)
        config_lib.shrink(c, num_points=c.data.num_points, num_heldout=min(
            c.data.num_heldout, 500), rounds=2, pretrain_epochs=1, epochs_per_round=1,
            batch_size=32, min_points=max(1, c.data.num_points // (4 * c.num_components)),
            steps_per_chunk=64, eval_samples=500, disc_epochs=None)
    return c
