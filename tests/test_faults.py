"""Faults a user meets: stray or damaged checkpoint folders, config changes, bad
numbers, divergence, a second run, bad workdirs, garbled files.

Each case checks the error (type, exit code, one line naming the problem) and
that intact checkpoints and outputs are unchanged (hashes before and after).
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from competitive_mixtures import checkpointing, config as config_lib, errors, train
from competitive_mixtures import sampling
from competitive_mixtures import restore
from competitive_mixtures import workdir as workdir_lib
from conftest import load_config, tree_hashes

REPO = pathlib.Path(__file__).resolve().parents[1]


def _tiny(**overrides):
    c = load_config("synthetic", "tiny")
    for key, value in overrides.items():
        target = c
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    return c


def _step_hashes(workdir, step):
    return tree_hashes(os.path.join(workdir, "checkpoints", str(step)))


def _rounds(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line)["round"] for line in f if line.strip()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run of configs/synthetic.py:tiny (rounds 0..2, checkpoints 1..3)."""
    workdir = str(tmp_path_factory.mktemp("finished"))
    train.train_and_evaluate(_tiny(), workdir)
    return workdir


@pytest.fixture
def copy(finished, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(finished, workdir)
    return workdir


def _tool(name, *args):
    return subprocess.run([sys.executable, "-m", f"competitive_mixtures.{name}", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def _one_line_error(done, *words):
    """rc 2 (or as given by the error), no traceback, one `error:` line naming `words`."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr[-3000:]
    assert done.stderr.rstrip().endswith(lines[0])
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["empty_step_99", "step_without_item"])
def test_stray_step_folder_spares_intact_steps(copy, fault):
    """An empty step folder, or a step without its item, is set aside; the rest resumes."""
    checkpoints = os.path.join(copy, "checkpoints")
    if fault == "empty_step_99":
        os.makedirs(os.path.join(checkpoints, "99"))
        bad, intact, resumed_round = "99", (1, 2, 3), 3
    else:
        shutil.rmtree(os.path.join(checkpoints, "3", "default"))
        bad, intact, resumed_round = "3", (1, 2), 2
    before = {step: _step_hashes(copy, step) for step in intact}
    outputs = tree_hashes(copy, exclude=("checkpoints", "figures", "summary.json", "run.lock"))

    # The read-only reader restores the newest intact step and moves nothing.
    listing = sorted(os.listdir(checkpoints))
    _, _, state = restore.restore_run(copy)
    assert int(state.round) == resumed_round
    assert sorted(os.listdir(checkpoints)) == listing

    train.train_and_evaluate(_tiny(), copy)
    for step in intact:
        assert _step_hashes(copy, step) == before[step], step
    # Exactly the bad step was set aside, and no step of its number is left.
    damaged = [d for d in os.listdir(checkpoints) if d.startswith("damaged-")]
    assert len(damaged) == 1 and damaged[0].startswith(f"damaged-{bad}-"), damaged
    if fault == "empty_step_99":
        assert not os.path.exists(os.path.join(checkpoints, bad))
    else:  # Step 3 is written again by the resumed round, whole.
        assert os.path.isdir(os.path.join(checkpoints, bad, "default"))
    assert _rounds(copy) == [0, 1, 2]
    if fault == "empty_step_99":
        # Nothing was retrained: metrics, assignments and held-out data as they were.
        assert tree_hashes(copy, exclude=("checkpoints", "figures", "summary.json")) == outputs


def test_read_only_tools_leave_damaged_steps_in_place(copy):
    """All steps damaged: the reader fails in one line and renames nothing."""
    for step in (1, 2, 3):
        shutil.rmtree(os.path.join(copy, "checkpoints", str(step), "default"))
    before = tree_hashes(copy)
    with pytest.raises(errors.CheckpointError, match="left in place"):
        restore.restore_run(copy)
    assert tree_hashes(copy) == before


def test_shape_changing_config_is_refused_before_writing(copy):
    """K=3 -> 4 with allow_config_change: refused, naming the change; nothing written."""
    before = tree_hashes(copy)
    with pytest.raises(config_lib.ConfigError) as info:
        train.train_and_evaluate(_tiny(num_components=4), copy, allow_config_change=True)
    message = str(info.value)
    assert "num_components: 3 -> 4" in message and "shapes" in message, message
    assert "new --workdir" in message and "\n" not in message
    assert tree_hashes(copy) == before
    assert not any(d.startswith("damaged-") for d in os.listdir(os.path.join(copy,
                                                                              "checkpoints")))


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize("field,value,allowed", [
    ("model.learning_rate", float("nan"), "(0, 1]"),
    ("model.learning_rate", -1.0, "(0, 1]"),
    ("disc.learning_rate", float("inf"), "(0, 1]"),
    ("model.learning_rate", 10.0, "(0, 1]"),
    ("checkpoint.max_to_keep", 0, ">= 1"),
    ("eval.num_samples", 0, ">= 2"),
    ("model.b1", 1.0, "[0, 1)"),
    ("model.hidden", (50, 0), "each an integer >= 1"),
    ("num_components", True, ">= 1"),
])
def test_bad_numbers_fail_in_one_line_before_compute(tmp_path, field, value, allowed):
    workdir = str(tmp_path / "run")
    with pytest.raises(config_lib.ConfigError) as info:
        train.train_and_evaluate(_tiny(**{field: value}), workdir)
    message = str(info.value)
    assert "\n" not in message
    assert f"config.{field}={value!r}" in message and allowed in message, message
    assert not os.path.exists(workdir)


def test_every_numeric_field_has_a_range():
    """The rules table covers every int, float and tuple-of-int field of base_config."""

    def numeric(config, prefix=""):
        for key, value in config.items():
            if hasattr(value, "items"):
                yield from numeric(value, f"{prefix}{key}.")
            elif isinstance(value, (int, float, tuple)) and not isinstance(value, bool):
                yield prefix + key

    assert sorted(set(numeric(config_lib.base_config())) - set(config_lib.RANGES)) == []
    for name in ("synthetic", "mnist", "celeba", "gan_ring", "gan_grid", "celeba_gan"):
        config_lib.validate(load_config(name))


# -- divergence --------------------------------------------------------------------


def _poison(monkeypatch, components, from_round):
    """Makes the M-step of rounds >= from_round return NaN parameters for `components`."""
    original = train.run_m_step
    calls = {"round": 0}

    def poisoned(programs, carry, *args, **kwargs):
        carry, loss = original(programs, carry, *args, **kwargs)
        r = calls["round"]
        calls["round"] += 1
        if r >= from_round:
            mask = np.isin(np.arange(loss.shape[0]), components)
            params = jax.tree.map(
                lambda p: jnp.where(mask.reshape((-1,) + (1,) * (p.ndim - 1)), jnp.nan, p),
                carry.params)
            carry = carry.replace(params=params)
        return carry, loss

    monkeypatch.setattr(train, "run_m_step", poisoned)


def test_all_components_diverging_stops_the_run(tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")
    _poison(monkeypatch, [0, 1, 2], from_round=1)
    with pytest.raises(errors.DivergenceError, match="all 3 components diverged") as info:
        train.train_and_evaluate(_tiny(), workdir)
    assert info.value.exit_code == 3
    # Round 0 is kept (checkpoint 1, its record); the diverged round is not saved.
    assert sorted(s for s in os.listdir(os.path.join(workdir, "checkpoints"))
                  if s.isdigit()) == ["1"]
    assert _rounds(workdir) == [0]


def test_one_component_diverging_round_after_round_stops_the_run(tmp_path, monkeypatch):
    workdir = str(tmp_path / "run")
    _poison(monkeypatch, [1], from_round=0)
    with pytest.raises(errors.DivergenceError, match="component 1 diverged in 2 consecutive"):
        train.train_and_evaluate(_tiny(**{"divergence.max_consecutive_resets": 2}), workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["reset_components"] for r in records] == [[1]]


# -- the workdir ----------------------------------------------------------------------


def test_second_run_on_a_workdir_refuses(copy):
    """A lock held by a live process refuses the run and leaves the workdir as it was."""
    lock = os.path.join(copy, workdir_lib.LOCK)
    with open(lock, "w") as f:  # pid 1 is alive in every container and machine.
        json.dump({"pid": 1, "host": os.uname().nodename, "since": "earlier"}, f)
    before = tree_hashes(copy)
    with pytest.raises(errors.WorkdirError, match="in use by another run"):
        train.train_and_evaluate(_tiny(), copy)
    assert tree_hashes(copy) == before


def test_stale_lock_is_taken_over(copy):
    dead = subprocess.Popen(["true"])  # once it has exited, its pid names no process
    dead.wait()
    with open(os.path.join(copy, workdir_lib.LOCK), "w") as f:
        json.dump({"pid": dead.pid, "host": os.uname().nodename, "since": "earlier"}, f)
    summary = train.train_and_evaluate(_tiny(), copy)
    assert summary["rounds"] == 3
    assert not os.path.exists(os.path.join(copy, workdir_lib.LOCK))


@pytest.mark.parametrize("kind", ["empty", "file"])
def test_bad_workdir_is_refused(tmp_path, kind):
    path = ""
    if kind == "file":
        path = str(tmp_path / "a_file")
        pathlib.Path(path).write_text("not a directory")
    with pytest.raises(errors.WorkdirError):
        train.train_and_evaluate(_tiny(), path)


# -- garbled files ---------------------------------------------------------------------


def test_garbled_metrics_line_is_dropped_with_its_line_number(copy, caplog):
    path = os.path.join(copy, "metrics.jsonl")
    with open(path) as f:
        lines = f.readlines()
    lines[1] = lines[1][:20] + "\n"
    with open(path, "w") as f:
        f.writelines(lines)
    with caplog.at_level("WARNING"):
        summary = train.train_and_evaluate(_tiny(), copy)
    assert "metrics.jsonl line 2 is not a round record" in caplog.text
    assert summary["rounds"] == 3  # resumed from the checkpoint, nothing retrained
    assert _rounds(copy) == [0, 2]


def test_deleted_metrics_still_finishes(copy):
    os.remove(os.path.join(copy, "metrics.jsonl"))
    summary = train.train_and_evaluate(_tiny(), copy)
    assert summary["rounds"] == 3 and sum(summary["counts"]) == _tiny().data.num_points


def test_garbled_config_json_is_one_clear_error(copy):
    with open(os.path.join(copy, "config.json"), "w") as f:
        f.write("{ not json")
    before = tree_hashes(copy)
    with pytest.raises(errors.WorkdirError, match="config.json is not valid JSON"):
        train.train_and_evaluate(_tiny(), copy)
    with pytest.raises(errors.WorkdirError, match="config.json is not valid JSON"):
        restore.restore_run(copy)
    assert tree_hashes(copy) == before


def test_huge_sample_count_is_refused(finished):
    _, programs, state = restore.restore_run(finished)
    with pytest.raises(sampling.SampleBudgetError, match="ask for fewer samples"):
        sampling.draw_samples(programs.gen_model, state.gen, state.alpha, jax.random.PRNGKey(0),
                           10**13)


# -- the command line: one line, exit code 2 ----------------------------------------------


def test_main_reports_user_errors_in_one_line(copy, tmp_path):
    config = str(REPO / "configs" / "synthetic.py") + ":tiny"
    done = _tool("main", f"--config={config}", f"--workdir={tmp_path / 'a'}",
                 "--config.model.learning_rate=nan")
    assert done.returncode == 2
    _one_line_error(done, "config.model.learning_rate=nan", "(0, 1]")
    assert not (tmp_path / "a").exists()

    done = _tool("main", f"--config={config}", f"--workdir={tmp_path / 'b'}",
                 "--config.nonexistent=1")
    assert done.returncode == 2
    _one_line_error(done, "nonexistent")

    done = _tool("main", "--config=configs/no_such_file.py", f"--workdir={tmp_path / 'c'}")
    assert done.returncode == 2
    _one_line_error(done, "no_such_file")

    done = _tool("main", f"--config={config}", "--workdir=")
    assert done.returncode == 2
    _one_line_error(done, "--workdir is empty")


def test_main_all_damaged_checkpoints_one_line(copy):
    for step in (1, 2, 3):
        shutil.rmtree(os.path.join(copy, "checkpoints", str(step), "default"))
    done = _tool("main", f"--config={REPO / 'configs' / 'synthetic.py'}:tiny",
                 f"--workdir={copy}")
    assert done.returncode == 2
    _one_line_error(done, "no checkpoint", "could be restored")
    assert "Event loop is closed" not in done.stderr


def test_sample_tool_with_a_stray_step_writes_nothing_in_the_workdir(copy, tmp_path):
    os.makedirs(os.path.join(copy, "checkpoints", "99"))
    before = tree_hashes(copy)
    listing = sorted(os.listdir(os.path.join(copy, "checkpoints")))
    done = _tool("sample", f"--workdir={copy}", "--num_samples=10",
                 f"--output={tmp_path / 's.npz'}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(os.listdir(os.path.join(copy, "checkpoints"))) == listing
    assert tree_hashes(copy) == before
    assert "Event loop is closed" not in done.stderr


def test_checkpointer_reader_never_creates_the_directory(tmp_path):
    reader = checkpointing.Checkpointer(str(tmp_path / "none"), read_only=True)
    assert reader.restore_latest({}) is None
    assert not (tmp_path / "none").exists()
