"""The Python interface to a trained run (`Mixture`), the `predict` tool, and damaged runs."""

import os
import shutil

import numpy as np
import pytest

from competitive_mixtures import Mixture
from competitive_mixtures import data as data_lib
from competitive_mixtures import errors
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.metrics import clustering
from competitive_mixtures.mixture import InputError
from conftest import run_tool, load_config, tree_hashes


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def test_load_gives_the_run_and_its_samples_and_owners_equal_the_tools(run, tmp_path):
    m = Mixture.load(run)
    config = load_config("synthetic", "tiny")
    assert m.num_components == config.num_components and m.data_shape == (2,)
    assert m.config.seed == config.seed
    assert m.alphas.shape == (3,) and abs(float(m.alphas.sum()) - 1) < 1e-6
    assert m.summary["kde"] and [r["round"] for r in m.history] == list(
        range(config.num_rounds + 1))

    x, component = m.sample(500, seed=3)
    assert x.shape == (500, 2) and component.dtype == np.int32
    done = run_tool("sample", f"--workdir={run}", "--num_samples=500", "--seed=3",
                 f"--output={tmp_path / 's.npz'}")
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(tmp_path / "s.npz") as f:
        np.testing.assert_array_equal(f["x"], x)
        np.testing.assert_array_equal(f["component"], component)

    with np.load(os.path.join(run, "heldout.npz")) as f:
        heldout, label = f["x"], f["label"]
    np.save(tmp_path / "points.npy", heldout)
    done = run_tool("predict", f"--workdir={run}", f"--input={tmp_path / 'points.npy'}",
                 f"--output={tmp_path / 'p.npz'}", "--block=700")
    assert done.returncode == 0, done.stderr[-2000:]
    owner = m.predict(heldout)
    with np.load(tmp_path / "p.npz") as f:
        np.testing.assert_array_equal(f["owner"], owner)
        # Blocks of 700 points batch them differently: equal up to rounding.
        np.testing.assert_allclose(f["log_ratio"], m.log_ratios(heldout), rtol=1e-5, atol=1e-5)
        assert f["elbo"].shape == (len(heldout), 3)
        np.testing.assert_array_equal(f["log_normaliser"], m.log_normaliser())
    # The held-out points fall to their modes' components as the training points do.
    trained = clustering.clustering_scores(
        workdir_lib.read_npz(run, "assignments.npz", ("assignment",))["assignment"],
        workdir_lib.read_npz(run, "assignments.npz", ("label",))["label"], 3)["nmi"]
    assert clustering.clustering_scores(owner, label, 3)["nmi"] >= trained - 0.05


def test_predict_gives_the_training_points_the_owners_of_the_assignment_pass(run, tmp_path):
    """The training loop's assigner and `predict` are separate paths to the same owners."""
    m = Mixture.load(run)
    x = data_lib.load(m.config).x
    run_owner = workdir_lib.read_npz(run, "assignments.npz", ("assignment",))["assignment"]
    owner = m.predict(x)
    assert np.mean(owner == run_owner) >= 0.999
    # Without the dataset normaliser the owners are not those of the run (the test can fail).
    raw = np.argmax(m.log_ratios(x), axis=1)
    assert np.mean(raw == run_owner) < np.mean(owner == run_owner)
    done = run_tool("predict", f"--workdir={run}", "--input=training",
                 f"--output={tmp_path / 't.npz'}")
    assert done.returncode == 0, done.stderr[-2000:]
    differ = int(np.sum(owner != run_owner))
    assert (f"against the run's assignments.npz: {differ} of {len(x)} training points have "
            "another owner") in done.stdout


def test_points_of_the_wrong_shape_or_with_nan_are_refused(run, tmp_path):
    m = Mixture.load(run)
    with pytest.raises(InputError, match=r"points of shape \(3,\)"):
        m.predict(np.zeros((4, 3), np.float32))
    with pytest.raises(InputError, match="1 of the 2 points hold NaN"):
        m.predict(np.array([[0.0, 1.0], [np.nan, 0.0]]))
    np.testing.assert_array_equal(m.predict(np.zeros(2)), m.predict(np.zeros((1, 2))))
    np.save(tmp_path / "bad.npy", np.zeros((5, 4), np.float32))
    done = run_tool("predict", f"--workdir={run}", f"--input={tmp_path / 'bad.npy'}",
                 f"--output={tmp_path / 'p.npz'}")
    assert done.returncode == 2 and "points of shape (4,)" in done.stderr
    assert not (tmp_path / "p.npz").exists()


def _damage(path, how):
    if how == "missing":
        os.remove(path)
    else:  # Cut to 100 bytes, as a full disk or a stopped copy leaves it.
        with open(path, "rb") as f:
            head = f.read(100)
        with open(path, "wb") as f:
            f.write(head)


@pytest.mark.parametrize("name", ["heldout.npz", "assignments.npz", "config.json"])
@pytest.mark.parametrize("how", ["cut", "missing"])
def test_a_damaged_run_file_is_one_clear_error_and_the_run_is_untouched(run, tmp_path, name,
                                                                        how):
    copy = str(tmp_path / "run")
    shutil.copytree(run, copy)
    _damage(os.path.join(copy, name), how)
    before = tree_hashes(copy)
    with pytest.raises(errors.UserError, match=name):
        Mixture.load(copy)
    assert tree_hashes(copy) == before


@pytest.mark.parametrize("tool, name, how, args", [
    ("evaluate", "heldout.npz", "cut", ()),
    ("sample", "assignments.npz", "missing", ("--num_samples=10",)),
    ("predict", "config.json", "cut", ("--input=training",)),
])
def test_the_tools_give_one_line_and_exit_code_2_for_a_damaged_run(run, tmp_path, tool, name,
                                                                   how, args):
    copy = str(tmp_path / "run")
    shutil.copytree(run, copy)
    _damage(os.path.join(copy, name), how)
    before = tree_hashes(copy)
    output = [f"--output={tmp_path / 'out.npz'}"] if tool != "evaluate" else []
    done = run_tool(tool, f"--workdir={copy}", *args, *output)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-1500:]
    assert name in lines[0] and "Traceback" not in done.stderr
    assert tree_hashes(copy) == before


@pytest.mark.parametrize("name", ["summary.json", "metrics.jsonl"])
@pytest.mark.parametrize("how", ["garbled", "missing"])
def test_damaged_summary_or_metrics_fail_where_they_are_read(run, tmp_path, name, how):
    """The records of a run are read on demand (`summary`, `history`): a damaged one fails
    there, naming the file, and sampling and owners still work."""
    copy = str(tmp_path / "run")
    shutil.copytree(run, copy)
    path = os.path.join(copy, name)
    if how == "missing":
        os.remove(path)
    else:
        with open(path, "wb") as f:
            f.write(b"\xff\xfe garbled \x00" * 10)
    m = Mixture.load(copy)
    with pytest.raises(workdir_lib.RunFileError, match=name):
        m.summary if name == "summary.json" else m.history  # pylint: disable=pointless-statement
    assert m.sample(10)[0].shape == (10, 2) and m.predict(np.zeros((3, 2))).shape == (3,)
