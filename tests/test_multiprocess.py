"""Two real processes on localhost (CPU collectives over gloo) vs one process.

Each of the two processes owns one CPU device and loads only the training
points that device holds; the reference is one process owning two simulated
devices, so both runs compute over the same 2-device mesh and must agree
exactly.
"""

import os
import pathlib
import socket
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from competitive_mixtures import restore
from conftest import xla_flags

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "competitive_mixtures.main",
       "--config=configs/synthetic.py:tiny", "--config.num_rounds=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = xla_flags(devices)
    return env


def test_two_processes_equal_one(tmp_path):
    multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
    port = _free_port()
    procs = [subprocess.Popen(
        RUN + [f"--workdir={multi}", f"--coordinator_address=127.0.0.1:{port}",
               "--num_processes=2", f"--process_id={i}", "--cpu_collectives=gloo"],
        cwd=REPO, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    reference = subprocess.run(RUN + [f"--workdir={single}"], cwd=REPO, env=_env(2),
                               capture_output=True, text=True, timeout=300)
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert reference.returncode == 0, reference.stderr[-3000:]

    a = np.load(os.path.join(multi, "assignments.npz"))["assignment"]
    b = np.load(os.path.join(single, "assignments.npz"))["assignment"]
    np.testing.assert_array_equal(a, b)
    # Only process 0 writes the run's files; both write the checkpoint together.
    assert "process 1 of 2" in outputs[1] or "process 1 of 2" in outputs[0]
    # Process 0 loaded only the half of the 3000 training points its device
    # holds (process 1 logs warnings only); the other half came from process 1.
    assert "process 0 holds training points [0, 1500)" in outputs[0]
    _, _, state_multi = restore.restore_run(multi)
    _, _, state_single = restore.restore_run(single)
    assert int(state_multi.round) == int(state_single.round) == 2
    chex.assert_trees_all_close(jax.device_get(state_multi.gen.params),
                                jax.device_get(state_single.gen.params), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state_multi.owner, state_single.owner)
