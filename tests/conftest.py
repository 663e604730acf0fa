"""Shared fixtures: config loading and a per-session JAX compilation cache."""

import pathlib

import jax
import pytest

from competitive_mixtures import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


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
