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
from typing import Any, Callable

from absl import logging
from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp

from competitive_mixtures import errors
from competitive_mixtures.state import Progress

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
        raise errors.ConfigError(
            f"checkpoint step {step} in {path.parent.parent} holds arrays of other shapes than "
            f"this config's state (saved e.g. {only_saved}, expected e.g. {only_wanted})")


def abstract(state: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
    """Shape/dtype/sharding skeleton of a state (or of its `eval_shape`), the restore target."""
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                          sharding=sharding), state)


class RoundProgress:
    """Checkpoints of a round's M-step in progress, so a long one (pre-training
    above all) is not lost when the run stops.

    Every `every_s` seconds of M-step (0: never) the generators and the
    `Progress` are saved to `<directory>/<round>/<next step>`; only the
    newest is kept. A rerun restores the one of the round it resumes and
    carries on from its step, to the same result as an uninterrupted round.
    Those of earlier rounds are deleted when a later round saves, and all of
    them by `clear` once the run's round checkpoints are written.
    """

    def __init__(self, directory: str, every_s: float):
        self._directory = epath.Path(directory if "://" in directory
                                     else os.path.abspath(directory))
        self.every_s = every_s
        self._round: int | None = None
        self._writer: Checkpointer | None = None

    def save(self, round_index: int, gen: Any, progress: Progress) -> None:
        if self._round != round_index:
            self._close()
            self._remove(lambda r: r != round_index)
            self._writer = Checkpointer(str(self._directory / str(round_index)), max_to_keep=1)
            self._round = round_index
        self._writer.save(progress.offset, {"gen": gen, **_progress_tree(progress)})
        # Synchronous: the M-step donates `gen` to its next chunk.
        self._writer.wait()
        logging.info("round %d: M-step checkpoint at step %d (%d component-steps)",
                     round_index, progress.offset, int(progress.taken.sum()))

    def restore(self, round_index: int, gen: Any, sharding: jax.sharding.Sharding
                ) -> tuple[Any, Progress] | None:
        """The newest saved `(gen, progress)` of round `round_index`, or None
        (none saved, or none that reads back: then the round starts over).
        `gen`: the generators the round starts from (their structure and
        shapes); `sharding`: where the restored ones go."""
        directory = self._directory / str(round_index)
        if not directory.exists():
            return None
        k = jax.tree.leaves(gen)[0].shape[0]
        target = {"gen": abstract(gen, sharding),
                  **_progress_tree(Progress(0, np.zeros(k), np.zeros(k)))}
        reader = Checkpointer(str(directory), max_to_keep=1)
        try:
            saved = reader.restore_latest(target)
        except errors.CheckpointError as error:
            logging.warning("round %d starts over: %s", round_index, error)
            return None
        finally:
            reader.close()
        if saved is None:
            return None
        return saved["gen"], Progress(int(saved["offset"]), np.asarray(saved["loss_sum"]),
                                            np.asarray(saved["taken"]))

    def clear(self) -> None:
        """Deletes every saved M-step (the round checkpoints supersede them)."""
        self._close()
        self._remove(lambda r: True)

    def _remove(self, which: Callable[[int], bool]) -> None:
        if jax.process_index() != 0 or not self._directory.exists():
            return
        for path in self._directory.iterdir():
            if path.name.isdigit() and which(int(path.name)):
                path.rmtree()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer, self._round = None, None


def _progress_tree(progress: Progress) -> dict[str, np.ndarray]:
    return {"offset": np.asarray(progress.offset, np.int64),
            "loss_sum": np.asarray(progress.loss_sum, np.float64),
            "taken": np.asarray(progress.taken, np.float64)}
