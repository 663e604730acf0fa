"""Shared fixtures: config loading and a per-session JAX compilation cache.

The tests compile hundreds of small programs and run each briefly, so XLA's
optimisation passes are off (`JAX_DISABLE_MOST_OPTIMIZATIONS`, inherited by the
subprocesses the tests start): compilation is most of the suite's time, and
every comparison in it holds on unoptimised code too. Export
JAX_DISABLE_MOST_OPTIMIZATIONS=0 to run the suite on optimised code.
"""

import os
import pathlib

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax  # noqa: E402 (after the environment it reads)
import pytest

from competitive_mixtures import config as config_lib  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# Also where jax was imported before this file (by a plugin).
jax.config.update("jax_disable_most_optimizations",
                  os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"].lower() not in ("0", "false"))


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Persists compiled programs for the session: later runs of one config reuse them."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield


def load_config(name: str, arg: str | None = None):
    """`configs/NAME.py:ARG` loaded the way `config_flags` does."""
    return config_lib.load_config_file(name, arg, str(REPO / "configs"))
