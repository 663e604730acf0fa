"""The sample and evaluate command-line tools, and the Table 1 experiment."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from competitive_mixtures import config as config_lib
from competitive_mixtures import train
from competitive_mixtures import restore
from competitive_mixtures.experiments import capacity
from competitive_mixtures.experiments import common
from competitive_mixtures.experiments import digits
from competitive_mixtures.experiments import mode_coverage
from competitive_mixtures.experiments import ratios
from competitive_mixtures.experiments import table1
from competitive_mixtures.metrics import clustering
from conftest import run_tool, tree_hashes

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def test_sample_tool_follows_alpha(run, tmp_path):
    out = tmp_path / "s.npz"
    done = run_tool("sample", f"--workdir={run}", "--num_samples=6000", f"--output={out}",
                 "--seed=1")
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as f:
        x, component = f["x"], f["component"]
    assert x.shape == (6000, 2) and x.dtype == np.float32
    assert component.shape == (6000,) and component.dtype == np.int32
    _, _, state = restore.restore_run(run)
    alpha = np.asarray(state.alpha, np.float64)
    observed = np.bincount(component, minlength=len(alpha))
    expected = alpha * len(component)
    keep = expected > 0
    assert observed[~keep].sum() == 0
    # Pearson chi-square with K-1 <= 2 degrees of freedom: 13.8 is its 0.999 quantile.
    chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    assert chi2 < 13.8, (observed, expected)


def test_tools_refuse_bad_input(run, tmp_path):
    for args in ([f"--workdir={tmp_path / 'nothing'}", "--num_samples=10",
                  f"--output={tmp_path / 'a.npz'}"],
                 [f"--workdir={run}", "--num_samples=0", f"--output={tmp_path / 'a.npz'}"]):
        done = run_tool("sample", *args)
        assert done.returncode != 0
        assert "error:" in done.stderr
    done = run_tool("evaluate", f"--workdir={tmp_path / 'nothing'}")
    assert done.returncode != 0 and "no finished round" in done.stderr
    # latent_fit reads convolutional VAEs only (this run's are MLPs).
    done = run_tool("experiments.latent_fit", f"--workdir={run}")
    assert done.returncode == 2 and "convolutional VAE" in done.stderr
    done = run_tool("experiments.latent_fit", f"--workdir={run}", "--gaussians=0")
    assert done.returncode == 2 and "--gaussians must be integers >= 1" in done.stderr


def test_evaluate_writes_metrics_without_touching_checkpoints(run):
    before = tree_hashes(os.path.join(run, "checkpoints"))
    done = run_tool("evaluate", f"--workdir={run}", "--num_samples=2000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "KDE log-likelihood" in done.stdout and "coverage C" in done.stdout
    with open(os.path.join(run, "eval.json")) as f:
        result = json.load(f)
    assert np.isfinite(result["kde"]["log_likelihood"])
    assert 0.0 <= result["coverage"]["coverage"] <= 1.0
    assert result["modes"]["num_modes"] == 3
    assert 0.0 <= result["clustering"]["nmi"] <= 1.0
    assert result["components_used"] == 3
    assert tree_hashes(os.path.join(run, "checkpoints")) == before


def _read_ratios(run, *args) -> tuple[subprocess.CompletedProcess, dict]:
    done = run_tool("experiments.read_ratios", f"--workdir={run}", *args)
    rows = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if cells and cells[0] in ("discriminator", "elbo"):
            rows.setdefault(cells[0], []).append(cells)
    return done, rows


def test_read_ratios_reproduces_the_run_and_reads_fresh_estimators(run):
    """The checkpointed estimator gives back the run's assignment; fresh ones read it too."""
    with np.load(os.path.join(run, "assignments.npz")) as f:
        owner, label = f["assignment"], f["label"]
    counts = np.bincount(owner, minlength=3)
    done, rows = _read_ratios(run, "--fits=0", "--kinds=discriminator")
    assert done.returncode == 0, done.stderr[-2000:]
    [own] = rows["discriminator"]
    assert float(own[3]) == pytest.approx(
        clustering.clustering_scores(owner, label, 3)["nmi"], abs=1e-3)
    assert own[4] == "1.000" and own[5] == f"{counts.min()}-{counts.max()}"

    done, rows = _read_ratios(run, "--fits=2", "--seeds=1", "--kinds=discriminator,elbo")
    assert done.returncode == 0, done.stderr[-2000:]
    epochs = [int(r[2]) for r in rows["discriminator"]]
    assert len(epochs) == 2 and epochs[1] == 2 * epochs[0]  # disc.epochs per fit
    assert [r[2] for r in rows["elbo"]] == ["-"]
    for kind in ("discriminator", "elbo"):
        # Three separated modes: a fresh reading of the same generators mostly agrees.
        assert float(rows[kind][-1][4]) > 0.8, rows[kind]

    done, _ = _read_ratios(run, "--fits=0", "--kinds=multiclass")
    assert done.returncode != 0 and "needs --fits >= 1" in done.stderr


