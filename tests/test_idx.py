"""MNIST's original IDX files: reading, the checks on them, and the config that trains on them.

Every file here is written by the test itself (`write_mnist`), so the suite
needs no download.
"""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from competitive_mixtures import config as config_lib
from competitive_mixtures import data as data_lib
from competitive_mixtures.data import idx
from competitive_mixtures.metrics import digit_classifier
from conftest import REPO, load_config


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """`array` (uint8) in the IDX format: big-endian magic, one uint32 per dimension, values."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_mnist(directory, train=40, test=20, dot_names=False, gz=(), seed=0):
    """Four IDX files of random 28x28 digits (labels cycle 0..9); returns the arrays.

    `dot_names` spells the files 'train-images.idx3-ubyte'; the stems in `gz`
    ('train-images', ...) are gzipped with '.gz' appended.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", train), ("test", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        arrays[split] = (images, labels)
        for what, array, magic in (("images", images, idx.IMAGES_MAGIC),
                                   ("labels", labels, idx.LABELS_MAGIC)):
            stem = idx.FILES[(split, what)]
            kind = "idx3" if what == "images" else "idx1"
            name = f"{stem}.{kind}-ubyte" if dot_names else f"{stem}-{kind}-ubyte"
            raw = idx_bytes(array, magic)
            if stem in gz:
                name, raw = name + ".gz", gzip.compress(raw)
            with open(os.path.join(directory, name), "wb") as f:
                f.write(raw)
    return arrays


@pytest.mark.parametrize("dot_names", [False, True])
def test_reads_the_four_files_with_either_spelling(tmp_path, dot_names):
    arrays = write_mnist(tmp_path, dot_names=dot_names)
    images, labels = idx.read_split(str(tmp_path), "test")
    assert images.dtype == np.uint8 and images.shape == (20, 28, 28, 1)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(images[..., 0], arrays["test"][0])
    np.testing.assert_array_equal(labels, arrays["test"][1])


def test_gzipped_files_read_as_the_raw_ones(tmp_path):
    raw_dir, gz_dir = tmp_path / "raw", tmp_path / "gz"
    raw_dir.mkdir()
    gz_dir.mkdir()
    write_mnist(raw_dir)
    write_mnist(gz_dir, gz=("train-images", "t10k-labels"))
    assert os.path.exists(gz_dir / "train-images-idx3-ubyte.gz")
    for split in ("train", "test"):
        for a, b in zip(idx.read_split(str(raw_dir), split), idx.read_split(str(gz_dir), split)):
            np.testing.assert_array_equal(a, b)


def test_dataset_trains_on_the_training_digits_and_holds_out_the_test_digits(tmp_path):
    arrays = write_mnist(tmp_path)
    data = idx.mnist_files(str(tmp_path), seed=3)
    assert data.x.shape == (40, 28, 28, 1) and data.heldout_x.shape == (20, 28, 28, 1)
    # Held out: every test digit, in file order; training: every training digit, shuffled.
    np.testing.assert_array_equal(data.heldout_x[..., 0], arrays["test"][0])
    np.testing.assert_array_equal(data.heldout_label, arrays["test"][1])
    pairs = sorted((image.tobytes(), int(label)) for image, label in zip(data.x[..., 0],
                                                                         data.label))
    assert pairs == sorted((image.tobytes(), int(label)) for image, label in zip(*arrays["train"]))
    assert not np.array_equal(data.x[..., 0], arrays["train"][0])
    # Subsamples and a process's share.
    assert idx.mnist_files(str(tmp_path), num_points=16, num_heldout=5).x.shape[0] == 16
    assert idx.mnist_files(str(tmp_path), num_heldout=5).heldout_x.shape[0] == 5
    whole = idx.mnist_files(str(tmp_path), seed=3)
    part = idx.mnist_files(str(tmp_path), seed=3, share=lambda n: (10, 30))
    np.testing.assert_array_equal(part.x, whole.x[10:30])
    assert part.first == 10 and part.num_points == 40


def test_config_loads_the_files_through_data_load(tmp_path):
    write_mnist(tmp_path)
    config = load_config("mnist", "full,small")
    config.data.data_dir = str(tmp_path)
    config.data.num_points = 0
    data = data_lib.load(config)
    assert data.name == "mnist_files" and data.num_points == 40


def _truncate(path, keep):
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[:keep])


