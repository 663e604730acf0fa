"""The config contract: every field a run may set, and the checks made before training.

Experiment files in `configs/` start from `base_config()` and override fields;
`validate` rejects a config with a field `base_config` does not know, or with a
value outside its allowed range, before any work is done. The package imports
no JAX model code, so a config file loads in a fraction of a second:

  fields.py   `base_config`, every field grouped by concern;
  choices.py  the names and bounds fields may take;
  checks.py   `Range`, `RANGES` and `validate`, one check per group of fields;
  files.py    loading config files, their arguments, overrides, `config.json`.
"""

from competitive_mixtures.config.checks import RANGES, Range, validate
from competitive_mixtures.config.choices import *  # noqa: F401,F403
from competitive_mixtures.config.fields import base_config
from competitive_mixtures.config.files import (CONFIG_DIR, apply_overrides, diff, from_dict,
                                               load_config_file, parse_arg, shrink)
from competitive_mixtures.errors import ConfigError

__all__ = ["CONFIG_DIR", "ConfigError", "RANGES", "Range", "apply_overrides", "base_config",
           "diff", "from_dict", "load_config_file", "parse_arg", "shrink", "validate"]
