"""The benchmark runs end to end at --quick sizes and writes every field it promises.

Only the structure of bench.json is checked: timings depend on the machine and
on whatever else runs on it, so no test asserts one.
"""

import json

import pytest

from competitive_mixtures import bench
from conftest import REPO

pytestmark = pytest.mark.slow


def roofline(prefix):
    """A conv figure's GFLOP/s, matmul fraction and the rate the matmul rate allows."""
    return {f"{prefix}_{name}" for name in ("gflops", "matmul_fraction",
                                             "points_per_second_at_matmul_rate")}


# The figures each section reports, whatever the sizes.
FIGURES = {
    "memory": {"host_peak_rss_bytes", "host_rss_before_data_bytes", "host_rss_with_data_bytes",
               "dataset_bytes", "largest_device_buffer_bytes", "peak_live_device_bytes",
               "scores_bytes", "score_temp_bytes", "score_temp_bytes_at_default_batch",
               "seconds", "points_per_second"} | roofline("score"),
    "round": {"round_seconds", "seconds_m_step", "seconds_disc", "seconds_assign",
              "m_step_active_fraction", "compile_seconds", "warmup_round_seconds"},
    "recompilation": {"compiles_per_round", "jit_cache_entries_per_round",
                      "compiles_after_first_round", "cache_growth_after_first_round"},
    "growth": {"round_seconds_vs_K", "round_seconds_vs_N"},
    "roofline": {"matmul_gflops"},
    "stacked_vs_loop": ({f"{step}_{side}"
                         for step in ("mlp_vae_m_step", "mlp_disc_step", "conv_vae_m_step",
                                      "conv_disc_step", "conv_vae_m_step_vmap")
                         for side in ("stacked", "loop", "speedup")}
                        # Straight-line conv steps: GFLOP/s, roofline fraction, compile time.
                        | {f"{step}_{figure}"
                           for step in ("conv_vae_m_step", "conv_disc_step",
                                        "conv_vae_m_step_vmap")
                           for figure in ("stacked_gflops", "loop_gflops", "matmul_fraction",
                                          "compile_seconds")}
                        | {"digits_m_step_images_per_second"} | roofline("digits_m_step")),
    "assign": {"mlp_scores_per_second", "mlp_seconds", "conv_scores_per_second",
               "conv_seconds"} | roofline("conv_score"),
}
METADATA = {"device_kind", "platform", "num_devices", "jax_version", "jaxlib_version",
            "python_version", "cpu_count", "host_memory_bytes", "load_average_1min_at_start",
            "load_average_1min_at_end", "xla_flags", "quick", "xla_optimizations", "command",
            "timestamp"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("bench")
    results = bench.run(quick=True, output_dir=str(output_dir), config_dir=str(REPO / "configs"))
    return results, output_dir


def test_quick_bench_writes_every_section_and_figure(quick_run):
    results, output_dir = quick_run
    with open(output_dir / "bench.json") as f:
        written = json.load(f)
    # What run() returns is what it wrote.
    assert written == json.loads(json.dumps(results))
    assert set(written["sections"]) == set(bench.SECTIONS) == set(FIGURES)
    for section, names in FIGURES.items():
        figures = written["sections"][section]["figures"]
        assert set(figures) == names, section
        for name, fig in figures.items():
            where = f"{section}.{name}"
            assert fig["value"] is not None, where
            assert isinstance(fig["unit"], str) and fig["unit"], where
            for key in ("K", "N", "batch"):
                assert fig[key] is not None, f"{where} {key}"
            if isinstance(fig["value"], list):
                assert fig["value"] and None not in fig["value"], where


def test_quick_bench_metadata_targets_and_plot(quick_run):
    results, output_dir = quick_run
    assert METADATA <= set(results["metadata"])
    assert results["metadata"]["quick"] is True
    statuses = {(t["section"], t["figure"]): t["status"] for t in results["targets"]}
    assert set(statuses.values()) <= {"PASS", "MISS"}
    for section, name in statuses:
        assert name in FIGURES[section]
    assert {section for section, _ in statuses} == {
        "stacked_vs_loop", "round", "assign", "memory", "recompilation"}
    growth = results["sections"]["growth"]
    columns = {"K", "N", "seconds", "seconds_m_step", "seconds_disc", "seconds_assign",
               "m_step_active_fraction"}
    assert growth["table"] and columns <= set(growth["table"][0])
    plot = output_dir / growth["plot"]
    assert plot.name == "growth.png"
    with open(plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown section"):
        bench.run(quick=True, output_dir=str(tmp_path), only=["nope"])
