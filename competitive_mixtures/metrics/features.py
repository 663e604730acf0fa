"""Feature extractors for image-quality metrics, and FID / precision / recall on their features.

Two kinds of features:
  inception  pool3 of the FID InceptionV3 (2048-d), from a local weights file
             (`metrics/inception.py`); comparable with published FIDs;
  digits     the hidden layer of the project's digit classifier (128-d,
             `metrics/digit_classifier.py`); needs nothing from outside, for
             28x28 digit data only.

Images go through a network in fixed-size batches (the last one padded), so
no more than one batch is ever on the device, and one program is compiled.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

from absl import logging
from etils import epath
import jax
import numpy as np

from competitive_mixtures import data as data_lib
from competitive_mixtures.metrics import digit_classifier
from competitive_mixtures.metrics import fid
from competitive_mixtures.metrics import inception
from competitive_mixtures.metrics import precision_recall

DIGIT_DATASETS = ("mnist_offline", "mnist_files", "mnist")


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """A network that maps image batches `[B, H, W, C]` in [0, 1] to features `[B, d]`.

    Attributes:
      name: 'inception' or 'digits'.
      description: what the features are and which weights made them.
      fingerprint: identifies the weights (SHA-256 of their file).
      apply: jitted function of one batch of `batch_size` images.
      batch_size: images per call.
    """

    name: str
    description: str
    fingerprint: str
    apply: Callable[[np.ndarray], jax.Array]
    batch_size: int

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features `[N, d]` float32 of `images` `[N, H, W, C]` (uint8 or float in [0, 1])."""
        if images.shape[0] == 0:
            raise ValueError("no images")
        out = []
        for start in range(0, images.shape[0], self.batch_size):
            batch = data_lib.to_data_space(images[start:start + self.batch_size])
            size = batch.shape[0]
            if size < self.batch_size:
                batch = np.concatenate(
                    [batch, np.zeros((self.batch_size - size, *batch.shape[1:]), np.float32)])
            out.append(np.asarray(self.apply(batch), np.float32)[:size])
        return np.concatenate(out)


def inception_extractor(weights_path: str, batch_size: int = 50) -> FeatureExtractor:
    """FID InceptionV3 pool3 features from a converted weights file (`convert_inception`)."""
    variables = inception.load_variables(weights_path)
    digest = inception.file_sha256(weights_path)
    apply = jax.jit(lambda x: inception.features(variables, x))
    return FeatureExtractor("inception", f"FID InceptionV3 pool3 (2048-d), {weights_path}",
                            digest, apply, batch_size)


def digit_extractor(path: str, source: str = "mnist_offline", data_dir: str | None = None,
                    batch_size: int = 500) -> FeatureExtractor:
    """Digit-classifier features; the classifier at `path` is trained there first if absent."""
    params, info = digit_classifier.load_or_train(path, source, data_dir)
    apply = jax.jit(lambda x: digit_classifier.DigitClassifier().apply({"params": params}, x)[1])
    description = (f"digit classifier hidden layer ({digit_classifier.FEATURE_DIM}-d), {path}: "
                   f"trained on {info['num_train']} {info['source']} digits, held-out accuracy "
                   f"{info['heldout_accuracy']:.4f}")
    return FeatureExtractor("digits", description, inception.file_sha256(path), apply, batch_size)


def available_extractors(data_name: str, image_shape: tuple[int, ...],
                         inception_weights: str | None, digit_classifier_path: str | None,
                         data_dir: str | None = None) -> tuple[list[FeatureExtractor], dict]:
    """The extractors that apply to a dataset, and {name: reason} for those skipped."""
    extractors, skipped = [], {}
    if data_name in DIGIT_DATASETS and tuple(image_shape) == digit_classifier.IMAGE_SHAPE:
        source = data_name
        path = digit_classifier_path or digit_classifier.default_path(source, data_dir)
        extractors.append(digit_extractor(path, source, data_dir))
    if inception_weights:
        extractors.append(inception_extractor(inception_weights))
    else:
        skipped["inception"] = ("no Inception weights given (--inception_weights); nothing is "
                                "downloaded. " + inception.HOW_TO_GET)
        logging.info("FID with Inception features skipped: %s", skipped["inception"])
    return extractors, skipped


def _array_digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def quality_metrics(extractor: FeatureExtractor, samples: np.ndarray, reference: np.ndarray,
                    cache_path: str | None = None, seed: int = 0) -> dict:
    """FID, precision and recall of model `samples` against `reference` images.

    The reference side (features and their mu, sigma, n) is cached in
    `cache_path` (.npz) and reused while the extractor and reference images
    are the same.

    Returns:
      {'fid', 'num_samples', 'num_reference', 'precision', 'recall', 'k',
       'pr_num_points', 'features', 'fingerprint'}; FID is biased in N, so
      it is only comparable at equal `num_samples` and `num_reference`.
      Precision and recall are None with k or fewer points in a set.
    """
    key = f"{extractor.fingerprint}:{_array_digest(reference)}"
    cached = fid.load_stats(cache_path, key) if cache_path else None
    if cached is not None:
        with epath.Path(cache_path).open("rb") as f, np.load(f) as npz:
            reference_features = npz["features"]
        reference_stats = cached
    else:
        reference_features = extractor(reference)
        reference_stats = fid.feature_stats(reference_features)
        if cache_path:
            fid.save_stats(cache_path, reference_stats, key, features=reference_features)
    sample_features = extractor(samples)
    if min(len(sample_features), len(reference_features)) > precision_recall.DEFAULT_K:
        pr = precision_recall.precision_recall(reference_features, sample_features, seed=seed)
    else:  # Too few points for k-nearest-neighbour balls.
        pr = {"precision": None, "recall": None, "k": precision_recall.DEFAULT_K,
              "num_points": min(len(sample_features), len(reference_features))}
    return {"fid": fid.frechet_distance(fid.feature_stats(sample_features), reference_stats),
            "num_samples": int(samples.shape[0]), "num_reference": int(reference.shape[0]),
            "precision": pr["precision"], "recall": pr["recall"], "k": pr["k"],
            "pr_num_points": pr["num_points"], "features": extractor.description,
            "fingerprint": extractor.fingerprint}
