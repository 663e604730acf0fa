"""Deterministic random weights for the FID InceptionV3 reference check.

`tests/make_inception_reference.py` loads these weights into pytorch-fid's
network and records its pool3 features in `tests/data/inception_reference.npz`;
`tests/test_inception.py` rebuilds the same weights from the recorded key
names and shapes, loads them into the Flax network and compares features.
`numpy.random.RandomState` is used because its streams are frozen across
NumPy versions.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

FIXTURE = pathlib.Path(__file__).resolve().parent / "data" / "inception_reference.npz"
SEED = 20171212


def random_state_dict(layout: list[tuple[str, tuple[int, ...]]],
                      seed: int = SEED) -> dict[str, np.ndarray]:
    """Values for each `(key, shape)` of a torch InceptionV3 state dict, in order.

    Convolutions get He-scaled normal weights, so activations keep their
    scale through the 94 layers; batch-norm scales, shifts and running
    statistics are drawn away from their identity values, so that swapping
    any two of them changes the features.
    """
    rng = np.random.RandomState(seed)
    state = {}
    for key, shape in layout:
        if key.endswith("num_batches_tracked"):
            value = np.zeros(shape, np.int64)
        elif key.endswith("conv.weight"):
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif key.endswith("bn.weight"):
            value = rng.uniform(0.6, 1.4, shape)
        elif key.endswith("running_var"):
            value = rng.uniform(0.6, 1.4, shape)
        elif key.endswith(("bn.bias", "running_mean")):
            value = 0.1 * rng.standard_normal(shape)
        else:  # the 1008-class classifier
            value = 0.01 * rng.standard_normal(shape)
        state[key] = value.astype(np.int64 if value.dtype == np.int64 else np.float32)
    return state


def layout_to_json(layout: list[tuple[str, tuple[int, ...]]]) -> str:
    return json.dumps([[key, list(shape)] for key, shape in layout])


def layout_from_json(text: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(shape)) for key, shape in json.loads(text)]
