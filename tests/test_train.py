"""End to end: train_and_evaluate's files, resuming, damaged checkpoints, competition."""

import glob
import io
import json
import os
import shutil

import chex
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_file_loader

from competitive_mixtures import checkpointing, config as config_lib, data as data_lib
from competitive_mixtures import sharding, train
from competitive_mixtures import summary as summary_lib
from competitive_mixtures import workdir as workdir_lib
from conftest import load_config, tree_hashes

def _tiny(**overrides):
    c = load_config("synthetic", "tiny")
    for key, value in overrides.items():
        c[key] = value
    return c


def _read_metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return f.read()


def _assignment(workdir):
    with np.load(os.path.join(workdir, "assignments.npz")) as z:
        return z["assignment"]


def _restore(config, workdir):
    """The newest state in `workdir`, restored the way train_and_evaluate does."""
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    state = train.init_state(config, programs, jnp.asarray(dataset.x, jnp.float32))
    checkpointer = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        return checkpointer.restore_latest(
            checkpointing.abstract(state, sharding.replicated(programs.mesh)))
    finally:
        checkpointer.close()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted run of configs/synthetic.py:tiny (num_rounds=2): (workdir, summary)."""
    workdir = str(tmp_path_factory.mktemp("full"))
    return workdir, train.train_and_evaluate(_tiny(), workdir)


def test_workdir_files(finished):
    """config.json, metrics.jsonl, npz files, checkpoints, figures and summary.json."""
    workdir, summary = finished
    config = _tiny()
    n, k = config.data.num_points, config.num_components
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f) == json.loads(config.to_json())

    records = [json.loads(line) for line in _read_metrics(workdir).splitlines()]
    assert [r["round"] for r in records] == [0, 1, 2]
    for r in records:
        for key in ("round", "counts", "alphas", "gen_loss", "seconds", "moved"):
            assert key in r, key
        assert 0.0 <= r["moved"] <= 1.0
        assert sum(r["counts"]) == n and len(r["counts"]) == k
        np.testing.assert_allclose(sum(r["alphas"]), 1.0, rtol=1e-5)
        np.testing.assert_allclose(r["alphas"], np.array(r["counts"]) / n, rtol=1e-5)
        assert len(r["gen_loss"]) == k and all(np.isfinite(r["gen_loss"]))
        assert r["seconds"] > 0
    assert records[0]["pretrain"] and not records[1]["pretrain"]

    dataset = data_lib.load(config)
    with np.load(os.path.join(workdir, "assignments.npz")) as z:
        assert z["assignment"].shape == (n,) and z["assignment"].dtype == np.int32
        assert z["label"].shape == (n,) and z["label"].dtype == np.int32
        np.testing.assert_array_equal(z["label"], dataset.label)
        np.testing.assert_array_equal(np.bincount(z["assignment"], minlength=k),
                                      records[-1]["counts"])
    with np.load(os.path.join(workdir, "heldout.npz")) as z:
        assert z["x"].shape == (config.data.num_heldout, 2)
        np.testing.assert_array_equal(z["x"], dataset.heldout_x)
        np.testing.assert_array_equal(z["label"], dataset.heldout_label)

    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                   if s.isdigit())
    assert steps == [1, 2, 3]
    pngs = glob.glob(os.path.join(workdir, "figures", "*.png"))
    assert len(pngs) >= 1 and all(os.path.getsize(p) > 1000 for p in pngs)
    # The paper's Figs. 7-9: samples after pre-training beside those after the last round.
    assert os.path.getsize(os.path.join(workdir, "figures", "before_after.png")) > 1000
    with np.load(os.path.join(workdir, summary_lib.PRETRAINED_SAMPLES)) as z:
        assert z["x"].shape[1] == 2 and len(z["x"]) == len(z["component"])
        assert set(np.unique(z["component"])) == set(range(k))

    with open(os.path.join(workdir, "summary.json")) as f:
        saved = json.load(f)
    assert saved["rounds"] == 3
    assert np.isfinite(saved["kde"]["log_likelihood"])
    assert saved["kde"]["log_likelihood"] == pytest.approx(summary["kde"]["log_likelihood"])
    assert saved["clustering"]["nmi"] == pytest.approx(records[-1]["clustering"]["nmi"])


def test_final_state_restores(finished):
    """The newest checkpoint restores to the final state (round 3, saved owners)."""
    workdir, _ = finished
    state = _restore(_tiny(), workdir)
    assert int(state.round) == 3
    np.testing.assert_array_equal(np.asarray(state.owner), _assignment(workdir))


def test_resume_equals_uninterrupted(finished, tmp_path):
    """num_rounds=1 then num_rounds=2 in one workdir equals one num_rounds=2 run."""
    full, _ = finished
    workdir = str(tmp_path / "resumed")
    train.train_and_evaluate(_tiny(num_rounds=1), workdir)
    assert len(_read_metrics(workdir).splitlines()) == 2
    train.train_and_evaluate(_tiny(), workdir, allow_config_change=True)
    records = [json.loads(line) for line in _read_metrics(workdir).splitlines()]
    assert [r["round"] for r in records] == [0, 1, 2]
    np.testing.assert_array_equal(_assignment(workdir), _assignment(full))
    resumed, uninterrupted = _restore(_tiny(), workdir), _restore(_tiny(), full)
    assert int(resumed.round) == int(uninterrupted.round) == 3
    np.testing.assert_array_equal(np.asarray(resumed.owner), np.asarray(uninterrupted.owner))
    chex.assert_trees_all_close(resumed.gen.params, uninterrupted.gen.params, rtol=1e-5,
                                atol=1e-6)


def test_a_run_stopped_inside_an_m_step_resumes_from_it(tmp_path, monkeypatch):
    """With M-step checkpoints after every chunk, a run stopped in the middle of
    round 1's M-step carries on from its newest one (not from the round's start)
    and ends where the uninterrupted run does; the finished run keeps none."""
    config = _tiny(steps_per_chunk=8)
    config.checkpoint.m_step_every_s = 1e-9
    full, stopped = str(tmp_path / "full"), str(tmp_path / "stopped")
    train.train_and_evaluate(config, full)
    assert not glob.glob(os.path.join(full, "m_step_checkpoints", "*"))

    save, restore = checkpointing.RoundProgress.save, checkpointing.RoundProgress.restore
    saved, restored = [], []

    def save_then_stop(self, round_index, gen, progress):
        save(self, round_index, gen, progress)
        saved.append((round_index, progress.offset))
        if round_index == 1 and progress.offset == 16:
            raise KeyboardInterrupt

    def restore_and_note(self, round_index, *args):
        result = restore(self, round_index, *args)
        restored.append((round_index, None if result is None else result[1].offset))
        return result

    monkeypatch.setattr(checkpointing.RoundProgress, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, stopped)
    assert (0, 8) in saved and saved[-1] == (1, 16)
    assert os.listdir(os.path.join(stopped, "m_step_checkpoints")) == ["1"]
    monkeypatch.setattr(checkpointing.RoundProgress, "save", save)
    monkeypatch.setattr(checkpointing.RoundProgress, "restore", restore_and_note)
    train.train_and_evaluate(config, stopped)
    assert restored[0] == (1, 16) and restored[1:] == [(2, None)]
    assert not glob.glob(os.path.join(stopped, "m_step_checkpoints", "*"))

    records = [json.loads(line) for line in _read_metrics(stopped).splitlines()]
    uninterrupted = [json.loads(line) for line in _read_metrics(full).splitlines()]
    assert [r["round"] for r in records] == [0, 1, 2]
    for r, u in zip(records, uninterrupted):
        np.testing.assert_allclose(r["gen_loss"], u["gen_loss"], rtol=1e-5)
        assert r["counts"] == u["counts"]
    np.testing.assert_array_equal(_assignment(stopped), _assignment(full))
    chex.assert_trees_all_close(_restore(config, stopped).gen.params,
                                _restore(config, full).gen.params, rtol=1e-5, atol=1e-6)


def test_same_run_twice_is_bit_identical(finished, tmp_path):
    """The same config run twice in one process gives the same bits: parameters,
    owners and every logged number except wall-clock times. The second run also
    writes TensorBoard summaries and a profiler trace, which change nothing."""
    full, _ = finished
    workdir = str(tmp_path / "twice")
    watched = _tiny()
    watched.log.tensorboard = True
    watched.profile = True
    train.train_and_evaluate(watched, workdir)
    np.testing.assert_array_equal(_assignment(workdir), _assignment(full))
    chex.assert_trees_all_equal(_restore(_tiny(), workdir).gen.params,
                                _restore(_tiny(), full).gen.params)

    def numbers(path):
        records = [json.loads(line) for line in _read_metrics(path).splitlines()]
        return [{k: v for k, v in r.items() if "seconds" not in k} for r in records]

    assert numbers(workdir) == numbers(full)
    _check_summaries(workdir)


def _check_summaries(workdir):
    """Every round's numbers (those of metrics.jsonl) and a samples picture at step =
    round in WORKDIR/tensorboard; a profiler trace of round 1 in WORKDIR/profile."""
    files = glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    assert len(files) == 1, files
    scalars, images = {}, {}
    for event in event_file_loader.LegacyEventFileLoader(files[0]).Load():
        for value in event.summary.value:
            if value.HasField("image"):
                images[event.step] = value.image
            else:
                scalars[(value.tag, event.step)] = value.simple_value
    records = [json.loads(line) for line in _read_metrics(workdir).splitlines()]
    assert sorted(images) == [r["round"] for r in records] == [0, 1, 2]
    for r in records:
        step = r["round"]
        for j, loss in enumerate(r["gen_loss"]):
            assert scalars[(f"gen_loss/{j}", step)] == pytest.approx(loss, rel=1e-6)
        for j, alpha in enumerate(r["alphas"]):
            assert scalars[(f"alphas/{j}", step)] == pytest.approx(alpha, rel=1e-6)
        assert scalars[("clustering/nmi", step)] == pytest.approx(r["clustering"]["nmi"],
                                                                  rel=1e-6)
        assert ("round", step) not in scalars
    picture = np.asarray(Image.open(io.BytesIO(images[2].encoded_image_string)))
    assert picture.shape == (images[2].height, images[2].width, 3)
    assert picture.std() > 0  # Not a blank picture.
    traces = glob.glob(os.path.join(workdir, "profile", "**", "*.xplane.pb"), recursive=True)
    assert len(traces) == 1, traces


def test_second_call_does_not_train(finished, tmp_path):
    """Rerunning a finished workdir leaves metrics.jsonl and the checkpoints as they were."""
    full, _ = finished
    workdir = str(tmp_path / "again")
    shutil.copytree(full, workdir)
    before = _read_metrics(workdir)
    steps = tree_hashes(os.path.join(workdir, "checkpoints"))
    summary = train.train_and_evaluate(_tiny(), workdir)
    assert _read_metrics(workdir) == before
    assert tree_hashes(os.path.join(workdir, "checkpoints")) == steps
    assert summary["rounds"] == 3


def _damage(step_dir, how):
    files = [f for f in glob.glob(os.path.join(step_dir, "**"), recursive=True)
             if os.path.isfile(f)]
    assert files
    for f in files:
        if how == "delete":
            os.remove(f)
        elif os.sep + "d" + os.sep in f or f.endswith("manifest.ocdbt"):
            with open(f, "wb") as out:
                out.write(b"not a checkpoint")


# Orbax's async reader may log an 'Event loop is closed' error for a corrupt file.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("how", ["delete", "corrupt"])
def test_damaged_newest_checkpoint_falls_back(finished, tmp_path, how):
    """A damaged newest step is skipped: restore gives step 2, and a rerun redoes round 2."""
    full, _ = finished
    workdir = str(tmp_path / "damaged")
    shutil.copytree(full, workdir)
    _damage(os.path.join(workdir, "checkpoints", "3"), how)
    state = _restore(_tiny(), workdir)
    assert int(state.round) == 2
    train.train_and_evaluate(_tiny(), workdir)
    assert [json.loads(line)["round"] for line in _read_metrics(workdir).splitlines()] == [
        0, 1, 2]
    np.testing.assert_array_equal(_assignment(workdir), _assignment(full))


def test_rerun_after_damaged_checkpoint_replaces_it(finished, tmp_path):
    """After falling back past a damaged step, the retrained round is checkpointed again."""
    full, _ = finished
    workdir = str(tmp_path / "damaged")
    shutil.copytree(full, workdir)
    _damage(os.path.join(workdir, "checkpoints", "3"), "delete")
    train.train_and_evaluate(_tiny(), workdir)
    before = _read_metrics(workdir)
    assert int(_restore(_tiny(), workdir).round) == 3
    train.train_and_evaluate(_tiny(), workdir)
    assert _read_metrics(workdir) == before


def test_changed_config_is_refused(finished):
    """A workdir whose config.json differs refuses the run, unless allow_config_change."""
    workdir, _ = finished
    before = _read_metrics(workdir)
    with open(os.path.join(workdir, "config.json")) as f:
        saved_config = f.read()
    with pytest.raises(config_lib.ConfigError) as info:
        train.train_and_evaluate(_tiny(num_rounds=3), workdir)
    assert "num_rounds: 2 -> 3" in str(info.value)
    assert "allow_config_change" in str(info.value)
    assert _read_metrics(workdir) == before
    with open(os.path.join(workdir, "config.json")) as f:
        assert f.read() == saved_config
    # allow_change accepts the new config (and names the change), writing nothing.
    changes = workdir_lib.Workdir(workdir).config_changes(_tiny(num_rounds=3), allow_change=True)
    assert changes == ["num_rounds: 2 -> 3"]
    with open(os.path.join(workdir, "config.json")) as f:
        assert f.read() == saved_config


def test_competition_recovers_three_modes(tmp_path):
    """K=3 on the 3-mode set: the final owners match the true modes (NMI >= 0.9)."""
    c = load_config("synthetic", "modes=3")
    c.data.num_points = 6000
    c.data.num_heldout = 500
    c.pretrain_epochs = 3
    c.num_rounds = 3
    c.epochs_per_round = 2
    c.disc.epochs = 1
    c.batch_size = 32
    c.disc.batch_size = 32
    c.balance.min_points = 50
    c.steps_per_chunk = 64
    c.eval.num_samples = 500
    assert c.num_components == 3
    summary = train.train_and_evaluate(c, str(tmp_path / "run"))
    nmi = summary["clustering"]["nmi"]
    print(f"competition NMI {nmi:.4f}")
    assert nmi >= 0.9, f"NMI {nmi:.3f} after {c.num_rounds} rounds"
    assert min(summary["counts"]) > 0.2 * c.data.num_points


def test_equal_step_budget_does_not_follow_the_share():
    """'epochs' (the paper): steps grow with a component's set; 'equal': every component
    with points takes the steps of N/K points; pre-training keeps 'epochs'."""
    c = _tiny()
    sizes = np.array([1000, 100, 0])
    np.testing.assert_array_equal(train.m_step_counts(c, sizes, 2, 1, 3000), [63, 7, 0])
    c.step_budget = "equal"
    np.testing.assert_array_equal(train.m_step_counts(c, sizes, 2, 1, 3000), [63, 63, 0])
    np.testing.assert_array_equal(train.m_step_counts(c, sizes, 2, 0, 3000), [63, 7, 0])
