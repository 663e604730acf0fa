"""Bad configs fail before training, naming the field and what it allows."""

import json
import os
import subprocess
import sys

import pytest

from competitive_mixtures import config as config_lib
from competitive_mixtures import train
from conftest import REPO, load_config


def _tiny():
    c = load_config("synthetic", "tiny")
    c.data.num_points = 2000
    return c


def _unknown_field(c):
    c.model.unlock()
    c.model.unknown = 1


def _set(field, value):
    def edit(c):
        *path, last = field.split(".")
        node = c
        for part in path:
            node = node[part]
        node[last] = value
    return edit


def _boosting_k5(c):
    c.strategy = "boosting"
    c.num_components = 5


def _single_with_three(c):
    c.strategy = "single"
    c.num_components = 3


def _input_noise_with(kind):
    def edit(c):
        c.disc.input_noise = 0.1
        c.ratio.kind = kind
    return edit


def _ensemble_of(kind, auto_k=False):
    def edit(c):
        c.disc.ensemble = 2
        c.ratio.kind = kind
        c.auto_k.enabled = auto_k
    return edit


def _auto_k(family=None, initial=None, strategy=None):
    def edit(c):
        c.auto_k.enabled = True
        if family:
            c.model.family = family
        if initial is not None:
            c.auto_k.initial_components = initial
        if strategy:
            c.strategy = strategy
    return edit


# (edit, words the message must contain)
BAD = {
    "unknown_field": (_unknown_field, ["config.model.unknown", "base_config"]),
    "num_components_0": (_set("num_components", 0), ["num_components", "0", ">= 1"]),
    "batch_size_too_big": (_set("batch_size", 4096),
                           ["batch_size", "4096", "at most", "2000"]),
    "min_points_above_n_over_k": (_set("balance.min_points", 700),
                                  ["balance.min_points", "700", "2000/3 = 666"]),
    "unknown_family": (_set("model.family", "flow"),
                       ["model.family", "'flow'", "'vae'", "'kmeans'"]),
    "unknown_data": (_set("data.name", "moons"),
                     ["data.name", "'moons'", "'gaussians'", "'ring'", "'grid'"]),
    "unknown_strategy": (_set("strategy", "annealing"),
                         ["strategy", "'annealing'", "'competitive'", "'bagging'", "'single'",
                          "'boosting'"]),
    "unknown_ratio_kind": (_set("ratio.kind", "flow"),
                           ["ratio.kind", "'flow'", "'discriminator'", "'kernel'",
                            "'multiclass'"]),
    "boosting_beta_0": (_set("boosting.beta", 0.0), ["boosting.beta", "0.0", "(0, 1]"]),
    "boosting_beta_schedule": (_set("boosting.beta_schedule", "1/t^2"),
                               ["boosting.beta_schedule", "'1/t^2'", "'constant'", "'1/t'"]),
    "boosting_too_few_rounds": (_boosting_k5, ["num_rounds", "2", "num_components - 1 = 4"]),
    "kernel_eps_negative": (_set("ratio.kernel.eps", -1.0), ["ratio.kernel.eps", "> 0"]),
    "kmeans_without_exact": (_set("model.family", "kmeans"),
                             ["ratio.kind", "'discriminator'", "'exact'", "model.family='kmeans'"]),
    "exact_without_kmeans": (_set("ratio.kind", "exact"),
                             ["ratio.kind", "'exact'", "model.family='kmeans'"]),
    "single_with_k3": (_single_with_three, ["num_components", "3", "strategy='single'"]),
    "gaussian_modes_4": (_set("data.modes", 4), ["data.modes", "4", "(3, 5, 9)"]),
    "binarize_points": (_set("disc.binarize", True),
                        ["disc.binarize", "True", "images", "model.family='conv_vae'",
                         "likelihood='bernoulli'"]),
    "input_noise_negative": (_set("disc.input_noise", -0.1), ["disc.input_noise", ">= 0"]),
    "input_noise_multiclass": (_input_noise_with("multiclass"),
                               ["disc.input_noise", "0.1", "ratio.kind='discriminator'"]),
    "ensemble_0": (_set("disc.ensemble", 0), ["disc.ensemble", "0", ">= 1"]),
    "disc_features_unknown": (_set("disc.features", "pixel"),
                              ["disc.features", "'pixel'", "'pixels'", "'latent'"]),
    "disc_features_latent_on_points": (_set("disc.features", "latent"),
                                       ["disc.features", "init_split='latent'",
                                        "model.family='conv_vae'"]),
    "m_step_checkpoints_negative": (_set("checkpoint.m_step_every_s", -1.0),
                                    ["checkpoint.m_step_every_s", "-1.0", ">= 0"]),
    "ensemble_of_kernels": (_ensemble_of("kernel"),
                            ["disc.ensemble", "2", "'discriminator'", "networks to fit"]),
    "ensemble_with_auto_k": (_ensemble_of("discriminator", auto_k=True),
                             ["disc.ensemble", "2", "auto_k is off"]),
    "auto_k_gan": (_auto_k(family="gan"),
                   ["auto_k.enabled", "model.family", "'vae'", "'kmeans'", "log-likelihood"]),
    "auto_k_gain_over": (_set("auto_k.gain_over", "component"),
                         ["auto_k.gain_over", "'component'", "'all'", "'moved'"]),
    "auto_k_removal_judged_on": (_set("auto_k.removal_judged_on", "all"),
                                 ["auto_k.removal_judged_on", "'all'", "'removed'",
                                  "'receivers'"]),
    "auto_k_bagging": (_auto_k(strategy="bagging"),
                       ["auto_k.enabled", "strategy='competitive'"]),
    "auto_k_initial_above_k": (_auto_k(initial=4),
                               ["auto_k.initial_components", "4", "num_components = 3"]),
}


