"""Datasets by config name, and the data-space convention.

Vector data is float32. Images are stored as uint8 `[N, H, W, C]` (never as
float); their data space, in which samples, KDEs and `sample`'s output live,
is float32 in [0, 1].
"""

from __future__ import annotations

import ml_collections
import numpy as np

from competitive_mixtures.data import images
from competitive_mixtures.data import synthetic
from competitive_mixtures.data.images import DatasetNotFoundError
from competitive_mixtures.data.synthetic import Dataset

__all__ = ["Dataset", "DatasetNotFoundError", "load", "to_data_space"]


def load(config: ml_collections.ConfigDict) -> Dataset:
    """The dataset named by `config.data.name`, with its held-out split."""
    data = config.data
    if data.name == "mnist_offline":
        return images.mnist_offline(num_points=data.num_points or None,
                                    num_heldout=data.num_heldout, seed=data.seed)
    if data.name in ("mnist", "celeb_a"):
        return images.tfds_images(data.name, data_dir=data.data_dir or None,
                                  manual_dir=data.manual_dir or None,
                                  image_size=data.image_size, num_heldout=data.num_heldout,
                                  num_points=data.num_points or None, seed=data.seed)
    kwargs = dict(num_points=data.num_points, num_heldout=data.num_heldout, seed=data.seed)
    if data.name == "gaussians":
        kwargs["modes"] = data.modes
    return synthetic.load(data.name, **kwargs)


def to_data_space(x: np.ndarray) -> np.ndarray:
    """float32 points in data space: uint8 images become [0, 1]."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32)
