"""Datasets by config name, and the data-space convention.

Vector data is float32. Images are stored as uint8 `[N, H, W, C]` (never as
float); their data space, in which samples, KDEs and `sample`'s output live,
is float32 in [0, 1].

A user's vector points (`data.name='array'`) may be scaled into the model's
space, `(x - data.shift) * data.scale` (`configs/own.py` sets both from the
data); the models, metrics and run files live in that space, and `Mixture`
maps samples back to the user's units and new points into the model's.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import ml_collections
import numpy as np

from competitive_mixtures import errors
from competitive_mixtures.data import idx
from competitive_mixtures.data import images
from competitive_mixtures.data import own
from competitive_mixtures.data import synthetic
from competitive_mixtures.data.images import DatasetNotFoundError
from competitive_mixtures.data.synthetic import Dataset

__all__ = ["Dataset", "DatasetNotFoundError", "Share", "load", "to_data_space",
           "to_model_space", "to_user_space"]

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
    if data.name in ("array", "image_folder"):
        dataset = (own.array(data.path, num_heldout=data.num_heldout,
                             num_points=data.num_points or None, seed=data.seed)
                   if data.name == "array" else
                   own.image_folder(data.path, image_size=data.image_size,
                                    num_heldout=data.num_heldout,
                                    num_points=data.num_points or None, seed=data.seed))
        return _share(scale_points(dataset, config), share)
    if data.name in ("mnist", "celeb_a", "tfds"):
        name = data.tfds_name if data.name == "tfds" else data.name
        return images.tfds_images(name, data_dir=data.data_dir or None,
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
    return _share(dataset, share)


def _share(dataset: Dataset, share: Share | None) -> Dataset:
    """Sets held in memory whole (made cheaply, and identically on every process), then cut
    to this process's rows."""
    if share is None:
        return dataset
    first, stop = share(dataset.num_points)
    return dataclasses.replace(dataset, x=dataset.x[first:stop], label=dataset.label[first:stop],
                               first=first, total=dataset.num_points)


def has_scaling(config: ml_collections.ConfigDict) -> bool:
    """Whether the run's vector points are scaled: model space = (x - shift) * scale."""
    return bool(len(config.data.shift)) or float(config.data.scale) != 1.0


def to_model_space(x: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
    """Vector points `[N, D]` of the user's data in the space the models see."""
    if not has_scaling(config) or np.asarray(x).dtype == np.uint8:
        return x
    shift = np.asarray(config.data.shift or 0.0, np.float32)
    return ((np.asarray(x, np.float32) - shift) * np.float32(config.data.scale)).astype(
        np.float32)


def to_user_space(x: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
    """`to_model_space` undone: model-space points (samples) in the user's units."""
    if not has_scaling(config) or np.asarray(x).dtype == np.uint8:
        return x
    shift = np.asarray(config.data.shift or 0.0, np.float32)
    return (np.asarray(x, np.float32) / np.float32(config.data.scale) + shift).astype(
        np.float32)


def scale_points(dataset: Dataset, config: ml_collections.ConfigDict) -> Dataset:
    """The dataset's vector points in model space (`data.shift`, `data.scale`)."""
    if not has_scaling(config):
        return dataset
    if dataset.x.ndim != 2:
        raise errors.ConfigError(
            "data.shift and data.scale apply to vector points [N, D]; these are images "
            f"{dataset.x.shape[1:]} (leave both unset)")
    if len(config.data.shift) not in (0, dataset.x.shape[1]):
        raise errors.ConfigError(
            f"data.shift has {len(config.data.shift)} entries; the points have "
            f"{dataset.x.shape[1]} dimensions")
    return dataclasses.replace(dataset, x=to_model_space(dataset.x, config),
                               heldout_x=to_model_space(dataset.heldout_x, config))


def to_data_space(x: np.ndarray) -> np.ndarray:
    """float32 points in data space: uint8 images become [0, 1]."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32)
