"""A finished run's state, restored for the tools that read a workdir.

`restore_run` rebuilds the run's programs from its `config.json` and the data
shapes its files record, then restores the newest checkpoint. It lives apart
from `workdir` (files) and `checkpointing` (orbax), which import no programs.
"""

from __future__ import annotations

from etils import epath
import jax
import jax.numpy as jnp
import ml_collections

from competitive_mixtures import checkpointing
from competitive_mixtures import programs as programs_lib
from competitive_mixtures import sharding
from competitive_mixtures.state import MixtureState
from competitive_mixtures.workdir import CONFIG, RunNotFoundError, Workdir, read_npz


def restore_run(workdir: str) -> tuple[ml_collections.ConfigDict, programs_lib.Programs,
                                           MixtureState]:
    """The config, programs and newest state of a run, for tools that read a workdir.

    Reads only (nothing in the workdir is created, renamed or written);
    raises RunNotFoundError when no round has finished there, and
    RunFileError, naming the file, when one of its files is missing or damaged.
    """
    work = Workdir(workdir)
    needed = [CONFIG, "checkpoints"]
    missing = [name for name in needed if not epath.Path(work.file(name)).exists()]
    if missing:
        raise RunNotFoundError(
            f"{workdir} holds no finished round (missing {', '.join(missing)}); train first with "
            f"python -m competitive_mixtures.main --config=... --workdir={workdir}")
    config = work.read_config()
    data_shape = read_npz(workdir, "heldout.npz", ("x",))["x"].shape[1:]
    num_points = len(read_npz(workdir, "assignments.npz", ("assignment", "label"))["assignment"])
    # The state's shapes depend on the data's shape and count, not on its values.
    x_spec = jax.ShapeDtypeStruct((num_points,) + data_shape, jnp.float32)
    programs = programs_lib.make_programs(config, x_spec.shape[1:])
    abstract_state = checkpointing.abstract(
        jax.eval_shape(lambda x: programs_lib.init_state(config, programs, x), x_spec),
        sharding.replicated(programs.mesh))
    checkpointer = checkpointing.Checkpointer(work.file("checkpoints"), read_only=True)
    state = checkpointer.restore_latest(abstract_state)
    checkpointer.close()
    if state is None:
        raise RunNotFoundError(
            f"{workdir}/checkpoints holds no checkpoint; train first")
    return config, programs, state
