"""The targets of every section in one table, checked as PASS/MISS, and the printed table."""

from __future__ import annotations

import datetime
import os
import platform
from typing import Any

import jax

try:
    import psutil
except ImportError:  # The bench's memory figures need it; the product does not.
    raise SystemExit("the bench needs psutil: pip install -e '.[bench]'") from None


# Every target of the bench on the 2-core CPU, in the printed order: (section, figure,
# op, threshold). The conv figures are of the paper's MNIST networks at K = 15
# (stacked vs loop, achieved share of the matmul rate, compile seconds) and the
# offline digits preset's M-step (3x the 385 images/s of the vmapped form); the
# CelebA-sized scoring rate is 5x the 140 points/s of lax.map. The host-memory
# target is a headroom over the dataset's own bytes.
MEMORY_HEADROOM_BYTES = 2 * 2**30
TARGETS = (
    ("stacked_vs_loop", "mlp_vae_m_step_speedup", ">=", 5.0),
    ("stacked_vs_loop", "conv_vae_m_step_speedup", ">=", 1.2),
    ("stacked_vs_loop", "conv_disc_step_speedup", ">=", 1.2),
    ("stacked_vs_loop", "conv_vae_m_step_matmul_fraction", ">=", 0.15),
    ("stacked_vs_loop", "conv_disc_step_matmul_fraction", ">=", 0.35),
    ("stacked_vs_loop", "conv_vae_m_step_compile_seconds", "<=", 60.0),
    ("stacked_vs_loop", "conv_disc_step_compile_seconds", "<=", 60.0),
    ("stacked_vs_loop", "digits_m_step_images_per_second", ">=", 3 * 385.0),
    ("round", "round_seconds", "<=", 5.0),
    ("assign", "mlp_scores_per_second", ">=", 2e6),
    ("memory", "host_peak_rss_bytes", "<=", "dataset_bytes + MEMORY_HEADROOM_BYTES"),
    ("memory", "points_per_second", ">=", 5 * 140.0),
    ("recompilation", "compiles_after_first_round", "<=", 0),
    ("recompilation", "cache_growth_after_first_round", "<=", 0),
)


def _value(sections: dict, section: str, name: str) -> Any:
    return sections[section]["figures"][name]["value"]


def evaluate_targets(sections: dict) -> list[dict]:
    """PASS/MISS of each target whose section ran and measured its figure."""
    targets = []
    for section, name, op, threshold in TARGETS:
        if name not in sections.get(section, {}).get("figures", {}):
            continue
        if isinstance(threshold, str):
            threshold = _value(sections, "memory", "dataset_bytes") + MEMORY_HEADROOM_BYTES
        value = _value(sections, section, name)
        ok = value >= threshold if op == ">=" else value <= threshold
        targets.append({"section": section, "figure": name, "op": op, "threshold": threshold,
                        "value": value, "status": "PASS" if ok else "MISS"})
    return targets


def metadata(quick: bool, command: str) -> dict:
    device = jax.devices()[0]
    return {
        "device_kind": device.device_kind,
        "platform": device.platform,
        "num_devices": jax.device_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": jax.lib.__version__,
        "python_version": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "host_memory_bytes": psutil.virtual_memory().total,
        # Other processes on the machine slow every figure; a reader should know.
        "load_average_1min_at_start": os.getloadavg()[0],
        # XLA:CPU's code generation depends on it (e.g. --xla_cpu_use_fusion_emitters).
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "quick": quick,
        "xla_optimizations": not quick,
        "command": command,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _format(value: Any, unit: str) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_format(v, unit) for v in value) + "]"
    if unit == "bytes" and isinstance(value, (int, float)) and value >= 0:
        return f"{value / 2**30:.3f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(results: dict) -> str:
    """The figures and the targets as a plain-text table."""
    rows = [("section", "figure", "value", "unit", "K", "N", "batch")]
    for section, content in results["sections"].items():
        for name, fig in content["figures"].items():
            unit = "GiB" if fig["unit"] == "bytes" else fig["unit"]
            rows.append((section, name, _format(fig["value"], fig["unit"]), unit,
                         str(fig["K"]), str(fig["N"]), str(fig["batch"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    meta = results["metadata"]
    header = (f"device {meta['device_kind']} ({meta['cpu_count']} CPUs), JAX "
              f"{meta['jax_version']}{', QUICK sizes' if meta['quick'] else ''}")
    lines = [header, ""] + lines + ["", "targets:"]
    for target in results["targets"]:
        fig = results["sections"][target["section"]]["figures"][target["figure"]]
        unit = "GiB" if fig["unit"] == "bytes" else fig["unit"]
        lines.append(f"  {target['status']}  {target['section']}.{target['figure']} = "
                     f"{_format(target['value'], fig['unit'])} {unit} (target {target['op']} "
                     f"{_format(target['threshold'], fig['unit'])})")
    return "\n".join(lines)
