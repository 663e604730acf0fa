"""Orbax checkpoints of the whole `MixtureState`, one per finished round.

Each step is restored on its own (`checkpoints/<step>/default`), newest
first, so one stray or damaged step folder never hides the intact ones. A
step that does not restore is moved aside to `damaged-<step>-<time>` (by
training runs only; read-only tools leave the folder as it is). A step whose
arrays have other shapes than the config's state is a config change, not
damage: it raises ConfigError and nothing is moved.
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp

from competitive_mixtures import config as config_lib
from competitive_mixtures import errors

# The item name CheckpointManager gives a single `args=StandardSave(...)`.
_ITEM = "default"


class Checkpointer:
    """Saves after every round; restores the newest step that reads back intact.

    `read_only`: never creates, renames or writes anything (the `sample` and
    `evaluate` tools).
    """

    def __init__(self, directory: str, max_to_keep: int = 3, read_only: bool = False):
        self._directory = epath.Path(directory if "://" in directory
                                     else os.path.abspath(directory))
        self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._read_only = read_only
        self._manager: ocp.CheckpointManager | None = None

    def _writer(self) -> ocp.CheckpointManager:
        if self._read_only:
            raise RuntimeError("this Checkpointer is read-only")
        if self._manager is None:
            self._manager = ocp.CheckpointManager(self._directory, options=self._options)
        return self._manager

    def save(self, step: int, state: Any) -> None:
        self._writer().save(step, args=ocp.args.StandardSave(state))

    def wait(self) -> None:
        if self._manager is not None:
            self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        """The step folders present (names made of digits), oldest first."""
        if not self._directory.exists():
            return []
        return sorted(int(p.name) for p in self._directory.iterdir()
                      if p.name.isdigit() and p.is_dir())

    def restore_latest(self, abstract_state: Any) -> Any | None:
        """The newest readable state, or None when there is no checkpoint.

        `abstract_state` (`checkpointing.abstract` of a fresh state) fixes the
        tree structure, so optimizer states come back as their own types.
        Raises ConfigError when the newest intact step was saved with other
        shapes, and CheckpointError when steps exist but none restores.
        """
        damaged = []
        reader = ocp.StandardCheckpointer()
        try:
            for step in reversed(self.steps()):
                path = self._directory / str(step) / _ITEM
                _check_shapes(path, abstract_state, step)
                try:
                    return reader.restore(path, abstract_state)
                except Exception as error:  # noqa: BLE001 - any unreadable step falls back.
                    logging.warning("checkpoint step %d is unreadable (%s: %.200s); trying the "
                                    "previous one", step, type(error).__name__, error)
                    damaged.append(step)
        finally:
            reader.close()
            if damaged and not self._read_only:
                self._set_aside(damaged)
        if damaged:
            where = ("moved to damaged-* folders there" if not self._read_only
                     else "left in place")
            raise errors.CheckpointError(
                f"no checkpoint in {self._directory} could be restored (steps {damaged} are "
                f"damaged and were {where}); use a new --workdir, or rerun to start over")
        return None

    def _set_aside(self, steps: list[int]) -> None:
        """Moves damaged steps out of the manager's sight, so their rounds are saved anew."""
        if jax.process_index() == 0:
            for step in steps:
                (self._directory / str(step)).rename(
                    self._directory / f"damaged-{step}-{int(time.time())}")
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None


def _leaf_shapes(tree: Any) -> list[tuple[tuple[int, ...], str]]:
    return sorted((tuple(leaf.shape), np.dtype(leaf.dtype).name)
                  for leaf in jax.tree.leaves(tree))


def _check_shapes(path: epath.Path, abstract_state: Any, step: int) -> None:
    """ConfigError when step `step`'s saved arrays have other shapes than the state's.

    Steps whose metadata cannot be read are left to the restore (and count
    as damaged there).
    """
    try:
        saved = ocp.StandardCheckpointHandler().metadata(path).tree
        saved_shapes = _leaf_shapes(saved)
    except Exception:  # noqa: BLE001 - unreadable metadata: the restore decides.
        return
    wanted = _leaf_shapes(abstract_state)
    if saved_shapes != wanted:
        only_saved = sorted(set(saved_shapes) - set(wanted))[:3]
        only_wanted = sorted(set(wanted) - set(saved_shapes))[:3]
        raise config_lib.ConfigError(
            f"checkpoint step {step} in {path.parent.parent} holds arrays of other shapes than "
            f"this config's state (saved e.g. {only_saved}, expected e.g. {only_wanted})")


def abstract(state: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
    """Shape/dtype/sharding skeleton of a state (or of its `eval_shape`), the restore target."""
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                          sharding=sharding), state)