def test_tiny_config_is_valid():
    """The baseline the bad configs are edited from passes validation."""
    c = _tiny()
    config_lib.validate(c)
    config_lib.validate(c, 2000)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_fails_before_training(name, tmp_path):
    """train_and_evaluate raises ConfigError naming the field; no run files are written."""
    edit, words = BAD[name]
    c = _tiny()
    edit(c)
    workdir = tmp_path / "run"
    with pytest.raises(config_lib.ConfigError) as info:
        train.train_and_evaluate(c, str(workdir))
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert not (workdir / "checkpoints").exists()
    assert not (workdir / "metrics.jsonl").exists()


def _main(tmp_path, *flags):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "competitive_mixtures.main",
         "--config=configs/synthetic.py:tiny", f"--workdir={tmp_path / 'run'}", *flags],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_command_line_bad_value_one_line_error(tmp_path):
    """--config.num_components=0 exits non-zero with one 'error: ...' line naming the field."""
    result = _main(tmp_path, "--config.num_components=0")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "num_components" in lines[0] and ">= 1" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_command_line_unknown_override_fails(tmp_path):
    """An override of a field the config does not have is refused in one line."""
    result = _main(tmp_path, "--config.nonexistent=1")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "nonexistent" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_config_of_an_older_run_gets_new_fields_as_defaults():
    """A run's config.json written before a field existed restores with its default."""
    values = json.loads(load_config("gan_ring", "tiny").to_json())
    del values["gan"]["clip"]
    restored = config_lib.from_dict(values)
    assert restored.gan.clip == config_lib.base_config().gan.clip
    assert restored.model.hidden == (128, 128)  # JSON lists become the tuples they were.
    config_lib.validate(restored)


def test_overrides_set_fields_with_their_types():
    """`FIELD=VALUE` strings, as the experiment drivers' --set passes them."""
    c = load_config("gan_ring", "tiny")
    config_lib.apply_overrides(c, ["epochs_per_round=24", "disc.input_noise=0.05",
                                   "disc.hidden=(8, 16)", "disc.reinit_each_round=true",
                                   "init_split=kmeans", "model.learning_rate=1"])
    assert c.epochs_per_round == 24 and isinstance(c.epochs_per_round, int)
    assert c.disc.input_noise == 0.05
    assert c.disc.hidden == (8, 16)
    assert c.disc.reinit_each_round is True
    assert c.init_split == "kmeans"
    assert c.model.learning_rate == 1.0 and isinstance(c.model.learning_rate, float)
    config_lib.validate(c)


@pytest.mark.parametrize("item, match", [
    ("nope=1", "'nope=1': expected FIELD=VALUE"),
    ("disc.nope=2", "'disc.nope=2': expected FIELD=VALUE"),
    ("epochs_per_round", "expected FIELD=VALUE"),
    ("disc=3", "not a group of fields"),
    ("disc.hidden.x.y=1", "'disc.hidden.x.y=1': expected FIELD=VALUE"),
    ("epochs_per_round=0.5", "epochs_per_round is int, not float"),
    ("disc.reinit_each_round=yes", "reinit_each_round is bool, not str"),
])
def test_bad_override_is_refused(item, match):
    with pytest.raises(config_lib.ConfigError, match=match):
        config_lib.apply_overrides(load_config("gan_ring", "tiny"), [item])
