"""Records pytorch-fid's FID InceptionV3 features for `tests/test_inception.py`.

Needs torch, torchvision and pytorch-fid (not the project's dependencies):

  pip install torch torchvision pytorch-fid
  python tests/make_inception_reference.py

The network is pytorch-fid's own (`pytorch_fid.inception.InceptionV3`, block
3 = pool3, with its input resizing and scaling), loaded with the random
weights of `inception_reference.random_state_dict` instead of the released
ones; nothing is downloaded. Writes `tests/data/inception_reference.npz`.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torchvision
from pytorch_fid import inception as pytorch_fid_inception

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import inception_reference  # noqa: E402  pylint: disable=wrong-import-position

NUM_IMAGES, SIZE = 2, 32


def main() -> None:
    # torchvision's plain InceptionV3 with 1008 classes has the same state-dict
    # entries as pytorch-fid's patched one (its FID blocks only change forward).
    skeleton = pytorch_fid_inception._inception_v3(  # pylint: disable=protected-access
        num_classes=1008, aux_logits=False, weights=None)
    layout = [(k, tuple(v.shape)) for k, v in skeleton.state_dict().items()]
    state = {k: torch.from_numpy(v)
             for k, v in inception_reference.random_state_dict(layout).items()}
    pytorch_fid_inception.load_state_dict_from_url = lambda *args, **kwargs: state
    model = pytorch_fid_inception.InceptionV3([3]).eval()

    images = np.random.RandomState(1).uniform(0.0, 1.0, (NUM_IMAGES, SIZE, SIZE, 3))
    images = images.astype(np.float32)
    with torch.no_grad():
        pool3 = model(torch.from_numpy(images.transpose(0, 3, 1, 2)))[0]
    features = pool3[:, :, 0, 0].numpy()
    versions = (f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
                f"pytorch-fid {__import__('pytorch_fid').__version__}")
    np.savez_compressed(inception_reference.FIXTURE, images=images, features=features,
                        layout=np.asarray(inception_reference.layout_to_json(layout)),
                        seed=inception_reference.SEED, versions=np.asarray(versions))
    print(f"wrote {inception_reference.FIXTURE}: features {features.shape}, "
          f"mean {features.mean():.4f}, std {features.std():.4f}; {versions}")


if __name__ == "__main__":
    main()
