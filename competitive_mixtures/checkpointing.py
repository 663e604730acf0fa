"""Orbax checkpoints of the whole `MixtureState`, one per finished round."""

from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
from etils import epath
import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves after every round; restores the newest step that reads back intact."""

    def __init__(self, directory: str, max_to_keep: int = 3):
        self._directory = epath.Path(directory if "://" in directory
                                     else os.path.abspath(directory))
        self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self._directory, options=self._options)

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
        damaged = []
        try:
            for step in reversed(self.steps()):
                try:
                    return self._manager.restore(step,
                                                 args=ocp.args.StandardRestore(abstract_state))
                except Exception as error:  # noqa: BLE001 - any unreadable step falls back.
                    logging.warning("checkpoint step %d is unreadable (%s: %s); trying the "
                                    "previous one", step, type(error).__name__, error)
                    damaged.append(step)
        finally:
            if damaged:
                self._set_aside(damaged)
        if damaged:
            raise RuntimeError(f"no checkpoint in {self._directory} could be restored; the "
                               f"damaged steps were moved to damaged-* folders there")
        return None

    def _set_aside(self, steps: list[int]) -> None:
        """Moves damaged steps out of the manager's sight, so their rounds are saved anew."""
        if jax.process_index() == 0:
            for step in steps:
                (self._directory / str(step)).rename(
                    self._directory / f"damaged-{step}-{int(time.time())}")
        self._manager.close()
        self._manager = ocp.CheckpointManager(self._directory, options=self._options)

    def close(self) -> None:
        self._manager.close()


def abstract(state: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
    """Shape/dtype/sharding skeleton of a state (or of its `eval_shape`), the restore target."""
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                          sharding=sharding), state)
