"""Evaluation of a trained mixture: writes DIR/eval.json and prints a table.

python -m competitive_mixtures.evaluate --workdir=DIR [--num_samples=N] [--seed=S]

The metrics are those of `competitive_mixtures.metrics.report`. Reads the
newest checkpoint; writes only eval.json.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

from competitive_mixtures import train
from competitive_mixtures.metrics import report

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory with a finished round.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10000, "Model samples to evaluate (>= 2).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")


def main(argv):
    del argv
    if _NUM_SAMPLES.value < 2:
        sys.exit(f"error: --num_samples must be an integer >= 2, got {_NUM_SAMPLES.value}")
    try:
        result = report.evaluate_run(_WORKDIR.value, _NUM_SAMPLES.value, _SEED.value)
    except train.RunNotFoundError as error:
        sys.exit(f"error: {error}")
    print(report.table(result))
    print(f"wrote {os.path.join(_WORKDIR.value, 'eval.json')}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
