"""The metrics and the sampling, evaluation and predict tools do not import the training loop."""

import json
import pkgutil
import subprocess
import sys

import pytest

from competitive_mixtures import metrics

METRICS = sorted(f"competitive_mixtures.metrics.{m.name}" for m in pkgutil.iter_modules(
    metrics.__path__))
# Command-line modules define absl flags, some with the same names, so each group
# is imported in a fresh interpreter of its own.
GROUPS = {
    "metrics and evaluate": [m for m in METRICS if not m.endswith("convert_inception")]
    + ["competitive_mixtures.evaluate"],
    "convert_inception": ["competitive_mixtures.metrics.convert_inception"],
    "sample": ["competitive_mixtures.sample"],
    "predict": ["competitive_mixtures.predict"],
}
CHECK = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("competitive_mixtures"))))
"""


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_module_does_not_import_train(group):
    done = subprocess.run([sys.executable, "-c", CHECK, *GROUPS[group]], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert set(GROUPS[group]) <= loaded
    assert "competitive_mixtures.train" not in loaded, sorted(loaded)


def test_every_metrics_module_is_checked():
    assert len(METRICS) >= 12
    assert sum(len(names) for names in GROUPS.values()) == len(METRICS) + 3
