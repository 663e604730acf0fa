"""`python -m competitive_mixtures.bench`: see the package docstring."""

from __future__ import annotations

import sys

from absl import app
from absl import flags

from competitive_mixtures import config as config_lib
from competitive_mixtures.bench import SECTIONS, run
from competitive_mixtures.bench.common import CELEBA_POINTS

_QUICK = flags.DEFINE_bool(
    "quick", False, "Tiny sizes: every section in well under a minute; bench.json has the "
    "same structure.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "bench_results",
                                  "Folder for bench.json and growth.png.")
_ONLY = flags.DEFINE_list("only", [], f"Sections to run (default all): {', '.join(SECTIONS)}.")
_MEMORY_POINTS = flags.DEFINE_integer(
    "memory_points", None,
    f"Images the memory section scores (default all {CELEBA_POINTS} of the CelebA-sized host "
    "array, which is enlarged if this is larger).")
_CONFIG_DIR = flags.DEFINE_string("config_dir", config_lib.CONFIG_DIR,
                                  "Folder of the experiment configs the sections load.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    run(quick=_QUICK.value, output_dir=_OUTPUT_DIR.value, only=_ONLY.value,
        memory_points=_MEMORY_POINTS.value, config_dir=_CONFIG_DIR.value,
        command=" ".join(["python -m competitive_mixtures.bench"] + sys.argv[1:]))


if __name__ == "__main__":
    app.run(main)
