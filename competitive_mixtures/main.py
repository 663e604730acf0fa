"""Entry point: `python -m competitive_mixtures.main --config=configs/NAME.py --workdir=DIR`.

Rerunning the same command resumes from the newest checkpoint in DIR.
"""

from __future__ import annotations

import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from competitive_mixtures import config as config_lib
from competitive_mixtures import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and figures.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False,
    "Resume a workdir even though its config.json differs from --config.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Orbax reports every save at INFO; keep the log to the run's own progress.
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= std_logging.WARNING or "orbax" not in record.pathname)
    try:
        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)
    except config_lib.ConfigError as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main)
