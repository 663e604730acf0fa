"""A user's own data: array files, image folders, other tfds image sets, configs/own.py."""

import importlib.util
import os

import chex
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from competitive_mixtures import Mixture
from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures import train
from competitive_mixtures import workdir as workdir_lib
from competitive_mixtures.data import images, own
from competitive_mixtures.errors import ConfigError, DataError
from competitive_mixtures.metrics import clustering
from conftest import REPO, load_config, run_tool


def blobs(n=600, centres=((0.0, 0.0), (30.0, 0.0), (0.0, 30.0)), seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(centres), n)
    return (np.asarray(centres)[label] + rng.normal(size=(n, 2))).astype(np.float32), label


def write_pngs(root, images_by_name, mode="L"):
    for name, pixels in images_by_name.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(pixels, mode).save(path)


def digits_like(n, side=8, seed=0):
    """`n` uint8 grey images `[side, side]`, class c has its bright square at row 2c."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 3
    x = rng.integers(0, 30, (n, side, side)).astype(np.uint8)
    for i, c in enumerate(label):
        x[i, 2 * c:2 * c + 2, 2:6] = 250
    return x, label


# -- array files ------------------------------------------------------------------


def test_npy_points_are_split_and_kept_float32(tmp_path):
    x, _ = blobs(100)
    np.save(tmp_path / "p.npy", x.astype(np.float64))
    data = own.array(str(tmp_path / "p.npy"), num_heldout=20, seed=1)
    chex.assert_shape(data.x, (80, 2))
    chex.assert_shape(data.heldout_x, (20, 2))
    assert data.x.dtype == np.float32 and (data.label == -1).all()
    # Every point lands once, in one of the two parts.
    both = np.concatenate([data.x, data.heldout_x])
    np.testing.assert_array_equal(np.sort(both, axis=0), np.sort(x, axis=0))
    again = own.array(str(tmp_path / "p.npy"), num_heldout=20, seed=1)
    np.testing.assert_array_equal(again.x, data.x)


def test_npz_labels_and_test_split(tmp_path):
    x, label = blobs(100)
    tx, tlabel = blobs(30, seed=5)
    np.savez(tmp_path / "p.npz", x=x, label=label, x_test=tx, label_test=tlabel)
    data = own.array(str(tmp_path / "p.npz"), num_heldout=25, num_points=60, seed=0)
    chex.assert_shape(data.x, (60, 2))
    chex.assert_shape(data.heldout_x, (25, 2))
    # Held-out points come from the test split, with their labels.
    rows = [np.flatnonzero((tx == p).all(axis=1))[0] for p in data.heldout_x]
    np.testing.assert_array_equal(data.heldout_label, tlabel[rows])
    rows = [np.flatnonzero((x == p).all(axis=1))[0] for p in data.x]
    np.testing.assert_array_equal(data.label, label[rows])


def test_image_arrays_get_a_channel_axis(tmp_path):
    x, label = digits_like(50)
    np.savez(tmp_path / "d.npz", x=x, label=label)
    data = own.array(str(tmp_path / "d.npz"), num_heldout=10)
    chex.assert_shape(data.x, (40, 8, 8, 1))
    assert data.x.dtype == np.uint8


@pytest.mark.parametrize("make, words", [
    (lambda: {"x": np.zeros(10, np.float32)}, "shape (10,)"),
    (lambda: {"x": np.zeros((0, 2), np.float32)}, "no points"),
    (lambda: {"x": np.array([[0.0, 1.0], [np.nan, 2.0], [np.inf, 0.0]])}, "2 of the 3 points"),
    (lambda: {"x": np.zeros((4, 2)), "label": np.zeros(5, int)}, "labels for 4 points"),
    (lambda: {"x": np.zeros((4, 2)), "label": np.zeros(4)}, "labels are integers"),
    (lambda: {"x": np.zeros((4, 8, 8), np.float32)}, "images are uint8"),
    (lambda: {"x": np.zeros((4, 8, 8, 2), np.uint8)}, "2 channels"),
    (lambda: {"points": np.zeros((4, 2))}, "no array named 'x'"),
])
def test_bad_arrays_are_one_clear_error(tmp_path, make, words):
    np.savez(tmp_path / "bad.npz", **make())
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")) as info:
        own.array(str(tmp_path / "bad.npz"), num_heldout=1)
    assert str(tmp_path / "bad.npz") in str(info.value)


def test_missing_garbled_and_foreign_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        own.array(str(tmp_path / "none.npy"))
    (tmp_path / "p.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="not a .npy or .npz"):
        own.array(str(tmp_path / "p.csv"))
    x, _ = blobs(100)
    np.savez(tmp_path / "p.npz", x=x)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "p.npz").read_bytes()[:300])
    with pytest.raises(DataError, match="cannot be read"):
        own.array(str(tmp_path / "cut.npz"))


# -- image folders -------------------------------------------------------------------


def test_folder_labels_from_subfolders_and_threads_give_the_same(tmp_path):
    x, label = digits_like(30)
    write_pngs(tmp_path, {f"{['a', 'b', 'c'][c]}/{i:03d}.png": x[i]
                          for i, c in enumerate(label)})
    files, found, names = own.list_images(str(tmp_path))
    assert names == ["a", "b", "c"] and len(files) == 30
    data = own.image_folder(str(tmp_path), num_heldout=6, seed=0, workers=3)
    one = own.image_folder(str(tmp_path), num_heldout=6, seed=0, workers=1)
    np.testing.assert_array_equal(data.x, one.x)
    chex.assert_shape(data.x, (24, 8, 8, 1))
    # Each decoded image is the one written, with its folder's label.
    for pixels, c in zip(np.concatenate([data.x, data.heldout_x]),
                         np.concatenate([data.label, data.heldout_label])):
        i = next(i for i in range(30) if (x[i] == pixels[..., 0]).all())
        assert label[i] == c


def test_folder_train_test_layout_resize_and_colour(tmp_path):
    x, _ = digits_like(12, side=16)
    write_pngs(tmp_path, {f"train/{i}.png": x[i] for i in range(8)})
    write_pngs(tmp_path, {f"test/{i}.jpg": x[i] for i in range(8, 12)})
    colour = np.stack([x[0]] * 3, axis=-1)
    write_pngs(tmp_path, {"train/rgb.png": colour}, mode="RGB")
    data = own.image_folder(str(tmp_path), image_size=8, num_heldout=10, seed=0)
    chex.assert_shape(data.x, (9, 8, 8, 3))
    chex.assert_shape(data.heldout_x, (4, 8, 8, 3))
    # A grey image joins colour ones as three equal channels.
    assert all((img[..., 0] == img[..., 2]).all() for img in data.x)


@pytest.mark.parametrize("layout", ["flat", "train_test"])
def test_folder_decodes_only_the_images_it_keeps(tmp_path, monkeypatch, layout):
    x, label = digits_like(40)
    names = {i: f"{['a', 'b', 'c'][c]}/{i:03d}.png" for i, c in enumerate(label)}
    if layout == "train_test":
        names = {i: ("train/" if i < 30 else "test/") + name for i, name in names.items()}
    write_pngs(tmp_path, {name: x[i] for i, name in names.items()})
    # What splitting every decoded image gives.
    read = {part: own.list_images(os.path.join(tmp_path, part)) for part in
            (["train", "test"] if layout == "train_test" else [""])}
    every = {part: own.decode_files(files, 0) for part, (files, _, _) in read.items()}
    train_part = "train" if layout == "train_test" else ""
    test = (every["test"], read["test"][1]) if layout == "train_test" else (None, None)
    expected = own.split("image_folder", every[train_part], read[train_part][1], *test,
                         num_heldout=6, num_points=5, seed=3)
    decoded = []
    decode_one = own._decode_one
    monkeypatch.setattr(own, "_decode_one",
                        lambda file, size: decoded.append(file) or decode_one(file, size))
    data = own.image_folder(str(tmp_path), num_heldout=6, num_points=5, seed=3, workers=1)
    assert len(decoded) == 11  # 5 training and 6 held-out images, of 40.
    for name in ("x", "label", "heldout_x", "heldout_label"):
        np.testing.assert_array_equal(getattr(data, name), getattr(expected, name))


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        own.image_folder(str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="no image files"):
        own.image_folder(str(tmp_path / "empty"))
    x, _ = digits_like(4, side=8)
    write_pngs(tmp_path / "sizes", {"a.png": x[0], "b.png": np.zeros((9, 9), np.uint8)})
    with pytest.raises(DataError, match="different sizes.*data.image_size"):
        own.image_folder(str(tmp_path / "sizes"), num_heldout=1)
    assert own.image_folder(str(tmp_path / "sizes"), image_size=8, num_heldout=1).x.shape == (
        1, 8, 8, 1)
    write_pngs(tmp_path / "broken", {"a.png": x[0], "b.png": x[1]})
    (tmp_path / "broken" / "b.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="b.png: cannot be decoded"):
        own.image_folder(str(tmp_path / "broken"), num_heldout=1)
    write_pngs(tmp_path / "mixed", {"a.png": x[0], "cls/b.png": x[1]})
    with pytest.raises(DataError, match="both directly in it and in subfolders"):
        own.image_folder(str(tmp_path / "mixed"), num_heldout=1)


# -- tfds image sets ------------------------------------------------------------------


def test_any_tfds_image_set_by_name(tmp_path, monkeypatch):
    # The mocks carry no split list: without a test split the held-out points are carved
    # out of 'train'; with one (as a prepared fashion_mnist has) they come from it.
    with tfds.testing.mock_data(num_examples=30, policy=tfds.testing.MockPolicy.USE_CODE):
        resized = images.tfds_images("cifar10", data_dir=str(tmp_path), image_size=16,
                                     num_heldout=10, seed=0)
        monkeypatch.setattr(images, "_test_split", lambda name, data_dir: "test")
        data = images.tfds_images("fashion_mnist", data_dir=str(tmp_path), image_size=0,
                                  num_heldout=10, seed=0)
    chex.assert_shape(data.x, (30, 28, 28, 1))
    chex.assert_shape(data.heldout_x, (10, 28, 28, 1))
    assert data.label.min() >= 0 and data.label.max() <= 9 and len(np.unique(data.label)) > 1
    chex.assert_shape(resized.x, (20, 16, 16, 3))
    assert resized.x.dtype == np.uint8 and resized.label.max() <= 9


# -- configs/own.py and whole runs ------------------------------------------------------


def test_config_picks_models_from_the_data(tmp_path):
    x, _ = blobs(1000)
    np.save(tmp_path / "p.npy", x)
    c = load_config("own", f"path={tmp_path / 'p.npy'},k=3")
    assert (c.data.name, c.model.family, c.num_components) == ("array", "vae", 3)
    assert c.data.num_heldout == 100 and c.balance.min_points == 900 // 80
    scaled = data_lib.to_model_space(x, c)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(np.sqrt(scaled.var(axis=0).mean()), own_spread(), rtol=1e-4)
    np.testing.assert_allclose(data_lib.to_user_space(scaled, c), x, rtol=1e-5, atol=1e-4)

    d, label = digits_like(40, side=28)
    write_pngs(tmp_path / "imgs", {f"{i}.png": d[i] for i in range(40)})
    c = load_config("own", f"path={tmp_path / 'imgs'}")
    assert (c.data.name, c.model.family, c.num_components) == ("image_folder", "conv_vae", 10)
    assert tuple(c.model.decoder_channels) == (64, 32, 16) and c.data.image_size == 0
    assert c.disc.binarize and c.model.likelihood == "bernoulli"
    config_lib.validate(c)
    with pytest.raises(ConfigError, match="path=FILE_OR_DIR"):
        load_config("own", "k=3")


def own_spread():
    """configs/own.py's SPREAD, read from the file (configs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("own_config", REPO / "configs" / "own.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SPREAD


