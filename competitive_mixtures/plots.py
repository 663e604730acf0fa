"""Figures written as PNG files into `workdir/figures/`."""

from __future__ import annotations

from etils import epath
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Scatter plots draw at most this many data points; more only blur the picture.
MAX_SCATTER_POINTS = 20000


def _colours(k: int):
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20")
    return [cmap(j % cmap.N) for j in range(k)]


def owners_and_samples(path: str, x: np.ndarray, owner: np.ndarray, samples: np.ndarray,
                       sample_component: np.ndarray, alpha: np.ndarray, title: str = "") -> str:
    """2-D data coloured by owning component (left), mixture samples by component (right).

    Args:
      x: `[N, 2]` data. owner: `[N]` int. samples: `[M, 2]`.
      sample_component: `[M]` int. alpha: `[K]` mixture weights.
    """
    k = alpha.shape[0]
    colours = _colours(k)
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(x))[:MAX_SCATTER_POINTS]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharex=True, sharey=True)
    axes[1].scatter(x[keep, 0], x[keep, 1], s=1, color="0.85")
    for j in range(k):
        mine = keep[owner[keep] == j]
        axes[0].scatter(x[mine, 0], x[mine, 1], s=2, color=colours[j], alpha=0.5,
                        label=f"component {j}: {np.sum(owner == j)} points")
        drawn = samples[sample_component == j]
        axes[1].scatter(drawn[:, 0], drawn[:, 1], s=2, color=colours[j], alpha=0.6,
                        label=f"g_{j}, alpha={alpha[j]:.3f}")
    axes[0].set_title("data, coloured by owner")
    axes[1].set_title("mixture samples (grey: data)")
    for ax in axes:
        ax.legend(markerscale=5, fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def counts_over_rounds(path: str, rounds: list[int], counts: list[list[int]],
                       marks: list[tuple[int, str]] = ()) -> str:
    """Points owned by each component after every round (stacked area).

    `marks`: `(round, label)` events drawn as labelled vertical lines (the
    moves `auto_k` kept). Components that never own a point are left out.
    """
    counts_arr = np.asarray(counts).T
    # Slots that never owned a point (an auto_k run's spare capacity) stay
    # out of the legend; colours stay those of the slot index.
    used = [j for j in range(counts_arr.shape[0]) if counts_arr[j].any()] or [0]
    colours = _colours(counts_arr.shape[0])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.stackplot(rounds, counts_arr[used], colors=[colours[j] for j in used],
                 labels=[f"component {j}" for j in used])
    top = counts_arr.sum(axis=0).max() if counts_arr.size else 1
    for i, (round_index, label) in enumerate(marks):
        ax.axvline(round_index, color="k", lw=0.8, ls="--")
        ax.text(round_index, top * (0.97 - 0.08 * (i % 4)), f" {label}", fontsize=7,
                va="top", ha="left")
    ax.set_xlabel("round (0 = pre-training)")
    ax.set_ylabel("points owned")
    ax.set_title("points per component over rounds")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str) -> str:
    path = epath.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return str(path)


