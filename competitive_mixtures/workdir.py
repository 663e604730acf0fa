"""The run directory: its files, written atomically, and its lock.

Every JSON, text or npz file goes to a temporary name first and is then
renamed, so a reader (or a run killed mid-write) never sees half a file.
A run holds `run.lock` (pid and host) for as long as it trains; a second run
on the same workdir refuses at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile
from typing import Any

from absl import logging
from etils import epath
import ml_collections
import numpy as np

from competitive_mixtures import config as config_lib
from competitive_mixtures import errors

LOCK = "run.lock"
METRICS = "metrics.jsonl"
CONFIG = "config.json"


class RunNotFoundError(errors.UserError, FileNotFoundError):
    """A workdir with no finished round."""


class RunFileError(errors.UserError):
    """A file of a run is missing or damaged; the message names it and what to do."""


def read_npz(workdir: str, name: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `keys` of the run file `workdir/name`, or RunFileError naming the file."""
    path = epath.Path(workdir, name)
    rerun = (f"rerun the training command on --workdir={workdir}, which writes it again from "
             "the newest checkpoint")
    if not path.exists():
        raise RunFileError(f"{path} is missing; {rerun}.")
    try:
        with path.open("rb") as g, np.load(g) as f:
            missing = [key for key in keys if key not in f.files]
            if not missing:
                return {key: f[key] for key in keys}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise RunFileError(f"{path} is damaged ({type(error).__name__}: {error}); "
                           f"{rerun}.") from None
    raise RunFileError(f"{path} lacks {missing}; {rerun}.")


