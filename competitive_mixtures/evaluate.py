"""Evaluation of a trained mixture: writes DIR/eval.json and prints a table.

python -m competitive_mixtures.evaluate --workdir=DIR [--num_samples=N] [--seed=S]
    [--inception_weights=inception_fid.npz] [--digit_classifier=PATH]

The metrics are those of `competitive_mixtures.metrics.report`. Reads the
newest checkpoint; writes eval.json and, for images, the cached reference
features fid_reference_<kind>.npz. FID with Inception features needs the
converted weights file (`python -m competitive_mixtures.metrics.convert_inception`);
without it that FID is skipped with a message, never downloaded. Never
writes under checkpoints/. Bad input ends with one line on stderr and exit
code 2.
"""

from __future__ import annotations

import os

from absl import flags

from competitive_mixtures import cli
from competitive_mixtures.metrics import inception
from competitive_mixtures.metrics import report

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory with a finished round.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10000, "Model samples to evaluate (>= 2).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    "inception_weights", None, "FID InceptionV3 weights (.npz from metrics.convert_inception); "
    "without it, Inception FID is skipped.")
_DIGIT_CLASSIFIER = flags.DEFINE_string(
    "digit_classifier", None, "Digit-feature classifier file for digit data (trained and saved "
    "there when absent; default ~/.cache/competitive_mixtures/).")


def main(argv):
    del argv
    if _NUM_SAMPLES.value < 2:
        cli.fail(f"--num_samples must be an integer >= 2, got {_NUM_SAMPLES.value}")
    if _INCEPTION_WEIGHTS.value and not os.path.exists(_INCEPTION_WEIGHTS.value):
        cli.fail(f"--inception_weights={_INCEPTION_WEIGHTS.value} not found. "
                 f"{inception.HOW_TO_GET}")
    try:
        result = report.evaluate_run(_WORKDIR.value, _NUM_SAMPLES.value, _SEED.value,
                                     inception_weights=_INCEPTION_WEIGHTS.value,
                                     digit_classifier=_DIGIT_CLASSIFIER.value)
    except FileNotFoundError as error:
        cli.fail(str(error))
    print(report.table(result))
    print(f"wrote {os.path.join(_WORKDIR.value, 'eval.json')}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
