"""A user's own data: an array file of points or images, or a folder of images.

  * `array(path)`: a `.npy` file, or a `.npz` file holding the points as `x`
    and optionally their `label` (for the clustering scores) and a test split
    `x_test` (with `label_test`). Points are float `[N, D]` vectors or uint8
    images `[N, H, W]` / `[N, H, W, C]` (C = 1 or 3).
  * `image_folder(path)`: PNG and JPEG files under a directory, decoded by
    threads. Files in subfolders take the subfolder's name as their label
    (its index among the sorted names). A folder with `train/` and `test/`
    subfolders gives its test split from `test/`.

Held-out points come from the test split when there is one; otherwise the
last `num_heldout` points of a seeded permutation are carved out. Every
problem with the input ends in one `DataError` line (exit code 2) that names
the file and what is wrong.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import time
import zipfile

import numpy as np
from absl import logging

from competitive_mixtures.data import images as images_lib
from competitive_mixtures.data.synthetic import Dataset
from competitive_mixtures.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ARRAY_EXTENSIONS = (".npy", ".npz")
# The keys of an `.npz` file.
NPZ_POINTS, NPZ_LABEL, NPZ_TEST, NPZ_TEST_LABEL = "x", "label", "x_test", "label_test"
# Pillow modes decoded as one grey channel; every other mode becomes RGB.
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


# ---------------------------------------------------------------------------
# Checks.


def nonfinite_rows(x: np.ndarray) -> tuple[int, int]:
    """(how many points of `x` `[N, ...]` hold NaN or inf, the row of the first; -1 if none)."""
    bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
    return int(bad.sum()), int(np.argmax(bad)) if bad.any() else -1


def check_points(x: np.ndarray, where: str) -> np.ndarray:
    """`x` as float32 `[N, D]` points or uint8 `[N, H, W, C]` images, or DataError."""
    x = np.asarray(x)
    expected = ("expected float points [N, D] or uint8 images [N, H, W] / [N, H, W, C] "
                "with C = 1 or 3")
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{where}: an array of shape {x.shape}; {expected}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: no points (shape {x.shape})")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{where}: an array of dtype {x.dtype}; {expected}")
    if x.ndim == 2:
        x = x.astype(np.float32)
        bad, first = nonfinite_rows(x)
        if bad:
            raise DataError(f"{where}: {bad} of the {len(x)} points hold NaN or inf (the "
                            f"first at row {first}); drop or fill them")
        return x
    if x.dtype != np.uint8:
        raise DataError(f"{where}: images of dtype {x.dtype}; images are uint8 (0..255): "
                        "scale and cast them, or reshape to [N, D] to train on vectors")
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[-1] not in (1, 3):
        raise DataError(f"{where}: images with {x.shape[-1]} channels (shape {x.shape}); "
                        f"{expected}")
    return x


def check_label(label, num_points: int, where: str) -> np.ndarray:
    """int32 `[N]` labels, or DataError when they do not match the points."""
    if label is None:
        return np.full((num_points,), -1, np.int32)
    label = np.asarray(label)
    if label.ndim != 1 or label.shape[0] != num_points:
        raise DataError(f"{where}: {label.shape} labels for {num_points} points; give one "
                        "label per point, or none")
    if not np.issubdtype(label.dtype, np.integer):
        raise DataError(f"{where}: labels of dtype {label.dtype}; labels are integers")
    return label.astype(np.int32)


# ---------------------------------------------------------------------------
# Splitting.


def choose(name: str, num: int, num_test: int | None, num_heldout: int,
           num_points: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Which of `num` points (and `num_test` test points, if there is a test split) a
    `Dataset` keeps, before any is read: (the held-out indices, sorted, into the test
    points or, without them, carved out of the points; the training indices, in a
    seeded order, subsampled to `num_points`)."""
    rng = np.random.default_rng(seed)
    if num_test is not None:
        held = np.sort(rng.permutation(num_test)[:min(num_heldout, num_test)])
        train = np.arange(num)
    else:
        if not 0 < num_heldout < num:
            raise DataError(f"{name}: {num} points cannot spare {num_heldout} held-out "
                            f"ones; set data.num_heldout below {num}")
        perm = rng.permutation(num)
        held = np.sort(perm[num - num_heldout:])
        train = perm[:num - num_heldout]
    if num_points is not None:
        if not 0 < num_points <= train.size:
            raise DataError(f"{name}: data.num_points={num_points}, but {train.size} training "
                            "points are left after the held-out ones")
        train = train[:num_points]
    return held, rng.permutation(train)


def _check_test_shape(name: str, x: np.ndarray, test_x: np.ndarray) -> None:
    if test_x.shape[1:] != x.shape[1:]:
        raise DataError(f"{name}: test points of shape {test_x.shape[1:]} but training "
                        f"points of shape {x.shape[1:]}")


