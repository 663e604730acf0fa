"""Experiments that run several configurations and collect their results."""

from absl import flags

from competitive_mixtures import config as config_lib

CONFIG_DIR = flags.DEFINE_string("config_dir", config_lib.CONFIG_DIR,
                                 "Folder holding the experiment configs (configs/).")