@pytest.mark.parametrize("damage, message", [
    ("missing", "t10k-labels-idx1-ubyte[.gz] not found"),
    ("truncated", "truncated or damaged"),
    ("header", "shorter than an IDX header"),
    ("magic", "magic number 2049, expected 2051"),
    ("gzip", "not a readable gzip file"),
    ("gzip_garbled", "not a readable gzip file"),
    ("count", "20 test images but 19 labels"),
])
def test_a_bad_file_is_one_clear_error(tmp_path, damage, message):
    write_mnist(tmp_path, gz=("t10k-images",) if damage.startswith("gzip") else ())
    images = str(tmp_path / "t10k-images-idx3-ubyte")
    labels = str(tmp_path / "t10k-labels-idx1-ubyte")
    if damage == "missing":
        os.remove(labels)
    elif damage == "truncated":
        _truncate(images, 16 + 28 * 28 * 20 - 1)
    elif damage == "header":
        _truncate(images, 10)
    elif damage == "magic":  # A labels file where the images belong.
        with open(images, "wb") as f:
            f.write(idx_bytes(np.zeros(20, np.uint8), idx.LABELS_MAGIC))
    elif damage == "gzip":
        _truncate(images + ".gz", 100)
    elif damage == "gzip_garbled":  # Whole length, flipped bytes inside the stream.
        with open(images + ".gz", "rb") as f:
            raw = bytearray(f.read())
        raw[10:30] = bytes(b ^ 0xFF for b in raw[10:30])
        with open(images + ".gz", "wb") as f:
            f.write(bytes(raw))
    elif damage == "count":
        with open(labels, "wb") as f:
            f.write(idx_bytes(np.zeros(19, np.uint8), idx.LABELS_MAGIC))
    with pytest.raises(idx.IDXError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        idx.mnist_files(str(tmp_path))
    # Every message names the four files and where they come from.
    assert "t10k-images-idx3-ubyte" in str(e.value) and "mirror" in str(e.value)


def test_wrong_image_size_and_non_digit_labels_are_refused(tmp_path):
    write_mnist(tmp_path)
    with open(tmp_path / "train-images-idx3-ubyte", "wb") as f:
        f.write(idx_bytes(np.zeros((40, 32, 32), np.uint8), idx.IMAGES_MAGIC))
    with pytest.raises(idx.IDXError, match=r"images of \(32, 32\)"):
        idx.mnist_files(str(tmp_path))
    write_mnist(tmp_path)
    with open(tmp_path / "train-labels-idx1-ubyte", "wb") as f:
        f.write(idx_bytes(np.full(40, 12, np.uint8), idx.LABELS_MAGIC))
    with pytest.raises(idx.IDXError, match="label 12 is not a digit"):
        idx.mnist_files(str(tmp_path))


def test_the_full_preset_needs_a_data_dir():
    config = load_config("mnist", "full")
    with pytest.raises(config_lib.ConfigError, match="data.data_dir"):
        config_lib.validate(config)
    with pytest.raises(config_lib.ConfigError, match="'offline' and 'full'"):
        load_config("mnist", "full,offline")


def test_main_exits_with_code_2_and_one_line_for_a_missing_file(tmp_path):
    write_mnist(tmp_path)
    os.remove(tmp_path / "train-images-idx3-ubyte")
    result = subprocess.run(
        [sys.executable, "-m", "competitive_mixtures.main", "--config=configs/mnist.py:full,small",
         f"--config.data.data_dir={tmp_path}", f"--workdir={tmp_path / 'run'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "train-images-idx3-ubyte[.gz] not found" in errors[0]
    assert "Traceback" not in result.stderr


def test_digit_classifier_trains_on_the_training_files_and_scores_the_test_files(tmp_path):
    write_mnist(tmp_path, train=64, test=20)
    x, y, hx, hy = digit_classifier.training_data("mnist_files", str(tmp_path))
    assert x.shape == (64, 28, 28, 1) and hx.shape == (20, 28, 28, 1)
    np.testing.assert_array_equal(np.sort(hy), np.sort(np.arange(20) % 10))
    _, info = digit_classifier.train_and_save(str(tmp_path / "c.npz"), "mnist_files",
                                              str(tmp_path), epochs=1)
    assert info["source"] == "mnist_files" and info["num_train"] == 64
    assert info["num_heldout"] == 20


def test_the_cached_classifier_of_other_files_is_another_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write_mnist(one, seed=0)
    write_mnist(two, train=50, seed=1)
    path = digit_classifier.default_path("mnist_files", str(one))
    assert path.startswith(str(tmp_path / "cache")) and path.endswith(".npz")
    assert path == digit_classifier.default_path("mnist_files", str(one))
    assert path != digit_classifier.default_path("mnist_files", str(two))
