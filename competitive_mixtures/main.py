"""Entry point: `python -m competitive_mixtures.main --config=configs/NAME.py --workdir=DIR`.

Rerunning the same command resumes from the newest checkpoint in DIR. On
several processes (TPU pod slices, multi-node GPU) pass `--distributed`, or
the explicit coordinator flags; every process runs this same command.
A bad config value, a missing dataset or an unusable workdir ends the run
with one line on stderr and exit code 2 (`--verbose` shows the traceback);
a run that diverges past `config.divergence` ends with exit code 3.
"""

from __future__ import annotations

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from competitive_mixtures import cli
from competitive_mixtures import train

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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    init_distributed()
    if jax.process_index() != 0:
        logging.set_verbosity(logging.WARNING)
    train.train_and_evaluate(cli.loaded_config(_CONFIG), _WORKDIR.value,
                             _ALLOW_CONFIG_CHANGE.value)


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    cli.run(main)
