"""Converts pytorch-fid's InceptionV3 weights to the `.npz` that FID reads. Run once.

python -m competitive_mixtures.metrics.convert_inception \
    --input=pt_inception-2015-12-05-6726825d.pth --output=inception_fid.npz

The input is the weights file of the `pytorch-fid` project (the 2015-12-05
TensorFlow Inception graph of the original FID code, ported to PyTorch). It
is not downloaded here: fetch it on a machine with internet access. Reading
a `.pth` file needs `torch` (`pip install torch`; only this script needs it).
Then pass `--inception_weights=inception_fid.npz` to
`python -m competitive_mixtures.evaluate`.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

from competitive_mixtures.metrics import inception

_INPUT = flags.DEFINE_string("input", None, f"pytorch-fid weights ({inception.WEIGHTS_FILE}).")
_OUTPUT = flags.DEFINE_string("output", "inception_fid.npz", "Converted weights (.npz).")


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """A torch state dict from a `.pth` file as NumPy arrays (tensors only, no code)."""
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise SystemExit("error: reading a .pth file needs torch: pip install torch "
                         "(only this one-time conversion uses it)") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise SystemExit(f"error: {path} holds a {type(state).__name__}, not a state dict")
    return {key: value.detach().cpu().numpy() for key, value in state.items()}


def main(argv):
    del argv
    if not os.path.exists(_INPUT.value):
        sys.exit(f"error: {_INPUT.value} not found. {inception.HOW_TO_GET}")
    digest = inception.file_sha256(_INPUT.value)
    if not digest.startswith(inception.WEIGHTS_SHA256_PREFIX):
        logging.warning("%s has SHA-256 %s, not the %s... of %s: features from other weights "
                        "are not comparable with published FIDs.", _INPUT.value, digest,
                        inception.WEIGHTS_SHA256_PREFIX, inception.WEIGHTS_FILE)
    try:
        flat = inception.convert_state_dict(read_state_dict(_INPUT.value))
    except ValueError as error:
        sys.exit(f"error: {_INPUT.value}: {error}")
    inception.save_variables(_OUTPUT.value, flat, source=f"{os.path.basename(_INPUT.value)} "
                                                         f"sha256={digest}")
    print(f"wrote {_OUTPUT.value} ({len(flat)} arrays, "
          f"{sum(v.size for v in flat.values()):,} values) from {_INPUT.value}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["input"])
    app.run(main)
