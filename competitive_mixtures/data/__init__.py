"""Datasets by config name."""

from __future__ import annotations

import ml_collections

from competitive_mixtures.data import synthetic
from competitive_mixtures.data.synthetic import Dataset


def load(config: ml_collections.ConfigDict) -> Dataset:
    """The dataset named by `config.data.name`, with its held-out split."""
    data = config.data
    kwargs = dict(num_points=data.num_points, num_heldout=data.num_heldout, seed=data.seed)
    if data.name == "gaussians":
        kwargs["modes"] = data.modes
    return synthetic.load(data.name, **kwargs)
