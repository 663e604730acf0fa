"""Shared fixtures: config loading and a per-session JAX compilation cache.

The tests compile hundreds of small programs and run each briefly, so
compilation is most of the suite's time, and every comparison in it holds on
unoptimised code too. So XLA's optimisation passes are off
(`JAX_DISABLE_MOST_OPTIMIZATIONS`), and XLA:CPU emits its fusions with its
classic emitters, which compile these programs 2-3x faster than the newer
fusion emitters (a tiny conv VAE's M-step: 2.3 s against 6.3 s). Both settings
reach the subprocesses the tests start through the environment. Export
JAX_DISABLE_MOST_OPTIMIZATIONS=0 to run the suite on optimised code with XLA's
default emitters.
"""

import glob
import hashlib
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
FAST_COMPILATION = os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"].lower() not in ("0", "false")
# Read when the XLA backend starts (the first computation, after this file).
TEST_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false" if FAST_COMPILATION else ""
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

import jax  # noqa: E402 (after the environment it reads)
import pytest

from competitive_mixtures import config as config_lib  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# Also where jax was imported before this file (by a plugin).
jax.config.update("jax_disable_most_optimizations", FAST_COMPILATION)


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Persists compiled programs for the session: later runs of one config reuse them."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield


def pytest_collection_modifyitems(items):
    """Tests marked `slow` (a minute or more each) are handed out first, so that the two
    workers share the short files at the end instead of one running a long file last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def xla_flags(devices: int, default_emitters: bool = False) -> str:
    """XLA_FLAGS for a subprocess with `devices` simulated CPU devices; with
    `default_emitters`, XLA's own fusion emitters instead of the classic ones."""
    extra = "" if default_emitters else TEST_XLA_FLAGS
    return f"--xla_force_host_platform_device_count={devices} {extra}".strip()


def load_config(name: str, arg: str | None = None):
    """`configs/NAME.py:ARG` loaded the way `config_flags` does."""
    return config_lib.load_config_file(name, arg, str(REPO / "configs"))


def tree_hashes(root, exclude=()) -> dict[str, str]:
    """{relative path: sha256} of every file under `root`, but those whose relative path
    starts with one of `exclude`."""
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "**"), recursive=True)):
        rel = os.path.relpath(path, root)
        if os.path.isfile(path) and not any(rel.startswith(e) for e in exclude):
            with open(path, "rb") as f:
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m competitive_mixtures.NAME ARGS...` in the repository, its output captured."""
    return subprocess.run([sys.executable, "-m", f"competitive_mixtures.{name}", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> str:
    """The workdir of a finished `configs/synthetic.py:tiny` run (one per test module)."""
    from competitive_mixtures import train  # pylint: disable=import-outside-toplevel

    workdir = str(tmp_path_factory.mktemp("run"))
    train.train_and_evaluate(load_config("synthetic", "tiny"), workdir)
    return workdir