def split(name: str, x: np.ndarray, label: np.ndarray, test_x: np.ndarray | None,
          test_label: np.ndarray | None, num_heldout: int, num_points: int | None,
          seed: int) -> Dataset:
    """A `Dataset` of the points, split as `choose` says."""
    if test_x is not None:
        _check_test_shape(name, x, test_x)
    held, train = choose(name, len(x), None if test_x is None else len(test_x), num_heldout,
                         num_points, seed)
    heldout_x, heldout_label = (x, label) if test_x is None else (test_x, test_label)
    return Dataset(x=x[train], label=label[train], heldout_x=heldout_x[held],
                   heldout_label=heldout_label[held], name=name)


# ---------------------------------------------------------------------------
# Array files.


def read_array(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                   np.ndarray | None]:
    """`(x, label, test_x, test_label)` of a `.npy` / `.npz` file, checked."""
    if not path:
        raise DataError("data.path is empty; give the .npy or .npz file of your points")
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file; data.path names a .npy or .npz file of points")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in ARRAY_EXTENSIONS:
        raise DataError(f"{path}: not a .npy or .npz file; save the points with numpy.save "
                        "or numpy.savez")
    try:
        if suffix == ".npy":
            arrays = {NPZ_POINTS: np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot be read as {suffix} ({error}); save the points "
                        "again with numpy") from None
    if NPZ_POINTS not in arrays:
        raise DataError(f"{path}: no array named {NPZ_POINTS!r} (found {sorted(arrays)}); "
                        f"save the points with numpy.savez(path, x=points[, label=labels])")
    x = check_points(arrays[NPZ_POINTS], path)
    label = check_label(arrays.get(NPZ_LABEL), len(x), f"{path} ({NPZ_LABEL!r})")
    test_x = test_label = None
    if NPZ_TEST in arrays:
        test_x = check_points(arrays[NPZ_TEST], f"{path} ({NPZ_TEST!r})")
        test_label = check_label(arrays.get(NPZ_TEST_LABEL), len(test_x),
                                 f"{path} ({NPZ_TEST_LABEL!r})")
    return x, label, test_x, test_label


def array(path: str, num_heldout: int = 10000, num_points: int | None = None,
          seed: int = 0) -> Dataset:
    """The points of an array file (see the module docstring), split."""
    x, label, test_x, test_label = read_array(path)
    return split("array", x, label, test_x, test_label, num_heldout, num_points, seed)


# ---------------------------------------------------------------------------
# Folders of images.


def list_images(path: str) -> tuple[list[str], np.ndarray, list[str]]:
    """The image files under `path` (sorted), their labels `[n]` and the label names.

    Files directly in `path` have label -1; files anywhere below a subfolder
    take that subfolder's index among the sorted names.
    """
    files, labels, names = [], [], []
    entries = sorted(os.listdir(path))
    subfolders = [e for e in entries if os.path.isdir(os.path.join(path, e))]
    for entry in entries:
        if entry.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, entry)):
            files.append(os.path.join(path, entry))
            labels.append(-1)
    for name in subfolders:
        found = []
        for root, dirs, walked in os.walk(os.path.join(path, name)):
            dirs.sort()
            found += [os.path.join(root, f) for f in sorted(walked)
                      if f.lower().endswith(IMAGE_EXTENSIONS)]
        if found:
            files += found
            labels += [len(names)] * len(found)
            names.append(name)
    if files and names and labels[0] == -1:
        raise DataError(f"{path}: image files both directly in it and in subfolders "
                        f"({', '.join(names[:3])}); put every image in a class subfolder, "
                        "or none")
    return files, np.asarray(labels, np.int32), names


