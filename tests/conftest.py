"""Shared fixtures: config loading and a per-session JAX compilation cache."""

import importlib.util
import pathlib

import jax
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Persists compiled programs for the session: later runs of one config reuse them."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield


def load_config(name: str, arg: str | None = None):
    """`configs/NAME.py:ARG` loaded the way `config_flags` does, via importlib."""
    path = REPO / "configs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)
