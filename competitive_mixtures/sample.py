"""Samples of a trained mixture.

python -m competitive_mixtures.sample --workdir=DIR --num_samples=N --output=FILE.npz [--seed=S]

Writes an npz with `x` (float32, data space, the training data's layout) and
`component` (int32, the component each sample came from). Reads the workdir's
newest checkpoint; writes nothing into the workdir (not even beside a damaged
checkpoint). Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os

from absl import flags
import numpy as np

from competitive_mixtures import cli
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.mixture import Mixture

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory with a finished round.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10000, "Number of samples (>= 1).")
_OUTPUT = flags.DEFINE_string("output", None, "Output .npz path.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")


def main(argv):
    del argv
    if _NUM_SAMPLES.value < 1:
        cli.fail(f"--num_samples must be a positive integer, got {_NUM_SAMPLES.value}")
    if not _OUTPUT.value or not _OUTPUT.value.endswith(".npz"):
        cli.fail(f"--output must name an .npz file, got {_OUTPUT.value!r}")
    mixture = Mixture.load(_WORKDIR.value)
    x, component = mixture.sample(_NUM_SAMPLES.value, _SEED.value)
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    workdir_lib.save_npz_atomic(_OUTPUT.value, x=x, component=component)
    print(f"wrote {len(x)} samples of shape {x.shape[1:]} to {_OUTPUT.value}; per component: "
          f"{np.bincount(component, minlength=mixture.num_components).tolist()}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir", "output"])
    cli.run(main)
