"""Entry point: `python -m competitive_mixtures.main --config=configs/NAME.py --workdir=DIR`.

Rerunning the same command resumes from the newest checkpoint in DIR. On
several processes (TPU pod slices, multi-node GPU) pass `--distributed`, or
the explicit coordinator flags; every process runs this same command.
"""

from __future__ import annotations

import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from competitive_mixtures import config as config_lib
from competitive_mixtures import train
from competitive_mixtures.data import DatasetNotFoundError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and figures.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False,
    "Resume a workdir even though its config.json differs from --config.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False,
    "Call jax.distributed.initialize() with auto-detection (Cloud TPU pods, SLURM).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "HOST:PORT of process 0, for a multi-process run.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
_CPU_COLLECTIVES = flags.DEFINE_string(
    "cpu_collectives", None,
    "CPU collectives implementation for multi-process CPU runs (e.g. 'gloo').")
flags.mark_flags_as_required(["config", "workdir"])


def init_distributed() -> None:
    """Joins the other processes of a multi-process run, if this is one."""
    if _CPU_COLLECTIVES.value:
        jax.config.update("jax_cpu_collectives_implementation", _CPU_COLLECTIVES.value)
    if _COORDINATOR.value:
        jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                                   num_processes=_NUM_PROCESSES.value,
                                   process_id=_PROCESS_ID.value)
    elif _DISTRIBUTED.value:
        jax.distributed.initialize()
    if jax.process_count() > 1:
        logging.info("process %d of %d; %d local of %d devices", jax.process_index(),
                     jax.process_count(), jax.local_device_count(), jax.device_count())


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a one-line error for an override of no config field."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.exit(f"FATAL Flags parsing error: {error}\n"
                 "Pass --helpshort or --helpfull to see help on flags.")
    except (AttributeError, KeyError) as error:
        # config_flags applies --config.FIELD=VALUE overrides while parsing.
        overrides = [arg.split("=")[0] for arg in argv[1:] if arg.startswith("--config.")]
        field = str(error).strip("\"'")
        sys.exit(f"error: the config has no field {field!r} (overrides given: "
                 f"{', '.join(overrides)}); config.py lists every field.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Orbax reports every save at INFO; keep the log to the run's own progress.
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= std_logging.WARNING or "orbax" not in record.pathname)
    init_distributed()
    if jax.process_index() != 0:
        logging.set_verbosity(logging.WARNING)
    try:
        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)
    except (config_lib.ConfigError, DatasetNotFoundError) as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=parse_flags)