def _decode_one(file: str, image_size: int) -> np.ndarray:
    """One image file as uint8 `[H, W, 1 or 3]`, resized to `image_size` when it is > 0."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            image = image.convert("L" if image.mode in _GREY_MODES else "RGB")
            if image_size and image.size != (image_size, image_size):
                # Bilinear, antialiased when shrinking (Pillow widens its support).
                image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, np.uint8)
    except Exception as error:  # pylint: disable=broad-except
        raise DataError(f"{file}: cannot be decoded as an image ({type(error).__name__}: "
                        f"{error}); remove or replace it") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def decode_files(files: list[str], image_size: int, workers: int | None = None,
                 what: str = "images") -> np.ndarray:
    """uint8 `[n, H, W, C]` of image files, decoded by `workers` threads in order.

    Grey images join colour ones as three equal channels. Without `image_size`
    every file must have the same size.
    """
    workers = images_lib.decode_workers() if workers is None else workers
    start, last_log = time.time(), 0
    out, first_file = [], None
    block = 256 * workers
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for begin in range(0, len(files), block):
            chunk = files[begin:begin + block]
            for file, pixels in zip(chunk, pool.map(_decode_one, chunk,
                                                    [image_size] * len(chunk))):
                if first_file is None:
                    first_file, first_shape = file, pixels.shape
                if pixels.shape[:2] != first_shape[:2]:
                    raise DataError(
                        f"images of different sizes: {first_shape[1]}x{first_shape[0]} "
                        f"({first_file}) and {pixels.shape[1]}x{pixels.shape[0]} ({file}); "
                        "set data.image_size to resize them all to one square size")
                out.append(pixels)
            done = begin + len(chunk)
            if done - last_log >= max(1, len(files) // 10) or done == len(files):
                last_log = done
                logging.info("%s: decoded %d/%d images (%.0f%%, %.1fs)", what, done,
                             len(files), 100.0 * done / len(files), time.time() - start)
    channels = max(p.shape[-1] for p in out)
    return np.stack([np.repeat(p, channels // p.shape[-1], axis=-1) for p in out])


def image_folder(path: str, image_size: int = 0, num_heldout: int = 10000,
                 num_points: int | None = None, seed: int = 0,
                 workers: int | None = None) -> Dataset:
    """The images under `path` (see the module docstring), decoded and split."""
    if not path:
        raise DataError("data.path is empty; give the folder of your images")
    if not os.path.isdir(path):
        raise DataError(f"{path}: no such folder; data.path names a folder of PNG or JPEG "
                        "files")
    splits = {s: os.path.join(path, s) for s in ("train", "test")}
    has_test = all(os.path.isdir(p) for p in splits.values())
    parts = {}
    for part, folder in (splits.items() if has_test else [("train", path)]):
        files, label, names = list_images(folder)
        if not files:
            raise DataError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it "
                            "or its subfolders")
        parts[part] = files, label, names
    if has_test and parts["train"][2] != parts["test"][2]:
        raise DataError(f"{path}: train/ and test/ have different class subfolders "
                        f"({parts['train'][2]} and {parts['test'][2]})")
    files, label, _ = parts["train"]
    test_files, test_label = parts["test"][:2] if has_test else (None, None)
    # Only the files the dataset keeps are decoded.
    held, train = choose("image_folder", len(files), len(test_files) if has_test else None,
                         num_heldout, num_points, seed)
    start = time.time()
    if has_test:
        test_x = decode_files([test_files[i] for i in held], image_size, workers,
                              f"{splits['test']} (held-out)")
        needed = np.unique(train)
    else:
        needed = np.unique(np.concatenate([held, train]))
    x = decode_files([files[i] for i in needed], image_size, workers, path)
    if has_test and test_x.shape[-1] != x.shape[-1]:
        # Grey images join colour ones as three equal channels, across splits too.
        x, test_x = (np.repeat(a, 3 // a.shape[-1], axis=-1) for a in (x, test_x))
    count = len(x) + (len(test_x) if has_test else 0)
    elapsed = max(time.time() - start, 1e-9)
    logging.info("%s: %d images decoded in %.1f s (%.0f images/s, %d threads)", path, count,
                 elapsed, count / elapsed,
                 images_lib.decode_workers() if workers is None else workers)
    at = functools.partial(np.searchsorted, needed)  # A file's row in `x`.
    if has_test:
        _check_test_shape("image_folder", x, test_x)
        heldout_x, heldout_label = test_x, test_label[held]
    else:
        heldout_x, heldout_label = x[at(held)], label[held]
    return Dataset(x=x[at(train)], label=label[train], heldout_x=heldout_x,
                   heldout_label=heldout_label, name="image_folder")


# ---------------------------------------------------------------------------
# What a config needs to know before training.


def describe(path: str) -> dict:
    """What `configs/own.py` needs of the data at `path` (a file or a folder), cheaply.

    Returns {'source': 'array' | 'image_folder', 'num_points', 'point_shape' (of one
    point; an image folder's first image), 'has_test', and for vector points 'mean'
    `[D]` and 'spread' (the root mean per-dimension variance, over all points)}.
    """
    if os.path.isdir(path):
        train = os.path.join(path, "train")
        has_test = os.path.isdir(train) and os.path.isdir(os.path.join(path, "test"))
        files, _, _ = list_images(train if has_test else path)
        if not files:
            raise DataError(f"{path}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it "
                            "or its subfolders")
        first = _decode_one(files[0], 0)
        return dict(source="image_folder", num_points=len(files), point_shape=first.shape,
                    has_test=has_test)
    x, _, test_x, _ = read_array(path)
    info = dict(source="array", num_points=len(x), point_shape=x.shape[1:],
                has_test=test_x is not None)
    if x.ndim == 2:
        info["mean"] = x.mean(axis=0, dtype=np.float64)
        info["spread"] = float(np.sqrt(x.var(axis=0, dtype=np.float64).mean()))
    return info