def test_validate_knows_images_from_the_data_shape():
    c = config_lib.base_config()
    c.data.name, c.data.path = "array", "x.npy"
    config_lib.validate(c)                    # vectors or images: not known yet
    with pytest.raises(ConfigError, match="model.family"):
        config_lib.validate(c, 100, (8, 8, 1))
    c.data.name, c.model.family = "image_folder", "conv_vae"
    c.data.shift = (1.0, 2.0)
    with pytest.raises(ConfigError, match="data.shift"):
        config_lib.validate(c)
    c.data.shift, c.data.path = (), ""
    with pytest.raises(ConfigError, match="data.path"):
        config_lib.validate(c)


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """A tiny competitive run on a user's 2-D `.npz` of three far-apart blobs (in units
    of 30, so that the run's scaling matters)."""
    root = tmp_path_factory.mktemp("own")
    x, label = blobs(3000)
    np.savez(root / "blobs.npz", x=x, label=label)
    workdir = str(root / "run")
    train.train_and_evaluate(load_config("own", f"path={root / 'blobs.npz'},k=3,tiny"), workdir)
    return workdir, x, label


def test_own_run_predicts_and_samples_in_the_users_units(own_run, tmp_path):
    workdir, x, label = own_run
    m = Mixture.load(workdir)
    assert m.config.data.scale != 1.0
    owner = m.predict(x)
    assert clustering.clustering_scores(owner, label, 3)["nmi"] > 0.95
    dataset = data_lib.load(m.config)
    np.testing.assert_array_equal(m.predict(dataset.x, space="model"),
                                  m.predict(data_lib.to_user_space(dataset.x, m.config)))
    samples, component = m.sample(2000, seed=0)
    scaled, same = m.sample(2000, seed=0, space="model")
    np.testing.assert_array_equal(component, same)
    np.testing.assert_array_equal(samples, data_lib.to_user_space(scaled, m.config))
    # In the user's units: centred where the data are (about (10, 10)), not at the
    # scaled data's centre (0, 0).
    assert np.linalg.norm(samples.mean(axis=0) - x.mean(axis=0)) < 3.0
    assert np.linalg.norm(scaled.mean(axis=0)) < 1.0
    done = run_tool("predict", f"--workdir={workdir}", "--input=training",
                    f"--output={tmp_path / 'p.npz'}")
    assert done.returncode == 0, done.stderr[-2000:]
    run = workdir_lib.read_npz(workdir, "assignments.npz", ("assignment",))
    with np.load(tmp_path / "p.npz") as f:
        assert np.mean(f["owner"] != run["assignment"]) < 0.01


def test_main_gives_one_line_for_bad_own_data(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([[0.0, 1.0], [np.nan, 1.0]] * 50))
    done = run_tool("main", f"--config={load_config.__globals__['REPO'] / 'configs/own.py'}"
                    f":path={tmp_path / 'nan.npy'}", f"--workdir={tmp_path / 'run'}")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "NaN or inf" in lines[-1], done.stderr[-2000:]