def read_run_json(workdir: str, name: str, what: str) -> Any:
    """The JSON run file `workdir/name`, or RunFileError naming it; `what` says what to do."""
    path = epath.Path(workdir, name)
    if not path.exists():
        raise RunFileError(f"{path} is missing: {what}.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFileError(f"{path} is damaged ({error}): {what}.") from None


def write_text_atomic(path: str, text: str) -> None:
    """Writes through a temporary file, so a reader never sees half a file."""
    tmp = epath.Path(f"{path}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json_atomic(path: str, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2))


def save_npz_atomic(path: str, **arrays) -> None:
    tmp = epath.Path(f"{path}.tmp.npz")
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)


def read_json(path: str) -> Any:
    """A JSON file, or WorkdirError naming the file and where it stops parsing."""
    try:
        with epath.Path(path).open() as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.WorkdirError(
            f"{path} is not valid JSON ({error}); restore it, or use a new --workdir") from None


def _is_local(path: str) -> bool:
    return "://" not in path


def check_path(path: str | None) -> str:
    """The workdir path, or WorkdirError for an empty one or one that is a file."""
    if not path or not str(path).strip():
        raise errors.WorkdirError("--workdir is empty; name a directory for the run")
    if epath.Path(path).exists() and not epath.Path(path).is_dir():
        raise errors.WorkdirError(f"--workdir={path} is a file, not a directory")
    return path


class Workdir:
    """The files of one run directory (the README and docs/usage.md say what each holds)."""

    def __init__(self, path: str, lead: bool = True):
        """`lead`: this process writes files (process 0 of a multi-process run)."""
        self.path = check_path(path)
        self.figures = str(epath.Path(path) / "figures")
        self.lead = lead

    def file(self, name: str) -> str:
        return str(epath.Path(self.path) / name)

    def create(self) -> None:
        """Makes the run's directories; WorkdirError when they cannot be written."""
        if not self.lead:
            return
        try:
            epath.Path(self.figures).mkdir(parents=True, exist_ok=True)
            probe = epath.Path(self.file(f".write-test-{os.getpid()}"))
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise errors.WorkdirError(
                f"cannot write to --workdir={self.path} ({error.strerror or error})") from None

    def write_text(self, name: str, text: str) -> None:
        if self.lead:
            write_text_atomic(self.file(name), text)

    def save_npz(self, name: str, **arrays) -> None:
        if self.lead:
            save_npz_atomic(self.file(name), **arrays)

    # -- config -------------------------------------------------------------

    def config_changes(self, config: ml_collections.ConfigDict,
                       allow_change: bool) -> list[str]:
        """The fields in which `config` differs from the workdir's config.json.

        Raises ConfigError when they differ and `allow_change` is off. Fields
        the saved config did not have yet count at their defaults. Writes nothing.
        """
        path = self.file(CONFIG)
        if not epath.Path(path).exists():
            return []
        old = json.loads(config_lib.from_dict(read_json(path)).to_json())
        changed = config_lib.diff(old, json.loads(config.to_json()))
        if changed and not allow_change:
            raise config_lib.ConfigError(
                f"{self.path} holds a run with another config ({'; '.join(changed)}). "
                "Use a new --workdir, or pass --allow_config_change to resume with the "
                "new config.")
        return changed

    def write_config(self, config: ml_collections.ConfigDict) -> None:
        self.write_text(CONFIG, json.dumps(json.loads(config.to_json()), indent=2,
                                           sort_keys=True))

    def read_config(self) -> ml_collections.ConfigDict:
        return config_lib.from_dict(read_json(self.file(CONFIG)))

    # -- metrics.jsonl --------------------------------------------------------

    def read_metrics(self, before_round: int) -> list[dict]:
        """Records of rounds < `before_round`; later ones belong to a lost future.

        A line that is not a JSON record is dropped with a warning naming its
        line number: the round to resume comes from the checkpoint, not the log.
        """
        path = self.file(METRICS)
        if not epath.Path(path).exists():
            return []
        records = []
        with epath.Path(path).open() as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    round_index = int(record["round"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    logging.warning("%s line %d is not a round record; dropped: %.80r", path,
                                    number, line)
                    continue
                if round_index < before_round:
                    records.append(record)
        return records

    def reset_metrics(self, records: list[dict]) -> None:
        """Rewrites metrics.jsonl to `records` (once, when a run starts or resumes)."""
        self.write_text(METRICS, "".join(json.dumps(r) + "\n" for r in records))

    def append_metrics(self, record: dict) -> None:
        """Appends one round's record as one line."""
        if self.lead:
            with epath.Path(self.file(METRICS)).open("a") as f:
                f.write(json.dumps(record) + "\n")

    # -- lock -------------------------------------------------------------------

    def lock(self) -> "Lock":
        return Lock(self.file(LOCK), enabled=self.lead and _is_local(self.path))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lock:
    """`run.lock` held for the duration of a run: `with work.lock(): ...`.

    A lock of a process that is gone (same host) is taken over with a warning;
    a live one, or one of another host, makes the run refuse with WorkdirError.
    """

    def __init__(self, path: str, enabled: bool = True):
        self.path = path
        self.enabled = enabled
        self._mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")})

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(self._mine)
        return True

    def __enter__(self) -> "Lock":
        if not self.enabled:
            return self
        if self._try_create():
            return self
        try:
            with open(self.path) as f:
                holder = json.load(f)
            pid, host = int(holder["pid"]), str(holder["host"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            holder, pid, host = None, None, None
        here = socket.gethostname()
        if holder is not None and (host != here or _process_alive(pid)):
            raise errors.WorkdirError(
                f"{os.path.dirname(self.path)} is in use by another run (pid {pid} on {host}, "
                f"since {holder.get('since', '?')}); wait for it, or delete {self.path} if "
                "that run is gone")
        logging.warning("taking over the stale lock %s (%s)", self.path,
                        f"pid {pid} on {host} is gone" if holder else "unreadable")
        os.remove(self.path)
        if not self._try_create():
            raise errors.WorkdirError(f"{os.path.dirname(self.path)} was taken by another run "
                                      "starting at the same time")
        return self

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        try:
            with open(self.path) as f:
                if f.read() == self._mine:
                    os.remove(self.path)
        except OSError:
            pass
