"""Config files and run records: loading `configs/*.py`, their arguments, overrides,
`config.json` round trips and differences."""

from __future__ import annotations

import ast
from collections.abc import Sequence
import importlib.util
import os
from typing import Any

import ml_collections

from competitive_mixtures.config.checks import _get
from competitive_mixtures.config.fields import base_config
from competitive_mixtures.errors import ConfigError

# The experiment configs of a source checkout: configs/ beside the package.
CONFIG_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "configs"))


def load_config_file(name: str, arg: str | None = None,
                     config_dir: str = CONFIG_DIR) -> ml_collections.ConfigDict:
    """`configs/NAME.py:ARG` loaded as `--config=configs/NAME.py:ARG` loads it."""
    path = os.path.join(config_dir, f"{name}.py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; pass --config_dir=<checkout>/configs")
    spec = importlib.util.spec_from_file_location(f"configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def shrink(c: ml_collections.ConfigDict, *, num_points: int, num_heldout: int, rounds: int,
           pretrain_epochs: int, epochs_per_round: int, batch_size: int, min_points: int,
           steps_per_chunk: int, eval_samples: int, disc_epochs: int | None = 1,
           assign_batch: int | None = None) -> ml_collections.ConfigDict:
    """A config cut down to a smoke run (the `tiny` / `small` config arguments).

    Sets the data sizes, the schedule, one batch size for the components and
    the discriminators, the balancing threshold, the chunk and the number of
    evaluation samples; `disc_epochs` / `assign_batch` None keep the config's.
    """
    c.data.num_points, c.data.num_heldout = num_points, num_heldout
    c.num_rounds, c.pretrain_epochs, c.epochs_per_round = rounds, pretrain_epochs, epochs_per_round
    c.batch_size = c.disc.batch_size = batch_size
    c.balance.min_points = min_points
    c.steps_per_chunk = steps_per_chunk
    c.eval.num_samples = eval_samples
    if disc_epochs is not None:
        c.disc.epochs = disc_epochs
    if assign_batch is not None:
        c.assign.batch_size = assign_batch
    return c


def from_dict(values: dict) -> ml_collections.ConfigDict:
    """A config read back from a run's `config.json`.

    Fields the run's version did not have yet keep their `base_config()`
    defaults, so runs made before a field was added can still be restored.
    """
    config = base_config()

    def merge(target: ml_collections.ConfigDict, source: dict) -> None:
        for key, value in source.items():
            default = target.get(key)
            if isinstance(default, ml_collections.ConfigDict) and isinstance(value, dict):
                merge(default, value)
            elif isinstance(default, tuple) and isinstance(value, list):
                target[key] = tuple(value)
            else:
                target[key] = value

    merge(config, values)
    return config


def parse_arg(arg: str | None, allowed: set[str], where: str) -> dict[str, Any]:
    """A config file's argument, big_vision style: 'modes=5,paper' -> {'modes': '5', 'paper': True}.

    Raises ValueError naming `where` and the allowed keys for an unknown key.
    """
    out: dict[str, Any] = {}
    for part in filter(None, (arg or "").split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip() if value else True
    unknown = set(out) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown argument(s) {sorted(unknown)}; "
                         f"allowed: {sorted(allowed)}")
    return out


def apply_overrides(config: ml_collections.ConfigDict,
                    items: Sequence[str]) -> ml_collections.ConfigDict:
    """Sets `FIELD=VALUE` strings on `config` in place, as `--config.FIELD=VALUE` would.

    A value is read as a Python literal ('24', '0.05', '(8, 16)', 'True') or,
    failing that, as a string; 'true' / 'false' are booleans. The field must
    exist and keep its type (an int field takes no '0.5'). Raises ConfigError
    naming the item otherwise.
    """
    for item in items:
        field, sep, text = item.partition("=")
        field, text = field.strip(), text.strip()
        parent_path, _, leaf = field.rpartition(".")
        try:
            parent = _get(config, parent_path) if parent_path else config
            known = (isinstance(parent, ml_collections.ConfigDict) and leaf in parent
                     and not isinstance(parent[leaf], ml_collections.ConfigDict))
        except (KeyError, TypeError):  # A missing field, or a path through a value.
            known = False
        if not sep or not known:
            raise ConfigError(f"override {item!r}: expected FIELD=VALUE with FIELD a field of "
                              "the config (not a group of fields), e.g. 'epochs_per_round=24' "
                              "or 'disc.input_noise=0.05'.")
        if text.lower() in ("true", "false"):
            value: Any = text.lower() == "true"
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
        if isinstance(value, list):
            value = tuple(value)
        try:
            parent[leaf] = value
        except TypeError as error:
            raise ConfigError(f"override {item!r}: {field} is {type(parent[leaf]).__name__}, "
                              f"not {type(value).__name__} ({error}).") from None
    return config


def diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Names of the fields whose values differ between two config dicts."""
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += diff(a, b, prefix + key + ".")
        elif a != b:
            names.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return names
