"""Competitive GANs on the 5x5 grid of Gaussians: configs/gan_ring.py with data=grid.

Usage: --config=configs/gan_grid.py[:ARGS] with the ARGS of configs/gan_ring.py
(k, strategy, loss, tiny); K defaults to 25, one component per mode.
"""

import os

from competitive_mixtures import config as config_lib


def get_config(arg=None):
    return config_lib.load_config_file("gan_ring", ",".join(filter(None, ["data=grid", arg])),
                                       os.path.dirname(os.path.abspath(__file__)))