def sample_panels(path: str, data: np.ndarray, panels: list, title: str = "") -> str:
    """Side-by-side 2-D sample scatters, one panel per (name, samples [M, 2], component [M])."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.8), sharex=True,
                             sharey=True, squeeze=False)
    for ax, (name, samples, component) in zip(axes[0], panels):
        colours = _colours(int(component.max()) + 1)
        ax.scatter(data[:, 0], data[:, 1], s=1, color="0.85")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.6,
                   color=[colours[c] for c in component])
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _as_image(x: np.ndarray) -> np.ndarray:
    """`[H, W, C]` uint8 or [0, 1] float -> something imshow draws faithfully."""
    x = np.asarray(x, np.float32) / (255.0 if np.asarray(x).dtype == np.uint8 else 1.0)
    return np.clip(x[..., 0] if x.shape[-1] == 1 else x, 0.0, 1.0)


def component_grids(path: str, samples: np.ndarray, owned: list | None, alpha: np.ndarray,
                    title: str = "") -> str:
    """One row per component: its samples (left) beside real images it owns (right).

    Args:
      samples: `[K, n, H, W, C]` samples of every component.
      owned: K arrays `[<=n, H, W, C]` of images each component owns, or None
        to draw the samples alone.
      alpha: `[K]` mixture weights, written on each row.
    """
    k, n = samples.shape[:2]
    columns = n if owned is None else 2 * n + 1
    fig, axes = plt.subplots(k, columns, figsize=(0.6 * columns, 0.65 * k + 0.6),
                             squeeze=False)
    for j in range(k):
        for c in range(columns):
            ax = axes[j, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < n:
                ax.imshow(_as_image(samples[j, c]), cmap="gray", vmin=0, vmax=1)
            elif c > n and c - n - 1 < len(owned[j]):
                ax.imshow(_as_image(owned[j][c - n - 1]), cmap="gray", vmin=0, vmax=1)
        axes[j, 0].set_ylabel(f"{j}: a={alpha[j]:.3f}", rotation=0, ha="right", va="center",
                              fontsize=7)
    axes[0, n // 2].set_title("samples", fontsize=8)
    if owned is not None:
        axes[0, n + 1 + n // 2].set_title("owned real images", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.12, right=0.99, top=0.92, bottom=0.01)
    return _save(fig, path)


def class_heatmap(path: str, table: np.ndarray) -> str:
    """Component-by-class counts `[K, C]` as a heatmap (the paper's Fig. 11)."""
    fig, ax = plt.subplots(figsize=(0.5 * table.shape[1] + 2, 0.35 * table.shape[0] + 1.5))
    image = ax.imshow(table, cmap="viridis", aspect="auto")
    for (j, c), value in np.ndenumerate(table):
        ax.text(c, j, str(value), ha="center", va="center", fontsize=6,
                color="white" if value < table.max() / 2 else "black")
    ax.set_xlabel("true class")
    ax.set_ylabel("component")
    ax.set_xticks(range(table.shape[1]))
    ax.set_yticks(range(table.shape[0]))
    fig.colorbar(image, ax=ax, label="points")
    fig.tight_layout()
    return _save(fig, path)


def k_curve(path: str, ks: list[int], curves: dict[int, dict[int, float]],
            picks: dict[int, dict[int, dict]], price: float | None, title: str = "",
            view: float = 1.0) -> str:
    """The held-out bound against K: each seed's curve faint, mean +- std bold, the band
    within `price` of the mean curve's best shaded, and the K each `auto_k` search
    (`picks[start][seed]['components']`) ended with marked on its seed's curve. The
    axis shows at least `view` nats per point below the best, and every value
    down to the lower quartile less 3 interquartile ranges (a failed run far below
    would flatten the rest), and says how many values lie below it."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ks = sorted(ks)
    table = np.array([[curves[s][k] for k in ks] for s in sorted(curves)])
    for row in table:
        ax.plot(ks, row, color="0.75", lw=0.8, zorder=1)
    mean, std = table.mean(axis=0), table.std(axis=0)
    ax.errorbar(ks, mean, yerr=std, color="k", lw=1.8, capsize=3, zorder=2,
                label=f"mean +- std ({len(table)} seeds)")
    if price is not None:
        ax.axhspan(mean.max() - price, mean.max(), color="tab:green", alpha=0.15, zorder=0,
                   label=f"within auto_k's price ({price}) of the best")
    markers = ["o", "s", "^", "D", "v"]
    for i, (start, by_seed) in enumerate(sorted(picks.items())):
        xs, ys = [], []
        for seed, pick in sorted(by_seed.items()):
            found = pick["components"]
            xs.append(found + 0.08 * (i - (len(picks) - 1) / 2))
            ys.append(pick["bound"])
        ax.scatter(xs, ys, marker=markers[i % len(markers)], s=36, zorder=3,
                   label=f"auto_k from {start}: its K and bound, per seed")
    best = max(table.max(), max((p["bound"] for by_seed in picks.values()
                                 for p in by_seed.values()), default=-np.inf))
    q1, q3 = np.percentile(table, [25, 75])
    floor = min(best - view, q1 - 3 * (q3 - q1))
    if table.min() < floor:
        hidden = int(np.sum(table < floor))
        ax.set_ylim(floor, best + 0.1 * (best - floor))
        ax.text(0.02, 0.02, f"{hidden} seed value(s) below {floor:.2f} not shown",
                transform=ax.transAxes, fontsize=7, color="0.4")
    ax.set_xlabel("K (components)")
    ax.set_ylabel("held-out bound C (nats per point)")
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)
