"""Orbax checkpoints of the whole `MixtureState`, one per finished round."""

from __future__ import annotations

import os
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves after every round; restores the newest step that reads back intact."""

    def __init__(self, directory: str, max_to_keep: int = 3):
        self._manager = ocp.CheckpointManager(
            os.path.abspath(directory),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def save(self, step: int, state: Any) -> None:
        self._manager.save(step, args=ocp.args.StandardSave(state))

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore_latest(self, abstract_state: Any) -> Any | None:
        """The newest readable state, or None when there is no checkpoint.

        `abstract_state` (`jax.eval_shape` of a fresh state) fixes the tree
        structure, so optimizer states come back as their own types. A step
        whose files are damaged is skipped with a warning.
        """
        for step in reversed(self.steps()):
            try:
                return self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
            except Exception as error:  # noqa: BLE001 - any unreadable step falls back.
                logging.warning("checkpoint step %d is unreadable (%s: %s); trying the previous "
                                "one", step, type(error).__name__, error)
        if self.steps():
            raise RuntimeError(f"no checkpoint in {self._manager.directory} could be restored")
        return None

    def close(self) -> None:
        self._manager.close()


def abstract(state: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
    """Shape/dtype/sharding skeleton of a state (or of its `eval_shape`), the restore target."""
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                          sharding=sharding), state)
