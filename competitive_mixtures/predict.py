"""Each point's component under a trained mixture: the paper's assignment c(x) for any x.

python -m competitive_mixtures.predict --workdir=RUN --input=FILE --output=OUT.npz [--seed=S]

FILE is a `.npy` array of points or an `.npz` holding them as `x`, shaped as
the run's training points (`[N, D]`, or images `[N, H, W, C]` as uint8 0..255
or float in [0, 1]); `--input=training` takes the run's own training points,
rebuilt from its config, and also counts the points whose owner differs from
the run's `assignments.npz`. Writes to OUT.npz:

  owner      [N] int32     argmax_j of the normalised log ratios, as the assignment pass
  log_ratio  [N, K] float32  the estimator's log dP_j/dP_X, before the normaliser
  log_normaliser [K] float32  log Z_j over the run's training points (0: not normalised)
  elbo       [N, K] float32  every component's ELBO, for VAE families

Reads the run only. Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import time

from absl import flags
from absl import logging
import numpy as np

from competitive_mixtures import cli
from competitive_mixtures import data as data_lib
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.mixture import InputError, Mixture

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory with a finished round.")
_INPUT = flags.DEFINE_string("input", None, "Points: a .npy file, an .npz holding 'x', or "
                             "'training' for the run's own training points.")
_OUTPUT = flags.DEFINE_string("output", None, "Output .npz path.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of estimators that draw noise (the ELBO).")
_BLOCK = flags.DEFINE_integer("block", 65536, "Points per block (progress is logged per block).")


def read_points(path: str) -> np.ndarray:
    """The points of a `.npy` file or of an `.npz` file's `x`; InputError otherwise."""
    if not os.path.isfile(path):
        raise InputError(f"--input={path} is not a file")
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded
            with loaded:
                if "x" not in loaded.files:
                    raise InputError(f"{path} holds {loaded.files}; put the points under 'x'")
                return loaded["x"]
    except InputError:
        raise
    except Exception as error:  # pylint: disable=broad-except
        raise InputError(f"{path} is not a readable .npy or .npz file "
                         f"({type(error).__name__}: {error})") from None


def predict_in_blocks(mixture: Mixture, x: np.ndarray, block: int, seed: int,
                      space: str = "user") -> dict:
    """`owner`, `log_ratio` (and `elbo`) of `x`, block by block with progress (`space`:
    see `Mixture`)."""
    x = mixture.check_points(x, space)
    parts: dict[str, list] = {"owner": [], "log_ratio": [], "elbo": []}
    start = last = time.perf_counter()
    for begin in range(0, len(x), block):
        batch = x[begin:begin + block]
        log_ratio = mixture.log_ratios(batch, seed, space="model")
        parts["owner"].append(mixture.owners(log_ratio))
        parts["log_ratio"].append(log_ratio)
        if mixture.has_elbo:
            parts["elbo"].append(mixture.elbo(batch, seed, space="model"))
        now = time.perf_counter()
        done = min(begin + block, len(x))
        if now - last > 10 or done == len(x):
            last = now
            logging.info("predict: %d of %d points (%.0f points/s)", done, len(x),
                         done / max(now - start, 1e-9))
    out = {name: np.concatenate(values) for name, values in parts.items() if values}
    out["log_normaliser"] = mixture.log_normaliser()
    return out


def main(argv):
    del argv
    if not _OUTPUT.value or not _OUTPUT.value.endswith(".npz"):
        cli.fail(f"--output must name an .npz file, got {_OUTPUT.value!r}")
    if _BLOCK.value < 1:
        cli.fail(f"--block must be a positive integer, got {_BLOCK.value}")
    mixture = Mixture.load(_WORKDIR.value)
    mixture.check_assigns()
    training = _INPUT.value == "training"
    x = data_lib.load(mixture.config).x if training else read_points(_INPUT.value)
    # The run's training points are read as it saw them: in the model's space.
    out = predict_in_blocks(mixture, x, _BLOCK.value, _SEED.value,
                            space="model" if training else "user")
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    workdir_lib.save_npz_atomic(_OUTPUT.value, **out)
    counts = np.bincount(out["owner"], minlength=mixture.num_components)
    print(f"wrote the owners of {len(out['owner'])} points to {_OUTPUT.value}; per component: "
          f"{counts.tolist()}")
    if training:
        run = workdir_lib.read_npz(_WORKDIR.value, "assignments.npz", ("assignment",))
        differ = int(np.sum(run["assignment"] != out["owner"]))
        print(f"against the run's assignments.npz: {differ} of {len(out['owner'])} training "
              "points have another owner")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir", "input", "output"])
    cli.run(main)
