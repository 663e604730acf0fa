"""Optional TensorBoard summaries of a run (`log.tensorboard=True`), without TensorFlow.

Every round writes, at step = round, to `WORKDIR/tensorboard/`:
  * every number of the round's `metrics.jsonl` record as a scalar; a list
    (one value per component) becomes one scalar per component
    (`gen_loss/3`), a dict a group (`clustering/nmi`);
  * an image `samples`: for image data a grid with a row of samples per
    component, for 2-D data the samples of every component in its colour.

Writing needs only the `tensorboard` package (`pip install -e '.[tensorboard]'`),
whose event writer does not import TensorFlow. View with
`tensorboard --logdir=WORKDIR/tensorboard`.
"""

from __future__ import annotations

import io
import os
from typing import Any

import jax
import numpy as np
from PIL import Image

from competitive_mixtures import errors
from competitive_mixtures import plots
from competitive_mixtures import programs as programs_lib
from competitive_mixtures import sampling

# Summary keys left out: bookkeeping, not measurements.
SKIPPED = ("round", "pretrain")


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """`{tag: value}` for every finite number of a metrics record (see the module doc)."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if not prefix and key in SKIPPED:
            continue
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, tag + "/"))
        elif isinstance(value, (list, tuple)):
            for j, item in enumerate(value):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    out[f"{tag}/{j}"] = float(item)
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            out[tag] = float(value)
    return {tag: v for tag, v in out.items() if np.isfinite(v)}


def image_grid(samples: np.ndarray) -> np.ndarray:
    """`[K, C, H, W, ch]` samples in [0, 1] -> `[K * H, C * W, 3]` uint8, a row per component."""
    k, c, h, w, ch = samples.shape
    grid = samples.transpose(0, 2, 1, 3, 4).reshape(k * h, c * w, ch)
    grid = np.clip(np.rint(grid * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(grid, 3, axis=-1) if ch == 1 else grid


def scatter(samples: np.ndarray) -> np.ndarray:
    """`[K, M, 2]` samples -> an RGB uint8 picture of them, a colour per component."""
    plt = plots.plt
    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    colours = plt.get_cmap("tab10" if samples.shape[0] <= 10 else "tab20")
    for j, points in enumerate(samples):
        ax.scatter(points[:, 0], points[:, 1], s=2, color=colours(j % colours.N))
    ax.set_aspect("equal")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


class Writer:
    """Appends summaries to an event file in `logdir` (a new file per process start)."""

    def __init__(self, logdir: str):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise errors.UserError(
                "log.tensorboard=True needs the tensorboard package: "
                "pip install -e '.[tensorboard]'") from None
        os.makedirs(logdir, exist_ok=True)
        self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
        self._writer = EventFileWriter(logdir)

    def _write(self, step: int, values: list) -> None:
        summary = self._summary_pb2.Summary(value=values)
        self._writer.add_event(self._event_pb2.Event(step=step, summary=summary))

    def scalars(self, step: int, record: dict[str, Any]) -> None:
        self._write(step, [self._summary_pb2.Summary.Value(tag=tag, simple_value=value)
                           for tag, value in flatten(record).items()])

    def image(self, step: int, tag: str, picture: np.ndarray) -> None:
        """`picture` `[H, W, 3]` uint8."""
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="PNG")
        encoded = self._summary_pb2.Summary.Image(
            height=picture.shape[0], width=picture.shape[1], colorspace=3,
            encoded_image_string=buffer.getvalue())
        self._write(step, [self._summary_pb2.Summary.Value(tag=tag, image=encoded)])

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def write_round(writer: Writer, programs, state, data_shape: tuple[int, ...],
                record: dict[str, Any]) -> None:
    """The summaries of one finished round (`record` as in metrics.jsonl)."""
    step = int(record["round"])
    writer.scalars(step, record)
    key = jax.random.fold_in(jax.random.fold_in(state.rng, programs_lib.EVAL_STREAM), step)
    if len(data_shape) == 3:
        grid = sampling.per_component(programs.gen_model, state.gen, key, sampling.GRID_COLUMNS)
        writer.image(step, "samples", image_grid(np.asarray(grid)))
    elif data_shape == (2,):
        points = sampling.per_component(programs.gen_model, state.gen, key, 256)
        writer.image(step, "samples", scatter(np.asarray(points)))
    writer.flush()