def test_table1_tiny_resumes_after_interruption(tmp_path, monkeypatch):
    """An interrupted table run picks up where it stopped and writes the table."""
    module = str(REPO / "configs")
    calls = []
    real = train.train_and_evaluate

    def interrupted(config, workdir, *args, **kwargs):
        calls.append(workdir)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(config, workdir, *args, **kwargs)

    monkeypatch.setattr(train, "train_and_evaluate", interrupted)
    config = table1.config_for(module, 3, "competitive", "tiny", 0)
    common.run_one(config, str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        common.run_one(table1.config_for(module, 3, "bagging", "tiny", 0), str(tmp_path / "b"))
    monkeypatch.setattr(train, "train_and_evaluate", real)
    # A finished run is not trained again; the interrupted one completes.
    mtime = os.path.getmtime(tmp_path / "a" / "eval.json")
    common.run_one(config, str(tmp_path / "a"))
    assert os.path.getmtime(tmp_path / "a" / "eval.json") == mtime
    result = common.run_one(table1.config_for(module, 3, "bagging", "tiny", 0),
                            str(tmp_path / "b"))
    assert result["strategy"] == "bagging"
    # A finished run of another config is refused, not taken for this one.
    other = table1.config_for(module, 3, "competitive", "tiny", 0, ["disc.learning_rate=0.123"])
    with pytest.raises(config_lib.ConfigError, match="disc.learning_rate"):
        common.run_one(other, str(tmp_path / "a"))


def test_driver_overrides_reach_the_config_but_not_the_seeds():
    """--set reaches each run's config; the seeds stay the driver's."""
    config = table1.config_for(str(REPO / "configs"), 3, "competitive", "tiny", 4,
                               ["epochs_per_round=3", "disc.hidden=(8, 8)", "seed=99"])
    assert config.epochs_per_round == 3 and config.disc.hidden == (8, 8)
    assert config.seed == 4 and config.data.seed == 4
    assert table1.config_for(str(REPO / "configs"), 3, "competitive", "tiny", 4).seed == 4


def test_driver_refuses_a_bad_override_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "competitive_mixtures.experiments.table1",
                           f"--workdir={tmp_path}", "--seeds=1", "--preset=tiny", "--modes=3",
                           "--set=disc.nope=1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: override 'disc.nope=1'")
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_table1_end_to_end_tiny(tmp_path):
    """The 3-mode row (the 5 and 9-mode rows run the same code on other data)."""
    done = subprocess.run([sys.executable, "-m", "competitive_mixtures.experiments.table1",
                           f"--workdir={tmp_path}", "--seeds=1", "--preset=tiny", "--modes=3"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "table1.md").read_text()
    assert "| 3 |" in text and "| 5 |" not in text
    assert "AdaGAN boosting" in text  # All four methods by default.
    assert (tmp_path / "samples_modes3.png").exists()
    assert "[-4.59]" in text  # The paper's value sits beside ours.


def _table(tmp_path, write_table, *args) -> str:
    """The markdown a driver's `write_table(*args, path)` writes and returns (the drivers
    define no flags when imported, so they are imported together here)."""
    path = tmp_path / "table.md"
    text = write_table(*args, str(path))
    assert path.read_text() == text
    return text


def test_digits_table_gives_per_seed_values_and_paired_verdicts(tmp_path):
    def run(nmi, fid, k=10):
        return {"num_components": k, "clustering": {"nmi": nmi}, "alphas": [0.02] * k,
                "training_seconds": 60.0,
                "image_quality": {"digits": {"fid": fid, "precision": 0.8, "recall": 0.6}}}

    results = {"competitive": [run(0.6, 50.0), run(0.5, 60.0), run(0.55, 70.0)],
               "vae8": [run(0.0, 80.0, 1), run(0.0, 55.0, 1), run(0.0, 90.0, 1)]}
    kmeans = {"KMeans (pixels)": [0.49, 0.48, 0.50]}
    text = _table(tmp_path, digits.write_table, results, kmeans, 3)
    assert "| competitive | 3 | 0.55 +- 0.04 (worst 0.50)" in text
    assert "| KMeans (pixels) | 3 | 0.49 +- 0.01 (worst 0.48)" in text
    assert "- competitive vs KMeans (pixels), NMI: " + common.verdict(
        [0.6, 0.5, 0.55], [0.49, 0.48, 0.50]) in text
    assert "- competitive vs vae8, domain FID: " + common.verdict(
        [50.0, 60.0, 70.0], [80.0, 55.0, 90.0], higher_is_better=False) in text
    assert "| 1 | 0.500 / 60.0 | - / 55.0 | 0.480 |" in text

    # A run not finished on a seed (None) is left out of its row and of the verdicts
    # on that seed; a second KMeans row is shown, the first one judges.
    results["competitive"][2] = None
    kmeans = {"KMeans K=15 (pixels)": [0.49, 0.48, 0.50], "KMeans K=10 (pixels)": [0.4] * 3}
    text = _table(tmp_path, digits.write_table, results, kmeans, 3)
    assert "| competitive | 2 | 0.55 +- 0.05 (worst 0.50)" in text
    assert "- competitive vs KMeans K=15 (pixels), NMI: " + common.verdict(
        [0.6, 0.5], [0.49, 0.48]) in text
    assert "- competitive vs vae8, domain FID: " + common.verdict(
        [50.0, 60.0], [80.0, 55.0], higher_is_better=False) in text
    assert "| KMeans K=10 (pixels) | 3 | 0.40 +- 0.00 (worst 0.40)" in text
    assert "| 2 | - | - / 90.0 | 0.500 | 0.400 |" in text


def test_mode_coverage_table_gives_worst_seeds_verdicts_and_every_seed(tmp_path):
    def run(modes, share, kde, k=8):
        return {"num_components": k, "kde": {"log_likelihood": kde},
                "modes": {"modes_covered": modes, "high_quality_share": share}}

    results = {"ring": {"competitive": [run(8, 0.6, 1.0), run(8, 0.7, 2.0), run(8, 0.5, 1.5)],
                        "single": [run(8, 0.7, 0.5), run(2, 0.1, 0.0), run(8, 0.8, 1.0)]}}
    text = _table(tmp_path, mode_coverage.write_table, results, 3, "ns")
    # Coverage: one seed won, two tied; share: won 1 of 3, mean behind.
    assert ("| ring (K=8) | modes covered | 8.00 +- 0.00 (worst 8.00) | 6.00 +- 2.83 (worst "
            "2.00) | not established (1/3 seeds, 2 tied, mean +2.00) |") in text
    assert "| ring (K=8) | high-quality share | 0.60 +- 0.08 (worst 0.50) |" in text
    assert "not established (1/3 seeds, mean +0.07)" in text
    assert "beats (3/3 seeds, mean +1.00)" in text  # KDE.
    assert "| ring | modes covered | 8.00 / 8.00 | 8.00 / 2.00 | 8.00 / 8.00 |" in text


def test_capacity_table_gives_worst_seeds_and_verdicts_per_width(tmp_path):
    def run(fid, precision, recall):
        return {"image_quality": {"digits": {"fid": fid, "precision": precision,
                                             "recall": recall}}}

    results = {"16": {"competitive": [run(300.0, 0.5, 0.1), run(200.0, 0.6, 0.2)],
                      "single": [run(250.0, 0.6, 0.0), run(260.0, 0.7, 0.1)]}}
    text = _table(tmp_path, capacity.write_table, results, 2)
    # FID: lower is better, so the worst seed is the highest; one seed won of two.
    assert ("| 16 filters | domain FID | 250.00 +- 50.00 (worst 300.00) | 255.00 +- 5.00 "
            "(worst 260.00) | not established (1/2 seeds, mean -5.00) |") in text
    assert "| 16 filters | recall | 0.15 +- 0.05 (worst 0.10) |" in text
    assert "beats (2/2 seeds, mean +0.10) |" in text  # Recall.
    assert "| 16 filters | precision | 0.50 / 0.60 | 0.60 / 0.70 |" in text


def test_ratios_tables_give_worst_seeds_and_verdicts_against_the_papers_estimator(tmp_path):
    def run(kde, coverage, nmi):
        return {"kde": {"log_likelihood": kde}, "coverage": {"coverage": coverage},
                "clustering": {"nmi": nmi}}

    results = {"modes3": {"competitive": [run(-4.0, 0.9, 1.0), run(-4.1, 0.8, 0.9)],
                          "kernel": [run(-4.2, 0.9, 0.9), run(-4.0, 0.9, 0.8)]}}
    seconds = {"modes3": {"competitive": [1.0, 1.2], "kernel": [3.0, 3.2]}}
    text = _table(tmp_path, ratios.write_tables, results, seconds, [], [], 2, "quick")
    assert "| modes3 | -4.05 +- 0.05 (worst -4.10) | -4.10 +- 0.10 (worst -4.20) |" in text
    # KDE: one seed won, one lost; NMI: both won.
    assert "| modes3 | not established (1/2 seeds, mean +0.05) |" in text
    assert "| modes3 | beats (2/2 seeds, mean +0.10) |" in text
