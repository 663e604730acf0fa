"""Datasets by config name, and the data-space convention.

Vector data is float32. Images are stored as uint8 `[N, H, W, C]` (never as
float); their data space, in which samples, KDEs and `sample`'s output live,
is float32 in [0, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import ml_collections
import numpy as np

from competitive_mixtures.data import idx
from competitive_mixtures.data import images
from competitive_mixtures.data import synthetic
from competitive_mixtures.data.images import DatasetNotFoundError
from competitive_mixtures.data.synthetic import Dataset

__all__ = ["Dataset", "DatasetNotFoundError", "Share", "load", "to_data_space"]

# N -> `(first, stop)`: the training rows one process loads.
Share = Callable[[int], tuple[int, int]]


def load(config: ml_collections.ConfigDict, share: Share | None = None) -> Dataset:
    """The dataset named by `config.data.name`, with its held-out split.

    With `share`, a function from N to the rows `(first, stop)` this process
    needs, the training part holds only those rows (`Dataset.first`,
    `Dataset.total`): image sets read from disk decode no other image. The
    held-out part is always whole.
    """
    data = config.data
    if data.name in ("mnist", "celeb_a"):
        return images.tfds_images(data.name, data_dir=data.data_dir or None,
                                  manual_dir=data.manual_dir or None,
                                  image_size=data.image_size, num_heldout=data.num_heldout,
                                  num_points=data.num_points or None, seed=data.seed,
                                  share=share)
    if data.name == "mnist_files":
        return idx.mnist_files(data.data_dir, num_points=data.num_points or None,
                               num_heldout=data.num_heldout, seed=data.seed, share=share)
    if data.name == "mnist_offline":
        dataset = images.mnist_offline(num_points=data.num_points or None,
                                       num_heldout=data.num_heldout, seed=data.seed)
    else:
        kwargs = dict(num_points=data.num_points, num_heldout=data.num_heldout,
                      seed=data.seed)
        if data.name == "gaussians":
            kwargs["modes"] = data.modes
        dataset = synthetic.load(data.name, **kwargs)
    if share is None:
        return dataset
    # Small sets: made whole (cheaply, and identically on every process), then cut.
    first, stop = share(dataset.num_points)
    return dataclasses.replace(dataset, x=dataset.x[first:stop], label=dataset.label[first:stop],
                               first=first, total=dataset.num_points)


def to_data_space(x: np.ndarray) -> np.ndarray:
    """float32 points in data space: uint8 images become [0, 1]."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32)
