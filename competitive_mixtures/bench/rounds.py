"""Sections `round`, `recompilation` and `growth`: the paper-scale round and how it grows."""

from __future__ import annotations

import os
from typing import Any

from absl import logging
import numpy as np

from competitive_mixtures import train
from competitive_mixtures.bench.common import Bench, Setup, figure, make_setup, synthetic_config
from competitive_mixtures.bench.monitor import _PROGRAMS, CompileMonitor, program_traces


_ROUND_PARTS = ("seconds_m_step", "seconds_disc", "seconds_assign")


def run_rounds(setup: Setup, timed_rounds: int) -> dict:
    """A warm-up round (pre-training, which compiles the programs), then `timed_rounds`.

    Returns the warm-up round's compile seconds and, per round (warm-up
    first), its record, the compilations it caused and the jit cache entries
    the four compiled programs gained in these rounds so far (each trace adds
    one).
    """
    config, programs = setup.config, setup.programs
    state = setup.fresh_state()
    out: dict[str, Any] = {"records": [], "compiles": [], "cache_sizes": [], "n": setup.n,
                           "k": setup.k, "config": config}
    entries = dict.fromkeys(_PROGRAMS, 0)
    for r in range(timed_rounds + 1):
        with CompileMonitor() as compiles:
            state, record = train.run_round(config, programs, state, setup.x)
        if r == 0:
            out["compile_seconds"] = compiles.seconds
        out["records"].append(record)
        out["compiles"].append(compiles.count)
        entries = {name: entries[name] + traces
                   for name, traces in program_traces(compiles).items()}
        out["cache_sizes"].append(entries)
    return out


def _active_fraction(rounds: dict, record: dict) -> tuple[float, list[int]]:
    """The share of the M-step's component-steps that train a component, and the sizes.

    The M-step runs all K components for as many steps as the largest
    training set needs; the others are masked, not skipped. Round r trains
    on the sets of round r-1's assignment.
    """
    previous = rounds["records"][record["round"] - 1]
    min_points = rounds["config"].balance.min_points
    sizes = [min_points if j in previous["balanced"] else count
             for j, count in enumerate(previous["counts"])]
    return sum(sizes) / (len(sizes) * max(sizes)), sizes


def round_section(bench: Bench) -> dict:
    rounds = bench.paper_rounds()
    config = rounds["config"]
    # The timed round of median total seconds, with its own split.
    timed = sorted(rounds["records"][1:], key=lambda record: record["seconds"])
    record = timed[(len(timed) - 1) // 2]
    k, n, batch = rounds["k"], rounds["n"], config.batch_size
    extra = dict(epochs_per_component=config.epochs_per_round, disc_epochs=config.disc.epochs,
                 disc_batch=config.disc.batch_size, round=record["round"],
                 timed_rounds=len(timed))
    figures = {"round_seconds": figure(record["seconds"], "s", k, n, batch, **extra)}
    for part in _ROUND_PARTS:
        figures[part] = figure(record[part], "s", k, n, batch, **extra)
    fraction, sizes = _active_fraction(rounds, record)
    figures["m_step_active_fraction"] = figure(fraction, "fraction", k, n, batch,
                                               training_set_sizes=sizes)
    figures["compile_seconds"] = figure(
        rounds["compile_seconds"], "s", k, n, batch,
        note="tracing, lowering and XLA compilation during the warm-up round")
    figures["warmup_round_seconds"] = figure(rounds["records"][0]["seconds"], "s", k, n, batch)
    return {"figures": figures}


def recompilation_section(bench: Bench) -> dict:
    rounds = bench.paper_rounds()
    k, n, batch = rounds["k"], rounds["n"], rounds["config"].batch_size
    totals = [sum(sizes.values()) for sizes in rounds["cache_sizes"]]
    by_function = {name: [sizes[name] for sizes in rounds["cache_sizes"]]
                   for name in _PROGRAMS}
    note = "per round, the warm-up (pre-training) round first"
    return {"figures": {
        "compiles_per_round": figure(rounds["compiles"], "compilations", k, n, batch,
                                     note=note),
        "jit_cache_entries_per_round": figure(totals, "entries", k, n, batch,
                                              by_function=by_function, note=note),
        # What must stay zero: anything compiled or cached after the first timed round.
        "compiles_after_first_round": figure(int(sum(rounds["compiles"][2:])), "compilations",
                                             k, n, batch),
        "cache_growth_after_first_round": figure(int(totals[-1] - totals[1]), "entries",
                                                 k, n, batch),
    }}


def _slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x, the exponent of the growth;
    None from fewer than two points."""
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def growth_section(bench: Bench, output_dir: str) -> dict:
    """Round seconds for several K at the paper's N, and for several N at its K.

    Each point is the first round after a warm-up round in a fresh setting.
    """
    sizes = bench.sizes
    base_n, base_k = sizes.round_points, sizes.round_components
    points = [(k, base_n) for k in sizes.growth_components]
    points += [(base_k, n) for n in sizes.growth_points if (base_k, n) not in points]
    table = []
    for k, n in points:
        if (k, n) == (base_k, base_n):
            rounds = bench.paper_rounds()
        else:
            rounds = run_rounds(make_setup(synthetic_config(bench.config_dir, n, k,
                                                            sizes.pretrain_epochs)), 1)
        record = rounds["records"][1]
        table.append({"K": k, "N": n, "seconds": record["seconds"],
                      **{part: record[part] for part in _ROUND_PARTS},
                      "m_step_active_fraction": _active_fraction(rounds, record)[0]})
        logging.info("growth K=%d N=%d: %.2fs", k, n, record["seconds"])
    by_k = [row for row in table if row["N"] == base_n and row["K"] in sizes.growth_components]
    by_n = sorted((row for row in table if row["K"] == base_k and row["N"] in sizes.growth_points),
                  key=lambda row: row["N"])
    batch = bench.setup("paper").config.batch_size
    ks, ns = [row["K"] for row in by_k], [row["N"] for row in by_n]
    seconds_k, seconds_n = [row["seconds"] for row in by_k], [row["seconds"] for row in by_n]
    figures = {
        "round_seconds_vs_K": figure(seconds_k, "s", ks, base_n, batch,
                                     log_log_slope=_slope(ks, seconds_k)),
        "round_seconds_vs_N": figure(seconds_n, "s", base_k, ns, batch,
                                     log_log_slope=_slope(ns, seconds_n)),
    }
    plot_path = os.path.join(output_dir, "growth.png")
    plot_growth(plot_path, by_k, by_n, base_n, base_k)
    return {"figures": figures, "table": table, "plot": os.path.basename(plot_path)}


def plot_growth(path: str, by_k: list[dict], by_n: list[dict], base_n: int, base_k: int) -> None:
    """Two log-log panels: round seconds (and its parts) against K and against N."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, rows, axis, fixed in ((axes[0], by_k, "K", f"N = {base_n}"),
                                  (axes[1], by_n, "N", f"K = {base_k}")):
        xs = [row[axis] for row in rows]
        for key, label, style in (("seconds", "round", "o-"),
                                  ("seconds_m_step", "M-step", "s--"),
                                  ("seconds_disc", "discriminators", "^--"),
                                  ("seconds_assign", "assignment", "v--")):
            ax.plot(xs, [row[key] for row in rows], style, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("seconds")
        ax.set_title(f"round time against {axis} ({fixed})")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
