"""The metrics and the sampling, evaluation and predict tools do not import the training loop."""

import ast
import json
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

from competitive_mixtures import metrics

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

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


LOAD_CONFIGS = """
import glob, json, os, sys
from competitive_mixtures import config
for path in sorted(glob.glob(os.path.join(config.CONFIG_DIR, "*.py"))):
    name = os.path.basename(path)[:-3]
    # own.py needs a data file (tests/test_own.py); families.py a model.
    arg = {"families": "model=gram"}.get(name)
    if name != "own":
        config.load_config_file(name, arg)
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("competitive_mixtures", "jax",
                                                                 "flax", "optax")))))
"""


def test_config_files_load_without_model_code():
    done = subprocess.run([sys.executable, "-c", LOAD_CONFIGS], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.split(".")[0] in ("jax", "flax", "optax")], loaded
    assert all(m == "competitive_mixtures" or m.startswith(
        ("competitive_mixtures.config", "competitive_mixtures.errors")) for m in loaded), loaded


def test_config_names_are_those_of_the_registries():
    from competitive_mixtures import config, ratio, strategies
    assert config.STRATEGIES == tuple(strategies.STRATEGIES)
    assert config.RATIO_KINDS == tuple(ratio.KINDS)
    assert config.TRAINED_RATIO_KINDS == tuple(ratio.TRAINED_KINDS)


# The layers of the package, lowest first: a module may import its own layer and
# those below it, never one above. A module is placed by its longest matching
# prefix; a new module must be placed here.
LAYERS = (
    ("base", ("errors", "config", "cli", "seeding", "kernels", "plots", "sharding", "data",
              "assign", "workdir", "metrics")),
    ("models", ("models", "state", "points", "checkpointing")),
    ("stacking", ("stacking",)),
    ("steps", ("steps", "loops", "sampling", "metrics.elbo")),
    ("ratio", ("ratio", "auto_k", "boosting", "strategies")),
    ("programs", ("programs", "latent_split")),
    ("train", ("train", "summary", "tensorboard_log", "restore")),
    ("tools", ("mixture", "metrics.report", "predict", "sample", "evaluate", "main", "bench",
               "experiments")),
)
PACKAGE = REPO_ROOT / "competitive_mixtures"


def layer_of(module: str) -> int | None:
    """The layer index of `competitive_mixtures.<module>` by its longest placed prefix."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def package_imports(root=PACKAGE) -> dict[str, set[str]]:
    """{module: the package modules it imports anywhere in its source} (names relative to
    the package; `from pkg import sub` counts as importing `pkg.sub`)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                names = [n if (root.parent / n.replace(".", "/")).with_suffix(".py").exists()
                         or (root.parent / n.replace(".", "/")).is_dir() else node.module
                         for n in names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("competitive_mixtures."):
                    found.add(name[len("competitive_mixtures."):])
        found.discard(module)
        out[module] = found
    return out


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a (layer) -> b (higher layer)' for every import that goes up."""
    up = []
    for module, imported in sorted(graph.items()):
        if not module:
            continue
        for other in sorted(imported):
            if layer_of(other) > layer_of(module):
                up.append(f"{module} ({LAYERS[layer_of(module)][0]}) -> {other} "
                          f"({LAYERS[layer_of(other)][0]})")
    return up


def test_every_module_is_placed_and_no_import_goes_up():
    graph = package_imports()
    assert len(graph) > 80
    unplaced = sorted(m for m in set(graph) | set().union(*graph.values())
                      if m and layer_of(m) is None)
    assert not unplaced, f"place these modules in LAYERS: {unplaced}"
    assert upward_imports(graph) == []


def test_the_layer_check_sees_an_upward_import():
    graph = package_imports()
    graph["stacking"] = graph["stacking"] | {"train"}
    assert upward_imports(graph) == ["stacking (stacking) -> train (train)"]


def test_every_document_the_project_cites_exists():
    """Relative links of README.md and docs/, and docs/*.md paths named in the code."""
    missing = []
    for doc in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", doc.read_text()):
            if not target.startswith(("http://", "https://")) and not (
                    doc.parent / target).exists():
                missing.append(f"{doc.relative_to(REPO_ROOT)} -> {target}")
    for folder in ("competitive_mixtures", "configs", "launch", "tests"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for target in re.findall(r"\bdocs/[\w/]+\.md", path.read_text()):
                if not (REPO_ROOT / target).exists():
                    missing.append(f"{path.relative_to(REPO_ROOT)} -> {target}")
    assert missing == []


EXPERIMENTS = sorted(f"experiments.{m.name}" for m in pkgutil.iter_modules(
    [str(PACKAGE / "experiments")]))
DRIVERS = [m for m in EXPERIMENTS if m != "experiments.common"]
IMPORT_EXPERIMENTS = """
import importlib, json, sys
from absl import flags
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
before = set(flags.FLAGS)
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
on_import = {n: flags.FLAGS.find_module_defining_flag(n) for n in set(flags.FLAGS) - before}
defined = {}
for name in json.loads(sys.argv[3]):
    start = set(flags.FLAGS)
    sys.modules[name].define_flags()
    defined[name] = sorted(set(flags.FLAGS) - start)
    for flag in defined[name]:
        delattr(flags.FLAGS, flag)
print(json.dumps({"on_import": on_import, "defined": defined}))
"""


@pytest.fixture(scope="module")
def experiment_flags() -> dict:
    """In one fresh interpreter: the flags that importing every module of experiments/
    defines (after the rest of the package they import, cli's --verbose among it), and
    the flags each driver's `define_flags()` defines, one driver after another."""
    graph = package_imports()
    rest = sorted({m for e in ["experiments", *EXPERIMENTS] for m in graph[e]
                   if m != "experiments" and not m.startswith("experiments.")})
    full = [f"competitive_mixtures.{m}" for m in ["experiments", *EXPERIMENTS]]
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EXPERIMENTS, json.dumps(
            [f"competitive_mixtures.{m}" for m in rest]), json.dumps(full),
         json.dumps([f"competitive_mixtures.{m}" for m in DRIVERS])],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_experiments_defines_no_flags(experiment_flags):
    """Any set of drivers imports into one process (tests, notebooks): each defines its
    flags in `define_flags()`, called only when it runs as a program."""
    assert len(DRIVERS) >= 9 and "experiments.common" in EXPERIMENTS
    assert experiment_flags["on_import"] == {}


def test_every_driver_defines_the_flags_it_reads(experiment_flags):
    for driver in DRIVERS:
        defined = set(experiment_flags["defined"][f"competitive_mixtures.{driver}"])
        source = (PACKAGE / driver.replace(".", "/")).with_suffix(".py").read_text()
        read = set(re.findall(r"\bFLAGS\.(\w+)", source))
        assert "workdir" in defined, driver
        assert read <= defined, (driver, sorted(read - defined))
